import './projector.css'
import { boot } from '../lib/boot'
import { h, mount, perFrame, rerender } from '../lib/dom'
import { plenaryRoots, readPlenary } from '../lib/plenary'
import { plenaryContent } from '../lib/plenaryview'
import { openRoom } from '../lib/room'
import { statusBar } from '../lib/status'

// Projector: read-only, large type, one colour per group, the presented item highlighted and kept in
// view, a QR code of the participant link. The projector link carries the participant token, which
// is also what the participant link needs.
export default async function projector(meeting: string) {
  const b = await boot(meeting)
  if (!b) return
  const { token, info } = b
  document.title = `${info.title} — projector — plenary`
  document.body.classList.add('projector')
  document.documentElement.classList.add('projector')

  const participantLink = `${location.origin}/m/${meeting}#token=${encodeURIComponent(token)}`
  const join = h('div', { class: 'proj-join', 'data-testid': 'join' })
  const title = h('h1', null, info.title)
  const body = h('div', { class: 'proj-body', 'data-testid': 'projector-body' })
  const room = openRoom(meeting, 'plenary', token)
  plenaryRoots(room.doc)
  const footer = h('div', { class: 'proj-foot row' }, statusBar(room, { showFollowers: true }))
  mount(h('div', { class: 'proj-head' }, h('div', null, title, h('p', { class: 'muted' }, 'Conclusions of the working groups — live')), join), body, footer)

  // Only offer the QR code when this link really carries a participant token (never leak a
  // moderator's capability onto a big screen).
  if (info.role === undefined || info.role === 'participant') {
    import('../lib/qr').then(async ({ qrImage }) => {
      join.replaceChildren(await qrImage(participantLink, 'QR code of the participant link: follow the plenary on your phone'), h('p', null, 'Follow on your phone'))
    })
  } else {
    join.hidden = true
  }

  let lastPresenting: string | null = null
  const render = perFrame(() => {
    const p = readPlenary(room.doc, info.groups, info.title)
    title.textContent = p.title || info.title
    rerender(body, () => plenaryContent(p, {}))
    const el = p.presenting ? body.querySelector<HTMLElement>(`li[data-key="${CSS.escape(p.presenting)}"]`) : null
    if (el && p.presenting !== lastPresenting) el.scrollIntoView({ block: 'center', behavior: matchMedia('(prefers-reduced-motion: reduce)').matches ? 'auto' : 'smooth' })
    lastPresenting = el ? p.presenting : null
  })
  room.doc.on('update', render)
  room.whenSynced.then(render)
  render()
}
