import './console.css'
import * as Y from 'yjs'
import { api, describeError, download, type GroupInfo } from '../lib/api'
import { boot } from '../lib/boot'
import { announce, h, mount, perFrame, rerender } from '../lib/dom'
import { groupColor, plenaryRoots, readPlenary, type PGroup } from '../lib/plenary'
import { openRoom } from '../lib/room'
import { statusBar } from '../lib/status'
import { autosize, bindText } from '../lib/textbinding'

interface Version {
  id: string
  label: string
  created_at: string
}

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
  const room = openRoom(meeting, 'plenary', token, { write: true })
  const { doc } = room
  const { curation } = plenaryRoots(doc)
  let groupsInfo: GroupInfo[] = info.groups

  const nowSlot = h('div', { 'data-testid': 'presenting-now' })
  const groupsEl = h('div', { 'data-testid': 'groups' })
  const introTa = h('textarea', { id: 'intro', rows: '3', disabled: true, 'data-testid': 'intro' })
  const closingTa = h('textarea', { id: 'closing', rows: '3', disabled: true, 'data-testid': 'closing' })
  const versionsEl = h('ul', { class: 'versions' })
  const labelInput = h('input', { id: 'version-label', type: 'text', placeholder: 'e.g. Adopted in plenary', maxlength: '120' })
  const notReady = h('p', { class: 'notice', role: 'note', hidden: true }, 'Waiting for the server to prepare the plenary document…')

  const exportButtons = (prefix: string, stem: string) =>
    h(
      'div',
      { class: 'row' },
      h('button', { type: 'button', class: 'small', onclick: () => dl(`${prefix}/summary.html`, `${stem}.html`, true) }, 'Open HTML'),
      h('button', { type: 'button', class: 'small', onclick: () => dl(`${prefix}/summary.md`, `${stem}.md`) }, 'Markdown'),
      h('button', { type: 'button', class: 'small', onclick: () => dl(`${prefix}/summary.json`, `${stem}.json`) }, 'JSON'),
    )

  mount(
    h(
      'header',
      { class: 'top' },
      h('div', { class: 'top-title' }, h('p', { class: 'crumb' }, 'Moderator console'), h('h1', null, info.title)),
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
    h(
      'div',
      { class: 'console-grid' },
      h(
        'div',
        null,
        h(
          'section',
          { 'aria-labelledby': 'now-h' },
          h('h2', { id: 'now-h' }, 'Presenting now'),
          nowSlot,
          h(
            'p',
            { class: 'meta shortcuts', id: 'shortcuts', 'data-testid': 'shortcuts' },
            'Keyboard: ',
            h('kbd', null, 'J'),
            ' or ',
            h('kbd', { 'aria-label': 'Right arrow' }, '→'),
            ' next item, ',
            h('kbd', null, 'K'),
            ' or ',
            h('kbd', { 'aria-label': 'Left arrow' }, '←'),
            ' previous item (when the cursor is not in a text field). ',
            h('label', { class: 'inline-check' }, letterToggle, 'Letter keys J and K'),
          ),
        ),
        h(
          'section',
          { 'aria-labelledby': 'groups-h' },
          h('h2', { id: 'groups-h' }, 'Working groups'),
          h('p', { class: 'meta' }, 'Order the groups, hide items from the projector and the exports, and choose the item being presented.'),
          groupsEl,
        ),
      ),
      h(
        'div',
        null,
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

  async function dl(path: string, filename: string, open = false) {
    try {
      await download(path, token, filename, open)
    } catch (e) {
      announce(describeError(e))
    }
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
  function moveGroup(groups: PGroup[], i: number, dir: number) {
    const j = i + dir
    if (j < 0 || j >= groups.length) return
    const ids = groups.map((g) => g.id)
    ;[ids[i], ids[j]] = [ids[j], ids[i]]
    write(() => curation.set('order', ids))
    announce(`${groups[i].title} moved to position ${j + 1}`)
  }
  async function setClosed(g: string, closed: boolean) {
    try {
      // The layout spec answers {id,title,closed}; some servers answer the meeting's {id,groups}.
      const r = await api<GroupInfo & { groups?: GroupInfo[] }>(`${base}/groups/${encodeURIComponent(g)}/${closed ? 'close' : 'reopen'}`, token, { method: 'POST' })
      if (Array.isArray(r.groups)) groupsInfo = r.groups
      else groupsInfo = groupsInfo.map((x) => (x.id === g ? { ...x, closed: r.closed ?? closed } : x))
      const title = groupsInfo.find((x) => x.id === g)?.title ?? g
      announce(`${title} ${closed ? 'closed' : 'reopened'}`)
      render()
    } catch (e) {
      announce(describeError(e))
    }
  }
  async function closeAll(closed: boolean) {
    try {
      await api(`${base}/${closed ? 'close' : 'reopen'}`, token, { method: 'POST' })
      groupsInfo = (await api<{ groups: GroupInfo[] }>(base, token)).groups
      announce(closed ? 'All groups closed' : 'All groups reopened')
      render()
    } catch (e) {
      announce(describeError(e))
    }
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

  // ---- rendering ----
  function groupSection(g: PGroup, i: number, groups: PGroup[], presenting: string | null) {
    const items = g.conclusions.filter((c) => c.text.trim() !== '')
    return h(
      'section',
      { class: 'cgroup', style: { '--gc': groupColor(g.color) }, 'data-group': g.id, 'aria-label': g.title },
      h(
        'div',
        { class: 'cgroup-head' },
        h('h3', null, `${i + 1}. ${g.title}`, g.closed ? h('span', { class: 'badge', style: { marginLeft: '0.5rem' } }, 'closed') : null),
        h('button', { type: 'button', class: 'small', 'aria-label': `Move ${g.title} up`, disabled: i === 0, 'data-focus-key': `${g.id}:up`, onclick: () => moveGroup(groups, i, -1) }, '↑'),
        h('button', { type: 'button', class: 'small', 'aria-label': `Move ${g.title} down`, disabled: i === groups.length - 1, 'data-focus-key': `${g.id}:down`, onclick: () => moveGroup(groups, i, 1) }, '↓'),
        h(
          'button',
          { type: 'button', class: 'small', 'data-focus-key': `${g.id}:close`, 'data-testid': 'close-group', onclick: () => setClosed(g.id, !g.closed) },
          g.closed ? 'Reopen group' : 'Close group',
          h('span', { class: 'sr-only' }, ` ${g.title}`),
        ),
        h('a', { class: 'button small', href: `/m/${meeting}/g/${g.id}#token=${encodeURIComponent(token)}`, target: '_blank', rel: 'noopener' }, 'Open editor', h('span', { class: 'sr-only' }, ` of ${g.title}`)),
      ),
      items.length
        ? h(
            'ol',
            { class: 'conclusions' },
            items.map((c) =>
              h(
                'li',
                { class: `${c.status}${presenting === c.key ? ' presenting' : ''}${c.hidden ? ' is-hidden' : ''}`, 'data-key': c.key },
                h(
                  'div',
                  { class: 'citem' },
                  h('span', { class: 'ctext' }, c.text),
                  h(
                    'span',
                    { class: 'acts' },
                    c.hidden ? h('span', { class: 'badge' }, 'hidden') : null,
                    c.status === 'final' ? h('span', { class: 'badge final' }, 'final') : h('span', { class: 'badge' }, 'draft'),
                    h(
                      'button',
                      { type: 'button', class: 'small', 'aria-pressed': String(presenting === c.key), 'data-focus-key': `${c.key}:present`, 'data-action': 'present', onclick: () => togglePresenting(c.key) },
                      'Present',
                    ),
                    h('button', { type: 'button', class: 'small', 'aria-pressed': String(c.hidden), 'data-focus-key': `${c.key}:hide`, 'data-action': 'hide', onclick: () => toggleHidden(c.key) }, 'Hide'),
                  ),
                ),
              ),
            ),
          )
        : h('p', { class: 'empty' }, 'No conclusions yet.'),
    )
  }

  /** the visible items in projector order, and the position of the presented one (-1: none) */
  function steps(p = readPlenary(doc, groupsInfo, info.title)) {
    const visible = p.groups.flatMap((g) => g.conclusions.filter((c) => !c.hidden && c.text.trim() !== '').map((c) => ({ key: c.key, text: c.text })))
    return { visible, at: p.presenting ? visible.findIndex((v) => v.key === p.presenting) : -1 }
  }
  function step(d: number) {
    const { visible, at } = steps()
    if (!visible.length) return announce('Nothing to present yet.')
    const i = at < 0 ? (d > 0 ? 0 : visible.length - 1) : at + d
    if (i < 0) return announce('This is the first item.')
    if (i >= visible.length) return announce('This is the last item.')
    write(() => curation.set('presenting', visible[i].key))
    announce(`Presenting item ${i + 1} of ${visible.length}`)
  }
  // Shortcuts (as with a presentation clicker): J / → next, K / ← previous, unless typing somewhere.
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return
    const t = e.target as HTMLElement | null
    if (t && (t.isContentEditable || t.closest('input, textarea, select, [contenteditable]:not([contenteditable="false"])'))) return
    const k = e.key
    const letter = k === 'j' || k === 'J' || k === 'k' || k === 'K'
    if (letter && !letterKeys) return
    const d = k === 'j' || k === 'J' || k === 'ArrowRight' ? 1 : k === 'k' || k === 'K' || k === 'ArrowLeft' ? -1 : 0
    if (!d) return
    e.preventDefault()
    step(d)
  })

  const render = perFrame(() => {
    const p = readPlenary(doc, groupsInfo, info.title)
    // closing state: the API is authoritative right after a click; the plenary doc follows
    for (const g of p.groups) {
      const gi = groupsInfo.find((x) => x.id === g.id)
      if (gi && gi.closed !== undefined) g.closed = gi.closed
    }
    const presented = p.groups.flatMap((g) => g.conclusions.map((c) => ({ g, c }))).find(({ c }) => c.key === p.presenting)
    const { visible, at } = steps(p)
    const stepper = h(
      'div',
      { class: 'row stepper' },
      h(
        'button',
        { type: 'button', 'data-focus-key': 'prev', 'aria-keyshortcuts': 'K ArrowLeft', 'aria-describedby': 'shortcuts', disabled: !visible.length || at === 0, onclick: () => step(-1) },
        '◀ Present previous',
      ),
      h(
        'button',
        { type: 'button', class: 'primary', 'data-focus-key': 'next', 'aria-keyshortcuts': 'J ArrowRight', 'aria-describedby': 'shortcuts', disabled: !visible.length || at === visible.length - 1, onclick: () => step(1) },
        at < 0 ? 'Present the first item ▶' : 'Present next ▶',
      ),
      visible.length ? h('span', { class: 'meta', 'data-testid': 'position' }, at < 0 ? `${visible.length} items to present` : `Item ${at + 1} of ${visible.length}`) : null,
    )
    rerender(nowSlot, () => [
      presented
        ? h(
            'div',
            { class: 'card now-card', style: { '--gc': groupColor(presented.g.color) } },
            h('p', { class: 'meta' }, presented.g.title, presented.c.hidden ? ' — hidden, so not on the projector' : ''),
            h('p', { class: 'ctext' }, presented.c.text),
            h('button', { type: 'button', 'data-focus-key': 'stop-presenting', onclick: () => write(() => curation.set('presenting', null)) }, 'Stop presenting'),
          )
        : h('p', { class: 'empty' }, 'Nothing is being presented. Choose “Present” on an item.'),
      stepper,
    ])
    rerender(groupsEl, () => p.groups.map((g, i) => groupSection(g, i, p.groups, p.presenting)))
  })
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
  render()
  loadVersions()
}
