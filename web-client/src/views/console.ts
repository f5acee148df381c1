import './console.css'
import * as Y from 'yjs'
import { html, nothing, render as litRender } from 'lit-html'
import { repeat } from 'lit-html/directives/repeat.js'
import { api, describeError, download, type GroupInfo } from '../lib/api'
import { boot } from '../lib/boot'
import { announce, h, mount, perFrame } from '../lib/dom'
import { groupRoots, readConclusions } from '../lib/groupdoc'
import { storedJoinLink, storeJoinLink, tokenOfLink, verifiedJoinLink } from '../lib/joinlink'
import { numberGroups, shownItems, type NumberedGroup, type NumberedItem } from '../lib/numbering'
import { groupColor, plenaryRoots, readPlenary, type Plenary, type Screen } from '../lib/plenary'
import { openRoom, type Room } from '../lib/room'
import { statusBar } from '../lib/status'
import { autosize, bindText } from '../lib/textbinding'

interface Version {
  id: string
  label: string
  created_at: string
}

interface GroupLive {
  room: Room
  /** last time a change of this group's document (notes or conclusions) arrived from the server
   *  while this console was open (ms), null: none seen; before that, the plenary's `edited_at` */
  lastEdit: number | null
  /** what this console asked for (close/reopen) until the server's next state confirms it */
  asked: { closed: boolean; stamp: number } | null
}

const hhmm = (t: number) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
const MODERATOR_COLOR = '#111827'

// Moderator console. Rendered with lit-html (keyed by group and item): an update while the groups
// type changes text in place, so the buttons under the pointer stay the same elements and no click
// is lost. Each group's document is opened with the moderator token: for its live status (rapporteur
// online, last edit, closed) and for editing a conclusion's wording in place.
export default async function consoleView(meeting: string) {
  const b = await boot(meeting)
  if (!b) return
  const { token, info } = b
  document.title = `${info.title} — moderator console — plenary`
  if (info.role && info.role !== 'moderator') {
    mount(h('h1', null, 'Moderator console'), h('p', { class: 'error', role: 'alert' }, 'This link does not carry the moderator’s rights. Use the moderator link from the organizer.'))
    return
  }
  const base = `/api/meetings/${encodeURIComponent(meeting)}`
  // Single-letter shortcuts can be turned off (WCAG 2.1.4, e.g. for speech input); arrows stay.
  let letterKeys = true
  try {
    letterKeys = localStorage.getItem('plenary-letter-shortcuts') !== 'off'
  } catch {
    /* storage may be disabled */
  }
  const letterToggle = h('input', { type: 'checkbox', checked: letterKeys, 'data-testid': 'letter-keys' })
  letterToggle.addEventListener('change', () => {
    letterKeys = letterToggle.checked
    try {
      localStorage.setItem('plenary-letter-shortcuts', letterKeys ? 'on' : 'off')
    } catch {
      /* ignore */
    }
  })
  const privateToggle = h('input', { type: 'checkbox', checked: !!info.notes_private, 'data-testid': 'notes-private' }) as HTMLInputElement
  privateToggle.addEventListener('change', async () => {
    const want = privateToggle.checked
    privateToggle.disabled = true
    try {
      const m = await api<{ notes_private: boolean }>(base, token, { method: 'PATCH', body: { notes_private: want } })
      privateToggle.checked = !!m.notes_private
      announce(m.notes_private ? 'Group notes are now private to rapporteurs' : 'Group notes are visible to participants again')
    } catch (e) {
      privateToggle.checked = !want
      announce(describeError(e))
    }
    privateToggle.disabled = false
  })
  const room = openRoom(meeting, 'plenary', token, { write: true })
  const { doc } = room
  const { curation } = plenaryRoots(doc)
  let groupsInfo: GroupInfo[] = info.groups

  const nowSlot = h('div', { class: 'nowbar', 'data-testid': 'presenting-now', role: 'region', 'aria-label': 'Now presenting' })
  const groupsEl = h('div', { 'data-testid': 'groups' })
  const introTa = h('textarea', { id: 'intro', rows: '3', disabled: true, 'data-testid': 'intro' })
  const closingTa = h('textarea', { id: 'closing', rows: '3', disabled: true, 'data-testid': 'closing' })
  const versionsEl = h('ul', { class: 'versions' })
  const labelInput = h('input', { id: 'version-label', type: 'text', placeholder: 'e.g. Adopted in plenary', maxlength: '120' })
  const notReady = h('p', { class: 'notice', role: 'note', hidden: true }, 'Waiting for the server to prepare the plenary document…')
  const joinInput = h('input', { id: 'join-link', type: 'url', placeholder: 'https://…/m/…#token=…', 'data-testid': 'join-link', value: storedJoinLink(meeting) ?? '' })
  const joinState = h('p', { class: 'meta', 'data-testid': 'join-state', role: 'status' })

  const exportButtons = (prefix: string, stem: string) =>
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'button', class: 'small', onclick: () => dl(`${prefix}/summary.html`, `${stem}.html`, true) }, 'Open HTML'),
      h('button', { type: 'button', class: 'small', onclick: () => dl(`${prefix}/summary.md`, `${stem}.md`) }, 'Markdown'),
      h('button', { type: 'button', class: 'small', onclick: () => dl(`${prefix}/summary.json`, `${stem}.json`) }, 'JSON'),
      h('button', { type: 'button', class: 'small', 'data-testid': 'export-docx', onclick: () => dl(`${prefix}/summary.docx`, `${stem}.docx`) }, 'Word (DOCX)'),
      h('button', { type: 'button', class: 'small', 'data-testid': 'export-pdf', onclick: () => dl(`${prefix}/summary.pdf`, `${stem}.pdf`) }, 'PDF'),
    )

  mount(
    h(
      'header',
      // sticky: the connection state stays in view however far the console scrolls
      { class: 'top sticky-status', 'data-testid': 'sticky-status' },
      h('div', { class: 'top-title' }, h('p', { class: 'crumb' }, 'Moderator console'), h('h1', { title: info.title }, info.title)),
      h(
        'div',
        { class: 'top-actions' },
        statusBar(room, { write: true, showFollowers: true }),
        h(
          'a',
          {
            class: 'button primary',
            href: `/m/${encodeURIComponent(meeting)}/projector#token=${encodeURIComponent(token)}`,
            target: '_blank',
            rel: 'noopener noreferrer',
            'data-testid': 'open-projector',
          },
          'Open projector',
          h('span', { class: 'sr-only' }, ' (new window)'),
        ),
      ),
    ),
    notReady,
    nowSlot,
    h(
      'div',
      { class: 'console-grid' },
      h(
        'div',
        null,
        h(
          'section',
          { 'aria-labelledby': 'groups-h' },
          h(
            'div',
            { class: 'row groups-bar' },
            h('h2', { id: 'groups-h' }, 'Working groups'),
            h('span', { class: 'spacer' }),
            h('button', { type: 'button', class: 'small', 'data-testid': 'collapse-all', onclick: () => setAllCollapsed(true) }, 'Collapse all'),
            h('button', { type: 'button', class: 'small', onclick: () => setAllCollapsed(false) }, 'Expand all'),
          ),
          h('p', { class: 'meta' }, 'Numbers G.N are the ones on the projector, the phones and the exports. Hidden items have no number.'),
          groupsEl,
        ),
      ),
      h(
        'div',
        null,
        h(
          'section',
          { 'aria-labelledby': 'keys-h' },
          h('h2', { id: 'keys-h' }, 'Keys'),
          h(
            'p',
            { class: 'meta shortcuts', id: 'shortcuts', 'data-testid': 'shortcuts' },
            h('kbd', { 'aria-label': 'Right arrow' }, '→'),
            ' ',
            h('kbd', null, 'PageDown'),
            ' ',
            h('kbd', null, 'Space'),
            ' or ',
            h('kbd', null, 'J'),
            ' next item; ',
            h('kbd', { 'aria-label': 'Left arrow' }, '←'),
            ' ',
            h('kbd', null, 'PageUp'),
            ' or ',
            h('kbd', null, 'K'),
            ' previous item; ',
            h('kbd', null, 'B'),
            ' blank screen; ',
            h('kbd', null, 'F'),
            ' focus / overview — as a presentation clicker sends them, when the cursor is not in a text field. ',
            h('label', { class: 'inline-check' }, letterToggle, 'Letter keys J and K, B and F'),
          ),
        ),
        h(
          'section',
          { 'aria-labelledby': 'join-h' },
          h('h2', { id: 'join-h' }, 'Join slide'),
          h(
            'p',
            { class: 'meta', 'data-testid': 'projector-note' },
            '“Open projector” opens the projector with your moderator token, which is never shown on the big screen. Its join slide shows the QR code of the participant link when this browser knows it (from the organizer page, or pasted here); otherwise it asks people to scan the code on their handout.',
          ),
          h(
            'form',
            { class: 'row', onsubmit: (e: Event) => (e.preventDefault(), void saveJoin()) },
            h('div', { class: 'grow' }, h('label', { for: 'join-link' }, 'Participant link'), joinInput),
            h('button', { type: 'submit', style: { alignSelf: 'flex-end' } }, 'Save'),
          ),
          joinState,
        ),
        h(
          'section',
          { 'aria-labelledby': 'texts-h' },
          h('h2', { id: 'texts-h' }, 'Introduction and closing'),
          h('label', { for: 'intro' }, 'Introduction (shown above the conclusions)'),
          introTa,
          h('label', { for: 'closing' }, 'Closing text (shown below the conclusions)'),
          closingTa,
        ),
        h(
          'section',
          { 'aria-labelledby': 'meeting-h' },
          h('h2', { id: 'meeting-h' }, 'All groups'),
          h(
            'div',
            { class: 'row' },
            h('button', { type: 'button', onclick: () => closeAll(true), 'data-testid': 'close-all' }, 'Close all groups'),
            h('button', { type: 'button', onclick: () => closeAll(false) }, 'Reopen all groups'),
          ),
          h('label', { class: 'inline-check' }, privateToggle, 'Group notes private to rapporteurs'),
        ),
        h(
          'section',
          { 'aria-labelledby': 'export-h' },
          h('h2', { id: 'export-h' }, 'Export'),
          h('p', { class: 'meta' }, 'The current summary, following your curation:'),
          exportButtons(base, `${meeting}-summary`),
        ),
        h(
          'section',
          { 'aria-labelledby': 'versions-h' },
          h('h2', { id: 'versions-h' }, 'Adopted versions'),
          h(
            'form',
            { class: 'row', onsubmit: (e: Event) => (e.preventDefault(), adopt()) },
            h('div', { class: 'grow' }, h('label', { for: 'version-label' }, 'Label'), labelInput),
            h('button', { type: 'submit', class: 'primary', style: { alignSelf: 'flex-end' } }, 'Adopt this version'),
          ),
          versionsEl,
        ),
      ),
    ),
  )
  // the sticky header holds the connection state; the sticky "now presenting" bar sits under it
  const stickyHeader = document.querySelector<HTMLElement>('header.sticky-status')
  if (stickyHeader && typeof ResizeObserver !== 'undefined') {
    new ResizeObserver(() => document.documentElement.style.setProperty('--sticky-h', `${stickyHeader.offsetHeight}px`)).observe(stickyHeader)
  }

  async function saveJoin() {
    const v = joinInput.value.trim()
    if (!v) {
      storeJoinLink(meeting, '')
      joinState.textContent = 'Removed: the join slide asks people to scan the code on their handout.'
      return
    }
    if (!tokenOfLink(meeting, v)) {
      joinState.textContent = 'This is not a participant link of this meeting (it looks like …/m/' + meeting + '#token=…).'
      return
    }
    const ok = await verifiedJoinLink(meeting, v)
    if (!ok) {
      joinState.textContent = 'The server does not accept this as a participant link (only a participant link may go on the big screen).'
      return
    }
    storeJoinLink(meeting, v)
    joinState.textContent = 'Saved: projectors opened from this browser show its QR code on the join slide.'
  }
  void verifiedJoinLink(meeting, storedJoinLink(meeting)).then((l) => {
    joinState.textContent = l ? 'The join slide shows the QR code of the participant link known to this browser.' : 'No participant link known here: the join slide asks people to scan the code on their handout.'
  })

  async function dl(path: string, filename: string, open = false) {
    try {
      await download(path, token, filename, open)
    } catch (e) {
      announce(describeError(e))
    }
  }

  // ---- the groups' own documents: live status and inline editing ----
  const live = new Map<string, GroupLive>()
  function liveOf(g: string): GroupLive {
    let gl = live.get(g)
    if (gl) return gl
    const r = openRoom(meeting, g, token, { write: true })
    r.provider.awareness.setLocalState(null)
    const entry: GroupLive = { room: r, lastEdit: null, asked: null }
    gl = entry
    live.set(g, entry)
    r.doc.on('update', (_u: Uint8Array, origin: unknown) => {
      if (origin === r.provider && r.state.synced) entry.lastEdit = Date.now()
      render()
    })
    r.onState((s) => {
      if (entry.asked && s.serverStamp > entry.asked.stamp) entry.asked = null
      render()
    })
    r.provider.awareness.on('change', render)
    return entry
  }
  const closedOf = (gid: string, p: Plenary) => {
    const gl = live.get(gid)
    if (gl?.asked) return gl.asked.closed
    if (gl && gl.room.state.closed !== null) return gl.room.state.closed
    return p.groups.find((g) => g.id === gid)?.closed ?? !!groupsInfo.find((g) => g.id === gid)?.closed
  }
  const rapporteursOnline = (gid: string) => {
    const gl = live.get(gid)
    if (!gl) return 0
    let n = 0
    gl.room.provider.awareness.getStates().forEach((st, id) => {
      if (id !== 0 && id !== gl.room.doc.clientID && (st as { role?: string }).role === 'rapporteur') n++
    })
    return n
  }

  // inline editing: a <textarea> bound to the conclusion's Y.Text in the group's document
  const editing = new Map<string, { ta: HTMLTextAreaElement; unbind: () => void; gid: string }>()
  function startEdit(it: NumberedItem) {
    const gl = liveOf(it.g.id)
    const m = readConclusions(groupRoots(gl.room.doc).conclusions).find((c) => c.id === it.c.id)
    if (!m?.text) return announce('This conclusion is not loaded yet — try again in a moment.')
    const ta = h('textarea', { rows: '2', class: 'inline-edit', 'data-testid': 'inline-edit', 'aria-label': `Wording of conclusion ${it.label ?? ''} of ${it.g.title}` })
    const unbind = bindText(ta, m.text, () => autosize(ta))
    editing.set(it.c.key, { ta, unbind, gid: it.g.id })
    gl.room.provider.awareness.setLocalState({ user: { name: 'Moderator', color: MODERATOR_COLOR }, editing: it.c.id })
    ta.addEventListener('focus', () => gl.room.provider.awareness.setLocalStateField('editing', it.c.id))
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') stopEdit(it.c.key)
    })
    render.now()
    ta.focus()
    autosize(ta)
  }
  function stopEdit(key: string) {
    const e = editing.get(key)
    if (!e) return
    e.unbind()
    editing.delete(key)
    const gl = live.get(e.gid)
    if (gl && ![...editing.values()].some((x) => x.gid === e.gid)) gl.room.provider.awareness.setLocalState(null)
    render.now()
    groupsEl.querySelector<HTMLElement>(`li[data-key="${CSS.escape(key)}"] button[data-action="edit"]`)?.focus()
  }

  // ---- curation writes (only once synced: the server creates intro/closing/hidden) ----
  let ready = false
  const write = (fn: () => void) => {
    if (!ready) return announce('Not connected yet — try again in a moment.')
    doc.transact(fn)
  }
  const hiddenMap = () => {
    const m = curation.get('hidden')
    return m instanceof Y.Map ? (m as Y.Map<unknown>) : null
  }
  function toggleHidden(key: string) {
    const m = hiddenMap()
    if (!m) return announce('The plenary document is not ready yet.')
    write(() => (m.get(key) === true ? m.delete(key) : m.set(key, true)))
  }
  function togglePresenting(key: string) {
    write(() => curation.set('presenting', curation.get('presenting') === key ? null : key))
  }
  function setScreen(s: Screen | null) {
    write(() => (s ? curation.set('screen', s) : curation.delete('screen')))
    announce(s ? `Projector: ${s}` : 'Projector: automatic (focus while an item is presented)')
  }
  function moveGroup(groups: NumberedGroup[], i: number, dir: number) {
    const j = i + dir
    if (j < 0 || j >= groups.length) return
    const ids = groups.map((g) => g.g.id)
    ;[ids[i], ids[j]] = [ids[j], ids[i]]
    write(() => curation.set('order', ids))
    announce(`${groups[i].g.title} moved to position ${j + 1}`)
  }
  async function setClosed(g: string, closed: boolean) {
    const gl = liveOf(g)
    gl.asked = { closed, stamp: gl.room.state.serverStamp }
    render()
    try {
      await api(`${base}/groups/${encodeURIComponent(g)}/${closed ? 'close' : 'reopen'}`, token, { method: 'POST' })
      const title = groupsInfo.find((x) => x.id === g)?.title ?? g
      announce(`${title} ${closed ? 'closed' : 'reopened'}`)
    } catch (e) {
      gl.asked = null
      announce(describeError(e))
    }
    render()
  }
  async function closeAll(closed: boolean) {
    for (const gl of live.values()) gl.asked = { closed, stamp: gl.room.state.serverStamp }
    render()
    try {
      await api(`${base}/${closed ? 'close' : 'reopen'}`, token, { method: 'POST' })
      groupsInfo = (await api<{ groups: GroupInfo[] }>(base, token)).groups
      announce(closed ? 'All groups closed' : 'All groups reopened')
    } catch (e) {
      for (const gl of live.values()) gl.asked = null
      announce(describeError(e))
    }
    render()
  }
  async function loadVersions() {
    try {
      const r = await api<{ versions: Version[] }>(`${base}/versions`, token)
      versionsEl.replaceChildren(
        ...(r.versions.length
          ? r.versions.map((v) =>
              h(
                'li',
                null,
                h('strong', null, v.label || v.id),
                ' ',
                h('span', { class: 'meta' }, new Date(v.created_at).toLocaleString()),
                exportButtons(`${base}/versions/${encodeURIComponent(v.id)}`, `${meeting}-${v.id}`),
              ),
            )
          : [h('li', { class: 'empty' }, 'No version adopted yet.')]),
      )
    } catch (e) {
      versionsEl.replaceChildren(h('li', { class: 'empty' }, describeError(e)))
    }
  }
  async function adopt() {
    const label = labelInput.value.trim() || `Version of ${new Date().toLocaleString()}`
    try {
      await api(`${base}/versions`, token, { method: 'POST', body: { label } })
      labelInput.value = ''
      announce(`Version “${label}” adopted`)
      loadVersions()
    } catch (e) {
      announce(describeError(e))
    }
  }

  // ---- collapsible groups (kept per tab) ----
  const collapsedKey = `plenary-collapsed:${meeting}`
  let collapsed = new Set<string>()
  try {
    collapsed = new Set(JSON.parse(sessionStorage.getItem(collapsedKey) ?? '[]') as string[])
  } catch {
    /* ignore */
  }
  const saveCollapsed = () => {
    try {
      sessionStorage.setItem(collapsedKey, JSON.stringify([...collapsed]))
    } catch {
      /* ignore */
    }
  }
  function toggleCollapsed(g: string) {
    if (collapsed.has(g)) collapsed.delete(g)
    else collapsed.add(g)
    saveCollapsed()
    render()
  }
  function setAllCollapsed(on: boolean) {
    collapsed = new Set(on ? readPlenary(doc, groupsInfo, info.title).groups.map((g) => g.id) : [])
    saveCollapsed()
    render()
  }

  // ---- stepping ----
  function step(d: number) {
    const p = readPlenary(doc, groupsInfo, info.title)
    const visible = shownItems(p)
    const at = p.presenting ? visible.findIndex((v) => v.c.key === p.presenting) : -1
    if (!visible.length) return announce('Nothing to present yet.')
    const i = at < 0 ? (d > 0 ? 0 : visible.length - 1) : at + d
    if (i < 0) return announce('This is the first item.')
    if (i >= visible.length) return announce('This is the last item.')
    write(() => curation.set('presenting', visible[i].c.key))
    announce(`Presenting ${visible[i].label}, item ${i + 1} of ${visible.length}`)
  }
  const effectiveScreen = (p: Plenary): Screen => p.screen ?? (p.presenting ? 'focus' : 'overview')
  // Keys as a presentation clicker sends them, unless typing somewhere.
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return
    const t = e.target as HTMLElement | null
    if (t && (t.isContentEditable || t.closest('input, textarea, select, [contenteditable]:not([contenteditable="false"])'))) return
    const k = e.key
    const letter = /^[jkbfJKBF]$/.test(k)
    if (letter && !letterKeys) return
    // Space on a focused button presses it: leave it to the button
    if (k === ' ' && t && t.closest('button, a, summary')) return
    if (k === 'j' || k === 'J' || k === 'ArrowRight' || k === 'PageDown' || k === ' ') step(1)
    else if (k === 'k' || k === 'K' || k === 'ArrowLeft' || k === 'PageUp') step(-1)
    else if (k === 'b' || k === 'B') {
      const p = readPlenary(doc, groupsInfo, info.title)
      setScreen(effectiveScreen(p) === 'blank' ? null : 'blank')
    } else if (k === 'f' || k === 'F') {
      const p = readPlenary(doc, groupsInfo, info.title)
      setScreen(effectiveScreen(p) === 'focus' ? 'overview' : 'focus')
    } else return
    e.preventDefault()
  })

  // ---- rendering (lit-html, keyed) ----
  const SCREEN_LABELS: [Screen | null, string][] = [
    [null, 'Auto'],
    ['focus', 'Focus'],
    ['overview', 'Overview'],
    ['join', 'Join'],
    ['blank', 'Blank'],
  ]
  const snippet = (t: string, n = 140) => (t.length > n ? t.slice(0, n - 1).trimEnd() + '…' : t)

  function nowTpl(p: Plenary) {
    const visible = shownItems(p)
    const at = p.presenting ? visible.findIndex((v) => v.c.key === p.presenting) : -1
    const cur = at >= 0 ? visible[at] : null
    const hiddenPresented = !cur && p.presenting ? numberGroups(p).flatMap((ng) => ng.all).find((x) => x.c.key === p.presenting) : null
    const next = at < 0 ? visible[0] : visible[at + 1]
    return html`
      <div class="now-main">
        <p class="now-label">Now presenting</p>
        ${cur
          ? html`<div class="now-card card" style="--gc:${groupColor(cur.g.color)}">
              <p class="meta"><strong class="now-num" data-testid="now-number">${cur.label}</strong> ${cur.g.title} · item ${cur.n} of ${cur.of}</p>
              <p class="ctext now-text">${cur.c.text}</p>
            </div>`
          : hiddenPresented
            ? html`<div class="now-card card"><p class="meta">${hiddenPresented.g.title} — hidden, so not on the projector</p><p class="ctext now-text">${hiddenPresented.c.text}</p></div>`
            : html`<p class="empty">Nothing is being presented. Choose “Present” on an item, or press →.</p>`}
      </div>
      <div class="now-ctrl">
        <div class="row stepper">
          <button type="button" aria-keyshortcuts="ArrowLeft PageUp K" aria-describedby="shortcuts" ?disabled=${!visible.length || at === 0} @click=${() => step(-1)}>◀ Present previous</button>
          <button type="button" class="primary" aria-keyshortcuts="ArrowRight PageDown Space J" aria-describedby="shortcuts" ?disabled=${!visible.length || at === visible.length - 1} @click=${() => step(1)}>
            ${at < 0 ? 'Present the first item ▶' : 'Present next ▶'}
          </button>
          ${visible.length ? html`<span class="meta" data-testid="position">${at < 0 ? `${visible.length} items to present` : `Item ${at + 1} of ${visible.length}`}</span>` : nothing}
          ${p.presenting ? html`<button type="button" class="small" @click=${() => write(() => curation.set('presenting', null))}>Stop presenting</button>` : nothing}
        </div>
        <p class="meta next-preview" data-testid="next-preview">${next ? html`Next: <strong>${next.label}</strong> ${next.g.title} — ${snippet(next.c.text)}` : at >= 0 ? 'This is the last item.' : ''}</p>
        <div class="row screens" role="group" aria-label="Projector screen">
          <span class="meta">Projector:</span>
          ${SCREEN_LABELS.map(
            ([s, label]) =>
              html`<button type="button" class="small" data-testid=${`screen-${s ?? 'auto'}`} aria-pressed=${String(p.screen === s)} @click=${() => setScreen(s)}>${label}</button>`,
          )}
          <span class="meta" data-testid="screen-now">showing: ${effectiveScreen(p)}</span>
        </div>
      </div>
    `
  }

  function itemTpl(it: NumberedItem, p: Plenary) {
    const key = it.c.key
    const presenting = p.presenting === key
    const ed = editing.get(key)
    return html`<li class="${it.c.status}${presenting ? ' presenting' : ''}${it.c.hidden ? ' is-hidden' : ''}" data-key=${key}>
      <span class="num" data-testid="number">${it.label ?? 'hidden'}</span>
      <div class="citem">
        ${ed ? html`<div class="edit-wrap">${ed.ta}<span class="meta">Editing the group’s text live (the rapporteur sees “Moderator”). Esc or Done to finish.</span></div>` : html`<span class="ctext">${it.c.text}</span>`}
        <span class="acts">
          ${it.c.status === 'final' ? html`<span class="badge final">final</span>` : html`<span class="badge">draft</span>`}
          <button type="button" class="small" aria-pressed=${String(presenting)} data-action="present" ?disabled=${it.c.hidden} @click=${() => togglePresenting(key)}>Present</button>
          <button type="button" class="small" aria-pressed=${String(it.c.hidden)} data-action="hide" @click=${() => toggleHidden(key)}>Hide</button>
          <button type="button" class="small" aria-pressed=${String(!!ed)} data-action="edit" @click=${() => (ed ? stopEdit(key) : startEdit(it))}>${ed ? 'Done' : 'Edit'}</button>
        </span>
      </div>
    </li>`
  }

  function groupTpl(ng: NumberedGroup, i: number, all: NumberedGroup[], p: Plenary) {
    const g = ng.g
    const closed = closedOf(g.id, p)
    const isCollapsed = collapsed.has(g.id)
    const items = ng.all.filter((it) => it.c.text.trim() !== '' || editing.has(it.c.key))
    const finals = items.filter((it) => it.c.status === 'final').length
    const drafts = items.length - finals
    const online = rapporteursOnline(g.id)
    const gl = live.get(g.id)
    const hiddenN = items.filter((it) => it.c.hidden).length
    // the latest known edit: the server's stamp of the conclusions (to the minute, from the start)
    // or an update of the group's document seen live here (notes too)
    const lastEdit = Math.max(g.editedAt ?? 0, gl?.lastEdit ?? 0)
    return html`<section class="cgroup${isCollapsed ? ' collapsed' : ''}" style="--gc:${groupColor(g.color)}" data-group=${g.id} aria-label=${g.title}>
      <div class="cgroup-head">
        <button type="button" class="small collapse" aria-expanded=${String(!isCollapsed)} aria-label=${`${isCollapsed ? 'Expand' : 'Collapse'} ${g.title}`} data-testid="collapse" @click=${() => toggleCollapsed(g.id)}>${isCollapsed ? '▸' : '▾'}</button>
        <h3><span class="gnum">${ng.gi}.</span> ${g.title}${closed ? html`<span class="badge closed-badge" data-testid="closed-badge">closed</span>` : nothing}</h3>
        <span class="gactions">
          <button type="button" class="small" aria-label=${`Move ${g.title} up`} ?disabled=${i === 0} @click=${() => moveGroup(all, i, -1)}>↑</button>
          <button type="button" class="small" aria-label=${`Move ${g.title} down`} ?disabled=${i === all.length - 1} @click=${() => moveGroup(all, i, 1)}>↓</button>
          <button type="button" class="small" data-testid="close-group" @click=${() => setClosed(g.id, !closed)}>${closed ? 'Reopen group' : 'Close group'}<span class="sr-only"> ${g.title}</span></button>
          <a class="button small" href=${`/m/${meeting}/g/${g.id}#token=${encodeURIComponent(token)}`} target="_blank" rel="noopener">Open editor<span class="sr-only"> of ${g.title}</span></a>
        </span>
        <p class="meta gstatus" data-testid="group-status">
          <span class=${online ? 'dot on' : 'dot'} aria-hidden="true"></span>${online ? `Rapporteur online${online > 1 ? ` (${online})` : ''}` : 'No rapporteur online'}
          · ${finals} final, ${drafts} draft${hiddenN ? `, ${hiddenN} hidden` : ''} · ${lastEdit ? html`last edit <time datetime=${new Date(lastEdit).toISOString()}>${hhmm(lastEdit)}</time>` : 'no edit yet'}${closed ? ' · closed' : ''}
        </p>
      </div>
      ${isCollapsed
        ? nothing
        : items.length
          ? html`<ol class="conclusions numbered">${repeat(items, (it) => it.c.key, (it) => itemTpl(it, p))}</ol>`
          : html`<p class="empty">No conclusions yet.</p>`}
    </section>`
  }

  const paint = () => {
    const p = readPlenary(doc, groupsInfo, info.title)
    for (const g of p.groups) liveOf(g.id)
    // editors of items that disappeared
    for (const key of [...editing.keys()]) if (!p.groups.some((g) => g.conclusions.some((c) => c.key === key))) stopEdit(key)
    const ngs = numberGroups(p)
    litRender(nowTpl(p), nowSlot)
    litRender(html`${repeat(ngs, (ng) => ng.g.id, (ng, i) => groupTpl(ng, i, ngs, p))}`, groupsEl)
  }
  const render = Object.assign(perFrame(paint), { now: paint })
  doc.on('update', render)

  let boundTexts = false
  const bindTexts = () => {
    if (boundTexts) return
    const intro = curation.get('intro')
    const closing = curation.get('closing')
    notReady.hidden = intro instanceof Y.Text && closing instanceof Y.Text
    if (!(intro instanceof Y.Text) || !(closing instanceof Y.Text)) return
    boundTexts = true
    bindText(introTa, intro, () => autosize(introTa))
    bindText(closingTa, closing, () => autosize(closingTa))
    introTa.disabled = false
    closingTa.disabled = false
    autosize(introTa)
    autosize(closingTa)
  }
  room.whenSynced.then(() => {
    ready = true
    bindTexts()
    render()
  })
  doc.on('update', bindTexts)
  // the minute of "last edit" ages
  setInterval(render, 30_000)
  render()
  loadVersions()
}
