import { boot } from '../lib/boot'
import { h, mount, perFrame, rerender } from '../lib/dom'
import { groupRoots, readConclusions } from '../lib/groupdoc'
import { notesEmpty, renderNotes } from '../lib/notes'
import { readPlenary, plenaryRoots, groupColor } from '../lib/plenary'
import { plenaryContent } from '../lib/plenaryview'
import { prefsControls } from '../lib/prefs'
import { openRoom, type Room } from '../lib/room'
import { statusBar } from '../lib/status'

// Participant phone view: read-only. Only the document being viewed is connected (and downloaded).
export default async function participant(meeting: string) {
  const b = await boot(meeting)
  if (!b) return
  const { token, info } = b
  document.title = `${info.title} — plenary`

  const statusSlot = h('div', { class: 'status-slot' })
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Sections' })
  const content = h('div', { class: 'content', 'data-testid': 'content' })
  const heading = h('h2', { class: 'sr-only', tabindex: '-1' })
  mount(
    h('header', { class: 'top' }, h('div', null, h('p', { class: 'crumb' }, 'Plenary — live'), h('h1', null, info.title)), prefsControls()),
    statusSlot,
    tabs,
    h('section', { 'aria-labelledby': 'view-heading' }, heading, content),
  )
  heading.id = 'view-heading'
  document.body.classList.add('participant')

  let room: Room | null = null
  let current = 'plenary'

  const tabButton = (id: string, label: string, color?: string) =>
    h(
      'button',
      { type: 'button', 'data-tab': id, style: color ? { '--gc': color } : null, onclick: () => show(id, true) },
      color ? h('span', { class: 'swatch', 'aria-hidden': 'true' }) : null,
      label,
    )
  tabs.append(tabButton('plenary', 'Plenary'), ...info.groups.map((g, i) => tabButton(g.id, g.title, groupColor(i))))

  function show(id: string, focus = false) {
    current = id
    for (const btn of tabs.querySelectorAll<HTMLButtonElement>('button')) {
      if (btn.dataset.tab === id) btn.setAttribute('aria-current', 'page')
      else btn.removeAttribute('aria-current')
    }
    void room?.destroy()
    room = openRoom(meeting, id, token)
    statusSlot.replaceChildren(statusBar(room))
    content.replaceChildren(h('p', { class: 'muted' }, 'Loading…'))
    const r = room
    if (id === 'plenary') {
      heading.textContent = 'Plenary summary'
      plenaryRoots(r.doc)
      const render = perFrame(() => {
        if (room !== r) return
        const p = readPlenary(r.doc, info.groups, info.title)
        const presented = p.groups.flatMap((g) => g.conclusions.map((c) => ({ g, c }))).find(({ c }) => c.key === p.presenting && !c.hidden)
        rerender(content, () => [
          presented
            ? h(
                'div',
                { class: 'card now-card', style: { '--gc': groupColor(presented.g.color) } },
                h('p', { class: 'meta' }, `Presenting now — ${presented.g.title}`),
                h('p', { class: 'ctext' }, presented.c.text),
              )
            : null,
          ...plenaryContent(p),
        ])
      })
      r.doc.on('update', render)
      r.whenSynced.then(render)
    } else {
      const g = info.groups.find((x) => x.id === id)!
      heading.textContent = g.title
      const { notes, conclusions } = groupRoots(r.doc)
      const render = perFrame(() => {
        if (room !== r) return
        const items = readConclusions(conclusions).filter((c) => (c.text?.toString() ?? '').trim() !== '')
        const closed = r.state.closed ?? !!g.closed
        rerender(content, () => [
          closed ? h('p', { class: 'notice', 'data-testid': 'group-closed' }, 'The moderator has closed this group: no more edits.') : null,
          h('h3', null, 'Conclusions'),
          items.length
            ? h(
                'ol',
                { class: 'conclusions' },
                items.map((c) => h('li', { class: c.status }, h('span', { class: 'ctext' }, c.text!.toString()), c.status === 'final' ? h('span', { class: 'badge final' }, 'final') : null)),
              )
            : h('p', { class: 'empty' }, 'No conclusions yet.'),
          h('h3', null, 'Notes'),
          notesEmpty(notes) ? h('p', { class: 'empty' }, 'No notes yet.') : h('div', { class: 'notes' }, renderNotes(notes)),
        ])
      })
      r.doc.on('update', render)
      r.whenSynced.then(render)
      let wasClosed: boolean | null = null
      r.onState((st) => {
        if (st.closed !== wasClosed) {
          wasClosed = st.closed
          render()
        }
      })
    }
    if (focus) heading.focus()
  }
  show(current)
}
