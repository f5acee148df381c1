import './organize.css'
import { api, describeError } from '../lib/api'
import { announce, h, mount } from '../lib/dom'
import { qrImage } from '../lib/qr'
import { storeJoinLink } from '../lib/joinlink'

interface Created {
  id: string
  title: string
  groups: { id: string; title: string }[]
  tokens: { moderator: string; participant: string; rapporteurs: Record<string, string> }
  links?: unknown
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '')

export default function organize() {
  document.title = 'Organize a meeting — plenary'
  document.body.classList.add('organize')

  const adminToken = h('input', { id: 'admin-token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'admin-help', 'data-testid': 'admin-token' })
  const title = h('input', { id: 'm-title', type: 'text', required: true, placeholder: 'Regional Meeting of the Border Police and Customs Representatives', 'data-testid': 'meeting-title' })
  const mid = h('input', { id: 'm-id', type: 'text', pattern: '[a-z0-9][a-z0-9\\-]{0,62}', placeholder: 'skopje-2023', 'aria-describedby': 'id-help', 'data-testid': 'meeting-id' })
  const rows = h('ol', { class: 'group-rows' })
  const errorBox = h('div', { role: 'alert', 'data-testid': 'error' })
  const result = h('section', { class: 'result', 'aria-labelledby': 'links-h', hidden: true, 'data-testid': 'result' })
  let idTouched = false
  mid.addEventListener('input', () => (idTouched = mid.value !== ''))
  title.addEventListener('input', () => {
    if (!idTouched) mid.value = slug(title.value)
  })

  let rowSeq = 0
  function addRow(t = '') {
    const n = ++rowSeq
    const gt = h('input', { id: `g-title-${n}`, type: 'text', value: t, 'data-testid': 'group-title' })
    const gid = h('input', { id: `g-id-${n}`, type: 'text', value: slug(t), pattern: '[a-z0-9][a-z0-9\\-]{0,62}', 'data-testid': 'group-id' })
    let touched = false
    gid.addEventListener('input', () => (touched = gid.value !== ''))
    gt.addEventListener('input', () => {
      if (!touched) gid.value = slug(gt.value)
    })
    const li = h(
      'li',
      null,
      h('div', null, h('label', { for: gt.id }, `Group ${n} title`), gt),
      h('div', null, h('label', { for: gid.id }, `Group ${n} id`), gid),
      h('button', { type: 'button', class: 'small', 'aria-label': `Remove group ${n}`, onclick: () => (li.remove(), announce('Group removed')) }, 'Remove'),
    )
    rows.append(li)
    return gt
  }
  addRow()

  const form = h(
    'form',
    { 'aria-labelledby': 'new-h', novalidate: true },
    h('h2', { id: 'new-h' }, 'New meeting'),
    h('div', { class: 'field' }, h('label', { for: 'admin-token' }, 'Admin token'), adminToken, h('p', { id: 'admin-help', class: 'meta' }, 'Printed by “plenary serve” when it first starts. It stays in this page only.')),
    h('div', { class: 'field' }, h('label', { for: 'm-title' }, 'Meeting title'), title),
    h('div', { class: 'field' }, h('label', { for: 'm-id' }, 'Meeting id (optional)'), mid, h('p', { id: 'id-help', class: 'meta' }, 'Lower-case letters, digits and dashes; it appears in every link.')),
    h('fieldset', { class: 'card' }, h('legend', null, 'Working groups'), rows, h('button', { type: 'button', onclick: () => addRow().focus() }, '+ Add group')),
    errorBox,
    h('p', null, h('button', { type: 'submit', class: 'primary', 'data-testid': 'create' }, 'Create meeting')),
  )
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    errorBox.replaceChildren()
    const groups = Array.from(rows.querySelectorAll('li'))
      .map((li) => {
        const [t, i] = li.querySelectorAll('input')
        return { title: t.value.trim(), id: i.value.trim() || slug(t.value) }
      })
      .filter((g) => g.title)
    const problems: string[] = []
    if (!adminToken.value.trim()) problems.push('Enter the admin token.')
    if (!title.value.trim()) problems.push('Enter the meeting title.')
    if (!groups.length) problems.push('Add at least one working group.')
    const re = /^[a-z0-9][a-z0-9-]{0,62}$/
    if (mid.value && !re.test(mid.value)) problems.push('The meeting id may hold only lower-case letters, digits and dashes.')
    for (const g of groups) if (!re.test(g.id) || g.id === 'plenary') problems.push(`The id “${g.id}” of group “${g.title}” is not valid.`)
    if (new Set(groups.map((g) => g.id)).size !== groups.length) problems.push('Two groups have the same id.')
    if (problems.length) {
      errorBox.replaceChildren(h('div', { class: 'error' }, h('ul', null, problems.map((p) => h('li', null, p)))))
      return
    }
    try {
      const body: Record<string, unknown> = { title: title.value.trim(), groups }
      if (mid.value) body.id = mid.value
      const created = await api<Created>('/api/meetings', adminToken.value.trim(), { method: 'POST', body })
      await showResult(created)
    } catch (err) {
      const msg = (err as { status?: number }).status === 401 ? 'The admin token was not accepted.' : (err as { status?: number }).status === 409 ? 'A meeting with this id exists already: choose another id.' : describeError(err)
      errorBox.replaceChildren(h('p', { class: 'error' }, msg))
    }
  })

  mount(
    h('header', { class: 'top' }, h('div', null, h('p', { class: 'crumb' }, 'plenary'), h('h1', null, 'Organize a meeting'))),
    h('p', null, 'Create a meeting with its working groups. You get one link per role, each with its QR code and a printable one-page handout.'),
    form,
    result,
  )

  async function showResult(c: Created) {
    const origin = location.origin
    const link = (path: string, t: string) => `${origin}${path}#token=${encodeURIComponent(t)}`
    // a projector opened from this browser's console (moderator token) can then show the join QR code
    storeJoinLink(c.id, link(`/m/${c.id}`, c.tokens.participant))
    const roles: { who: string; name: string; url: string; steps: string[] }[] = [
      {
        who: 'Moderator',
        name: 'Moderator console',
        url: link(`/m/${c.id}/console`, c.tokens.moderator),
        steps: ['Open on the moderator’s laptop.', 'Order the groups, hide items, choose what is presented, write the introduction and closing.', 'Close the groups and adopt the final version.', 'Keep this link private: it can change everything.'],
      },
      {
        who: 'Projector',
        name: 'Projector view',
        url: link(`/m/${c.id}/projector`, c.tokens.participant),
        steps: ['Open on the computer connected to the big screen, full screen (F11).', 'It follows the moderator’s console and shows a QR code for the participants.'],
      },
      {
        who: 'Participants',
        name: 'Follow the plenary',
        url: link(`/m/${c.id}`, c.tokens.participant),
        steps: ['Scan the code with your phone camera.', 'Read the live plenary and each working group’s conclusions and notes.', 'Nothing to install. Dark mode and larger text are at the top of the page.'],
      },
      ...c.groups.map((g) => ({
        who: 'Rapporteur',
        name: g.title,
        url: link(`/m/${c.id}/g/${g.id}`, c.tokens.rapporteurs[g.id]),
        steps: ['Open on the rapporteur’s laptop; several people of the group may open it together.', 'Type the notes and keep the list of conclusions; mark them final when agreed.', 'Edits are kept even offline and sent when the connection returns.'],
      })),
    ]
    const cards = await Promise.all(
      roles.map(async (r, i) => {
        const card = h(
          'article',
          { class: 'handout', 'aria-labelledby': `ho-${i}`, 'data-testid': 'handout' },
          h('p', { class: 'who' }, r.who),
          h('h3', { id: `ho-${i}` }, r.name),
          h('p', { class: 'meeting' }, c.title),
          await qrImage(r.url, `QR code of the ${r.who.toLowerCase()} link${r.who === 'Rapporteur' ? ` for ${r.name}` : ''}`),
          h('p', { class: 'url' }, h('a', { href: r.url, target: '_blank', rel: 'noopener', 'data-role': r.who.toLowerCase() }, r.url)),
          h('ol', { class: 'steps' }, r.steps.map((s) => h('li', null, s))),
        )
        const copy = h('button', { type: 'button', class: 'small no-print' }, 'Copy link', h('span', { class: 'sr-only' }, ` (${r.name})`))
        copy.addEventListener('click', async () => {
          try {
            await navigator.clipboard.writeText(r.url)
            announce('Link copied')
          } catch {
            announce('Copying is not allowed here: select the link text instead.')
          }
        })
        const print = h('button', { type: 'button', class: 'small no-print' }, 'Print this handout', h('span', { class: 'sr-only' }, ` (${r.name})`))
        print.addEventListener('click', () => {
          card.classList.add('print-me')
          document.body.dataset.printOne = '1'
          window.print()
          card.classList.remove('print-me')
          delete document.body.dataset.printOne
        })
        card.append(h('div', { class: 'row no-print' }, copy, print))
        return card
      }),
    )
    result.hidden = false
    const heading = h('h2', { id: 'links-h', tabindex: '-1' }, `Links for “${c.title}”`)
    result.replaceChildren(
      heading,
      h('p', { class: 'notice' }, 'Keep these links: they are the only way in, and this page does not store them. Anyone with a link has its rights.'),
      h('p', null, h('button', { type: 'button', class: 'primary', onclick: () => window.print() }, 'Print all handouts (one page each)')),
      h('div', { class: 'handouts' }, cards),
    )
    heading.focus()
  }
}
