import { boot } from '../lib/boot'
import { h, mount, perFrame, rerender } from '../lib/dom'
import { groupRoots } from '../lib/groupdoc'
import { notesEmpty, renderNotes } from '../lib/notes'
import { numberGroups, shownItems } from '../lib/numbering'
import { readPlenary, plenaryRoots, groupColor, type Plenary } from '../lib/plenary'
import { plenaryContent } from '../lib/plenaryview'
import { prefsControls } from '../lib/prefs'
import { fnv1a, openRoom, type Room } from '../lib/room'
import { loadSnapshot, saveSnapshot, type Snapshot } from '../lib/snapshot'
import { statusBar } from '../lib/status'

const hhmm = (t: number) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })

interface Tab {
  room: Room
  status: HTMLElement
  /** when the document was last live from the server (ms; on this page or, from the kept copy,
   *  an earlier one), 0: never */
  updated: number
  /** the room has synced with the server on this page: its own Y.Doc is the one to show */
  live: boolean
  /** the copy kept by an earlier visit (src/lib/snapshot.ts), shown until the room is live */
  copy: Snapshot | null
}

/** the document to draw a tab from: the live one, or the kept copy until the live one has synced */
const docOf = (t: Tab) => (t.live || !t.copy ? t.room.doc : t.copy.doc)

// Participant phone view: read-only, content first. The plenary document stays connected (it
// carries the numbering, what is hidden and what is presented, for every tab); a group's document
// is connected while its tab is shown and kept in memory afterwards. Every document is also kept
// in localStorage (src/lib/snapshot.ts), so that even after a reload offline every tab seen once
// shows its last content, with the time it was last updated.
export default async function participant(meeting: string) {
  const b = await boot(meeting)
  if (!b) return
  const { token, info } = b
  document.title = `${info.title} — plenary`
  document.body.classList.add('participant')

  const menuPanel = h('div', { class: 'menu-panel', id: 'menu-panel', hidden: true }, h('p', { class: 'crumb' }, 'Plenary — live, read only'), h('p', { class: 'full-title' }, info.title), prefsControls())
  const menuBtn = h('button', { type: 'button', class: 'small menu-btn', 'aria-expanded': 'false', 'aria-controls': 'menu-panel', 'data-testid': 'menu' }, h('span', { 'aria-hidden': 'true' }, '☰'), ' Menu')
  menuBtn.addEventListener('click', () => {
    menuPanel.hidden = !menuPanel.hidden
    menuBtn.setAttribute('aria-expanded', String(!menuPanel.hidden))
  })
  const title = h('h1', { class: 'one-line', title: info.title }, info.title)
  const nowLine = h('div', { class: 'now-line', 'data-testid': 'now-line', hidden: true, 'aria-live': 'polite' })
  const statusSlot = h('div', { class: 'status-slot' })
  const updatedEl = h('span', { class: 'meta updated', 'data-testid': 'updated' })
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Sections' })
  const content = h('div', { class: 'content', 'data-testid': 'content' })
  const heading = h('h2', { class: 'sr-only', tabindex: '-1', id: 'view-heading' })
  mount(
    h('header', { class: 'top phone-top' }, title, menuBtn),
    menuPanel,
    h('div', { class: 'sticky-top' }, nowLine, tabs),
    h('div', { class: 'row status-row' }, statusSlot, updatedEl),
    h('section', { 'aria-labelledby': 'view-heading' }, heading, content),
  )

  let current = 'plenary'
  const open = new Map<string, Tab>()
  const cap = fnv1a(token)
  const savers: (() => void)[] = []
  const saveAll = () => savers.forEach((f) => f())
  window.addEventListener('pagehide', saveAll)
  document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && saveAll())
  const plenaryTab = openTab('plenary')
  const plenaryRoom = plenaryTab.room
  plenaryRoots(plenaryRoom.doc)
  open.set('plenary', plenaryTab)
  let p: Plenary = readPlenary(docOf(plenaryTab), info.groups, info.title)

  function openTab(id: string): Tab {
    const room = openRoom(meeting, id, token)
    const copy = loadSnapshot(meeting, cap, id)
    const tab: Tab = { room, status: statusBar(room), updated: copy?.at ?? 0, live: false, copy }
    // the copy is written at most once a second while live, and when the page is hidden
    let saveTimer = 0
    const save = () => {
      window.clearTimeout(saveTimer)
      saveTimer = 0
      if (tab.live) saveSnapshot(meeting, cap, id, room.doc, tab.updated)
    }
    const touch = () => {
      if (room.state.status === 'connected' && room.state.synced) {
        const first = !tab.live
        tab.live = true
        tab.updated = Date.now()
        if (first) {
          tab.copy?.doc.destroy()
          tab.copy = null
          save()
        } else if (!saveTimer) saveTimer = window.setTimeout(save, 1000)
        if (current === id) showUpdated()
      }
    }
    room.onState(touch)
    room.doc.on('update', touch)
    savers.push(save)
    return tab
  }

  function showUpdated() {
    const tab = info.notes_private ? plenaryTab : open.get(current)
    if (!tab) return
    const live = tab.live && tab.room.state.status === 'connected' && tab.room.state.synced
    updatedEl.textContent = live ? '' : tab.updated ? `last updated ${hhmm(tab.updated)}` : 'not loaded yet'
  }

  // Private notes: a group tab is drawn from the plenary document's section for that group
  // (its conclusions, numbered); the group document is never opened (the server refuses it).
  const notesPrivate = !!info.notes_private
  const tabButton = (id: string, label: string, color?: string) =>
    h(
      'button',
      { type: 'button', 'data-tab': id, style: color ? { '--gc': color } : null, onclick: () => show(id, true) },
      color ? h('span', { class: 'swatch', 'aria-hidden': 'true' }) : null,
      label,
    )
  tabs.append(tabButton('plenary', 'Plenary'), ...info.groups.map((g, i) => tabButton(g.id, g.title, groupColor(i))))

  function renderNow() {
    const k = p.presenting
    const it = k ? shownItems(p).find((x) => x.c.key === k) : undefined
    nowLine.hidden = !it
    if (!it) return nowLine.replaceChildren()
    nowLine.style.setProperty('--gc', groupColor(it.g.color))
    rerender(nowLine, () => [
      h('span', { class: 'now-label' }, 'Presenting now'),
      ' ',
      h('span', { class: 'now-num' }, it.label),
      ' ',
      h('span', { class: 'now-text' }, it.c.text),
    ])
  }

  function renderContent() {
    const id = current
    if (id === 'plenary') {
      heading.textContent = 'Plenary summary'
      if (!plenaryTab.updated && !plenaryTab.live) return content.replaceChildren(h('p', { class: 'muted' }, 'Loading…'))
      rerender(content, () => plenaryContent(p))
      return
    }
    const g = info.groups.find((x) => x.id === id)!
    const tab = notesPrivate ? plenaryTab : open.get(id)!
    heading.textContent = g.title
    const ng = numberGroups(p).find((x) => x.g.id === id)
    const hidden = ng ? ng.all.filter((x) => x.c.hidden && x.c.text.trim() !== '').length : 0
    const { notes } = groupRoots(docOf(tab))
    const closed = notesPrivate ? ng?.g.closed ?? !!g.closed : tab.room.state.closed ?? ng?.g.closed ?? !!g.closed
    const notesLoaded = tab.updated > 0 || tab.live
    rerender(content, () => [
      closed ? h('p', { class: 'notice', 'data-testid': 'group-closed' }, 'The moderator has closed this group: no more edits.') : null,
      h('h3', null, 'Conclusions'),
      ng && ng.shown.length
        ? h(
            'ol',
            { class: 'conclusions numbered' },
            ng.shown.map((it) =>
              h(
                'li',
                { class: `${it.c.status}${p.presenting === it.c.key ? ' presenting' : ''}`, 'data-key': it.c.key },
                h('span', { class: 'num', 'data-testid': 'number' }, it.label),
                h('span', { class: 'ctext' }, it.c.text),
                it.c.status === 'final' ? h('span', { class: 'badge final' }, 'final') : null,
              ),
            ),
          )
        : h('p', { class: 'empty' }, plenaryTab.updated || plenaryTab.live ? 'No conclusions yet.' : 'Loading…'),
      hidden ? h('p', { class: 'meta', 'data-testid': 'hidden-count' }, `${hidden} ${hidden === 1 ? 'item is' : 'items are'} not shown: the moderator hid ${hidden === 1 ? 'it' : 'them'} from the plenary.`) : null,
      h('h3', null, 'Notes'),
      notesPrivate
        ? h('p', { class: 'notice', 'data-testid': 'notes-private' }, 'The notes of the working groups are private.')
        : !notesLoaded ? h('p', { class: 'muted' }, 'Loading…') : notesEmpty(notes) ? h('p', { class: 'empty' }, 'No notes yet.') : h('div', { class: 'notes' }, renderNotes(notes)),
    ])
  }

  const render = perFrame(() => {
    p = readPlenary(docOf(plenaryTab), info.groups, info.title)
    renderNow()
    renderContent()
    showUpdated()
  })
  plenaryRoom.doc.on('update', render)
  plenaryRoom.onState(render)

  const watched = new Set<string>()
  function show(id: string, focus = false) {
    // the group document of the tab we leave stops syncing; its Y.Doc stays for later (offline)
    if (current !== id && current !== 'plenary' && !notesPrivate) open.get(current)?.room.provider.disconnect()
    current = id
    for (const btn of tabs.querySelectorAll<HTMLButtonElement>('button')) {
      if (btn.dataset.tab === id) {
        btn.setAttribute('aria-current', 'page')
        btn.scrollIntoView({ block: 'nearest', inline: 'nearest' })
      } else btn.removeAttribute('aria-current')
    }
    let tab = notesPrivate && id !== 'plenary' ? plenaryTab : open.get(id)
    if (!tab) {
      tab = openTab(id)
      open.set(id, tab)
    } else if (id !== 'plenary' && !notesPrivate) tab.room.provider.connect()
    if (!watched.has(id)) {
      watched.add(id)
      const r = tab.room
      const rerenderIfCurrent = () => current === id && render()
      r.doc.on('update', rerenderIfCurrent)
      r.onState(rerenderIfCurrent)
    }
    statusSlot.replaceChildren(tab.status)
    render()
    if (focus) heading.focus()
  }
  show(current)
}
