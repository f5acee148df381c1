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

const ADMIN_KEY = 'plenary-admin-token'

interface ManagedGroup { id: string; title: string; short_title?: string; closed: boolean }
interface ManagedMeeting { id: string; title: string; short_title?: string; created_at: string; groups: ManagedGroup[] }

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
  // kept for this browser tab's session only (closing the tab forgets it)
  adminToken.value = sessionStorage.getItem(ADMIN_KEY) ?? ''
  adminToken.addEventListener('change', () => {
    if (adminToken.value.trim()) sessionStorage.setItem(ADMIN_KEY, adminToken.value.trim())
    else sessionStorage.removeItem(ADMIN_KEY)
    void loadMeetings()
  })
  const warnBox = h('div', { 'data-testid': 'loopback-warning', hidden: true })
  const meetingsEl = h('div', { 'data-testid': 'meetings' })
  const meetingsState = h('p', { class: 'meta', role: 'status' })
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
      sessionStorage.setItem(ADMIN_KEY, adminToken.value.trim())
      await showResult(created)
      void loadMeetings()
    } catch (err) {
      const msg = (err as { status?: number }).status === 401 ? 'The admin token was not accepted.' : (err as { status?: number }).status === 409 ? 'A meeting with this id exists already: choose another id.' : describeError(err)
      errorBox.replaceChildren(h('p', { class: 'error' }, msg))
    }
  })

  const tokenField = h('div', { class: 'field admin-field' }, h('label', { for: 'admin-token' }, 'Admin token'), adminToken, h('p', { id: 'admin-help', class: 'meta' }, 'Printed by “plenary serve” when it first starts (also in plenary-data/admin-token). This browser tab keeps it until you close the tab.'))
  const manage = h(
    'section',
    { class: 'manage', 'aria-labelledby': 'meetings-h' },
    h('div', { class: 'row' }, h('h2', { id: 'meetings-h' }, 'Your meetings'), h('button', { type: 'button', class: 'small', 'data-testid': 'reload-meetings', onclick: () => loadMeetings() }, 'Refresh')),
    meetingsState,
    meetingsEl,
  )
  mount(
    h('header', { class: 'top' }, h('div', null, h('p', { class: 'crumb' }, 'plenary'), h('h1', null, 'Organize a meeting'))),
    warnBox,
    h('p', null, 'Create a meeting with its working groups. You get one link per role, each with its QR code and a printable one-page handout. Meetings made before are listed first: rename them, add groups or make new links.'),
    tokenField,
    manage,
    form,
    result,
  )

  // ---- the server's public URL: links that phones cannot open ----
  void (async () => {
    try {
      const info = await api<{ public_url: string; public_url_is_loopback: boolean }>('/api/server', null)
      if (info.public_url_is_loopback) {
        warnBox.hidden = false
        warnBox.replaceChildren(
          h(
            'div',
            { class: 'warning', role: 'note' },
            h('p', null, h('strong', null, 'Phones cannot open these links. '), `The links start with ${info.public_url}, an address that only this computer can reach.`),
            h('p', null, 'To let phones and other laptops on the venue’s network join, restart the server with:'),
            h('pre', null, h('code', null, 'plenary serve --addr 0.0.0.0:8080 --public-url http://LAN-IP:8080')),
            h('p', { class: 'meta' }, 'LAN-IP is this computer’s address on the venue network (for example 192.168.1.20). Then create new links: links made before keep the old address.'),
          ),
        )
      }
    } catch {
      /* the server cannot be reached: the meetings list below says so */
    }
  })()

  // ---- meetings already created ----
  async function loadMeetings() {
    const t = adminToken.value.trim()
    if (!t) {
      meetingsState.textContent = 'Enter the admin token above to see and manage your meetings.'
      meetingsEl.replaceChildren()
      return
    }
    meetingsState.textContent = 'Loading…'
    try {
      const { meetings } = await api<{ meetings: ManagedMeeting[] }>('/api/meetings', t)
      meetingsState.textContent = meetings.length ? `${meetings.length} meeting${meetings.length === 1 ? '' : 's'} on this server.` : 'No meeting yet.'
      meetingsEl.replaceChildren(...meetings.slice().reverse().map(meetingCard))
    } catch (err) {
      meetingsState.textContent = (err as { status?: number }).status === 401 ? 'The admin token was not accepted.' : describeError(err)
      meetingsEl.replaceChildren()
    }
  }
  void loadMeetings()

  function meetingCard(m: ManagedMeeting): HTMLElement {
    const t = () => adminToken.value.trim()
    const status = h('p', { class: 'meta', role: 'status' })
    const linksEl = h('div', { class: 'handouts' })
    const fail = (err: unknown) => (status.textContent = describeError(err))
    const done = async (msg: string) => {
      announce(msg)
      await loadMeetings()
    }
    const mt = h('input', { id: `mt-${m.id}`, type: 'text', value: m.title, maxlength: '300', 'data-testid': 'rename-title' })
    const ms = h('input', { id: `ms-${m.id}`, type: 'text', value: m.short_title ?? '', maxlength: '80', placeholder: 'e.g. Skopje 2023', 'data-testid': 'rename-short' })
    const renameForm = h(
      'form',
      { class: 'inline-form', 'aria-label': `Rename ${m.title}` },
      h('div', null, h('label', { for: mt.id }, 'Title'), mt),
      h('div', null, h('label', { for: ms.id }, 'Projector title (short)'), ms),
      h('button', { type: 'submit', class: 'small', 'data-testid': 'rename-meeting' }, 'Save'),
    )
    renameForm.addEventListener('submit', async (e) => {
      e.preventDefault()
      try {
        await api(`/api/meetings/${m.id}`, t(), { method: 'PATCH', body: { title: mt.value, short_title: ms.value } })
        await done('Meeting renamed')
      } catch (err) {
        fail(err)
      }
    })
    const newLink = async (role: string, label: string, group?: string) => {
      const sensitive = role !== 'participant'
      try {
        const body: Record<string, string> = { role }
        if (group) body.group = group
        const r = await api<{ role: string; group?: string; token: string; link: string }>(`/api/meetings/${m.id}/tokens`, t(), { method: 'POST', body })
        if (role === 'participant') storeJoinLink(m.id, r.link)
        const card = h(
          'article',
          { class: `handout${sensitive ? ' sensitive' : ''}`, 'data-testid': 'new-link', 'data-role': role },
          h('p', { class: 'who' }, sensitive ? `${label} — private` : label),
          h('h3', null, m.title),
          await qrImage(r.link, `QR code of the new ${label.toLowerCase()} link`),
          h('p', { class: 'url' }, h('a', { href: r.link, target: '_blank', rel: 'noopener' }, r.link)),
          h('p', { class: 'meta' }, sensitive ? 'Give this only to the person who holds the role. The previous link stopped working.' : 'For everyone in the room and the projector. The previous participant link and the projector link stopped working.'),
        )
        const print = h('button', { type: 'button', class: 'small no-print' }, 'Print this handout')
        print.addEventListener('click', () => {
          card.classList.add('print-me')
          document.body.dataset.printOne = '1'
          window.print()
          card.classList.remove('print-me')
          delete document.body.dataset.printOne
        })
        card.append(h('div', { class: 'row no-print' }, print))
        linksEl.prepend(card)
        status.textContent = `New ${label.toLowerCase()} link made; the old one no longer works.`
      } catch (err) {
        fail(err)
      }
    }
    const groupRows = m.groups.map((g) => {
      const gt = h('input', { id: `gt-${m.id}-${g.id}`, type: 'text', value: g.title, maxlength: '300', 'data-testid': 'group-rename-title' })
      const gs = h('input', { id: `gs-${m.id}-${g.id}`, type: 'text', value: g.short_title ?? '', maxlength: '80', 'data-testid': 'group-rename-short' })
      const f = h(
        'form',
        { class: 'inline-form', 'aria-label': `Rename group ${g.title}` },
        h('div', null, h('label', { for: gt.id }, `Group title (${g.id})`), gt),
        h('div', null, h('label', { for: gs.id }, 'Projector title'), gs),
        h('button', { type: 'submit', class: 'small', 'data-testid': 'rename-group' }, 'Save'),
        h('button', { type: 'button', class: 'small', 'data-testid': 'link-rapporteur', onclick: () => newLink('rapporteur', `Rapporteur of ${g.title}`, g.id) }, 'New rapporteur link'),
      )
      f.addEventListener('submit', async (e) => {
        e.preventDefault()
        try {
          await api(`/api/meetings/${m.id}/groups/${g.id}`, t(), { method: 'PATCH', body: { title: gt.value, short_title: gs.value } })
          await done('Group renamed')
        } catch (err) {
          fail(err)
        }
      })
      return h('li', { 'data-testid': 'managed-group', 'data-group': g.id }, f, g.closed ? h('span', { class: 'meta' }, 'closed for writing') : null)
    })
    const addTitle = h('input', { id: `ag-${m.id}`, type: 'text', maxlength: '300', placeholder: 'Title of the new group', 'data-testid': 'add-group-title' })
    const addForm = h('form', { class: 'inline-form', 'aria-label': `Add a group to ${m.title}` }, h('div', null, h('label', { for: addTitle.id }, 'New group'), addTitle), h('button', { type: 'submit', class: 'small', 'data-testid': 'add-group' }, 'Add group'))
    addForm.addEventListener('submit', async (e) => {
      e.preventDefault()
      if (!addTitle.value.trim()) return fail(new Error('Enter the title of the new group.'))
      try {
        const g = await api<{ id: string; title: string; link: string }>(`/api/meetings/${m.id}/groups`, t(), { method: 'POST', body: { title: addTitle.value.trim() } })
        announce(`Group ${g.title} added`)
        await loadMeetings()
      } catch (err) {
        fail(err)
      }
    })
    const del = h('button', { type: 'button', class: 'small danger', 'data-testid': 'delete-meeting' }, 'Delete meeting…')
    del.addEventListener('click', async () => {
      const typed = window.prompt(`Delete “${m.title}” (${m.id}) with all its notes, conclusions, versions and links? This cannot be undone.\n\nType the meeting id “${m.id}” to confirm.`)
      if (typed === null) return
      if (typed.trim() !== m.id) return fail(new Error('The id did not match; nothing was deleted.'))
      try {
        await api(`/api/meetings/${m.id}`, t(), { method: 'DELETE' })
        await done(`Meeting ${m.title} deleted`)
      } catch (err) {
        fail(err)
      }
    })
    return h(
      'article',
      { class: 'card managed', 'data-testid': 'managed-meeting', 'data-meeting': m.id, 'aria-labelledby': `mh-${m.id}` },
      h('h3', { id: `mh-${m.id}` }, m.title, h('span', { class: 'meta' }, ` · ${m.id}`)),
      renameForm,
      h('h4', null, 'Working groups'),
      h('ol', { class: 'managed-groups' }, groupRows),
      addForm,
      h('h4', null, 'New links'),
      h('p', { class: 'meta' }, 'Lost a link, or a link leaked? A new one replaces it at once: the old one stops working and whoever used it is disconnected.'),
      h(
        'div',
        { class: 'row' },
        h('button', { type: 'button', class: 'small', 'data-testid': 'link-moderator', onclick: () => newLink('moderator', 'Moderator console') }, 'New moderator link'),
        h('button', { type: 'button', class: 'small', 'data-testid': 'link-participant', onclick: () => newLink('participant', 'Participants and projector') }, 'New participant link'),
      ),
      status,
      linksEl,
      h('div', { class: 'row danger-zone' }, del),
    )
  }

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
