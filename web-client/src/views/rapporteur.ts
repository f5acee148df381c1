import './rapporteur.css'
import * as Y from 'yjs'
import { Editor } from '@tiptap/core'
import StarterKit from '@tiptap/starter-kit'
import Collaboration from '@tiptap/extension-collaboration'
import CollaborationCaret from '@tiptap/extension-collaboration-caret'
import { boot } from '../lib/boot'
import { announce, h, mount } from '../lib/dom'
import { groupRoots } from '../lib/groupdoc'
import { POSITION, TRASHED, endPosition, isTrashed, liveMaps, moveItem, orderedMaps, restoreItem, trashItem, trashedMaps } from '../lib/conclusions'
import { openRoom, type Room } from '../lib/room'
import { statusBar } from '../lib/status'
import { autosize, bindText, diff } from '../lib/textbinding'
import { api, ApiError } from '../lib/api'
import { spreadKeys } from '../lib/conclusions'

// Carets and name badges: white text on these passes WCAG AA.
const USER_COLORS = ['#b3261e', '#1d4ed8', '#047857', '#7c3aed', '#b45309', '#0e7490', '#be185d', '#4d7c0f', '#6d28d9', '#9a3412']

const LOCAL = { local: true }

function storedName(): string {
  try {
    return localStorage.getItem('plenary-name') ?? ''
  } catch {
    return ''
  }
}

function newId(): string {
  const a = new Uint8Array(6)
  crypto.getRandomValues(a)
  return 'c-' + Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** Plain text of each paragraph-like node of the notes (for "not kept" comparisons). */
function notesLines(frag: Y.XmlFragment): string[] {
  const out: string[] = []
  for (const n of frag.createTreeWalker((x) => x instanceof Y.XmlText)) {
    const t = ((n as Y.XmlText).toDelta() as { insert: unknown }[]).map((op) => (typeof op.insert === 'string' ? op.insert : '')).join('')
    if (t.trim()) out.push(t)
  }
  return out
}

interface Snapshot {
  notes: string[]
  conclusions: string[]
}
function snapshot(doc: Y.Doc): Snapshot {
  const { notes, conclusions } = groupRoots(doc)
  const texts: string[] = []
  conclusions.forEach((m) => {
    const t = m instanceof Y.Map ? m.get('text') : null
    if (t instanceof Y.Text && t.toString().trim()) texts.push(t.toString())
  })
  return { notes: notesLines(notes), conclusions: texts }
}
/** what `before` holds that `after` does not (line by line) */
function notKept(before: Snapshot, after: Snapshot): Snapshot {
  const n = new Set(after.notes)
  const c = new Set(after.conclusions)
  return { notes: before.notes.filter((l) => !n.has(l)), conclusions: before.conclusions.filter((t) => !c.has(t)) }
}

export default async function rapporteur(meeting: string, groupId: string) {
  const b = await boot(meeting)
  if (!b) return
  const { token, info } = b
  const group = info.groups.find((g) => g.id === groupId)
  if (!group) {
    mount(h('h1', null, 'Unknown working group'), h('p', { class: 'error', role: 'alert' }, `The meeting has no group “${groupId}”.`))
    return
  }
  const canWrite = info.role === undefined || info.role === 'moderator' || (info.role === 'rapporteur' && info.group === groupId)
  document.title = `${group.title} — ${canWrite ? 'rapporteur' : 'read only'} — plenary`
  let name = storedName()
  let closedAtStart = !!group.closed
  let current: { room: Room; teardown: () => void } | null = null
  window.addEventListener('pagehide', () => current?.room.provider.awareness.setLocalState(null))

  /**
   * Opens the group document and builds the page around it. Called again, with a fresh Y.Doc and
   * provider, when the document must be reloaded cleanly: after the server refused an edit (the
   * moderator had closed the group), a stock Yjs client cannot write on that doc any more, since
   * all its later edits depend on the refused one.
   */
  function open(lostBefore: Snapshot | null) {
    const room = openRoom(meeting, groupId, token, { write: canWrite, persist: canWrite })
    const { doc, provider } = room
    const { notes, conclusions } = groupRoots(doc)
    let refusedStamp = -1 // serverStamp when an edit of this doc was refused; -1: none
    let reloading = false
    const isClosed = () => room.state.closed ?? closedAtStart
    const isEditable = () => canWrite && !isClosed() && refusedStamp < 0
    let editable = isEditable()

    // ---- who am I ----
    const color = USER_COLORS[doc.clientID % USER_COLORS.length]
    if (!name) name = `Rapporteur ${(doc.clientID % 90) + 10}`
    const user = () => ({ name, color })

    const nameInput = h('input', { id: 'my-name', type: 'text', value: name, autocomplete: 'name', maxlength: '40', 'data-testid': 'name' })
    nameInput.addEventListener('change', () => {
      name = nameInput.value.trim() || name
      nameInput.value = name
      try {
        localStorage.setItem('plenary-name', name)
      } catch {
        /* ignore */
      }
      editor.commands.updateUser(user())
      announce(`Your name is now ${name}`)
    })

    // ---- layout ----
    const people = h('ul', { class: 'people', 'aria-label': 'People editing now' })
    const editorHost = h('div', { class: 'editor-frame' })
    const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Text formatting', 'aria-controls': 'notes-editor' })
    const list = h('ol', { class: 'conclusions editable', 'data-testid': 'conclusions' })
    const trashList = h('ul', { class: 'trash-list', 'data-testid': 'trash' })
    const trashCount = h('span', { class: 'count' })
    const trashBox = h('details', { class: 'trash card', 'data-testid': 'trash-box' }, h('summary', null, 'Trash ', trashCount), trashList)
    const historyList = h('ul', { class: 'history-list', 'data-testid': 'history' })
    const historyBox = h(
      'details',
      { class: 'history card', 'data-testid': 'history-box' },
      h('summary', null, 'History'),
      h('p', { class: 'meta' }, 'Saved every few minutes while the group works, and when the group is closed. Restoring brings back that version as a new edit: the others keep working, and what it removes goes to the trash.'),
      historyList,
    )
    const addBtn = h('button', { type: 'button', class: 'primary', disabled: !editable, 'data-testid': 'add-conclusion' }, '+ Add conclusion')
    const closedNotice = h(
      'div',
      { class: 'notice closed-notice', role: 'status', 'data-testid': 'closed-notice', hidden: !isClosed() },
      h('strong', null, 'This group is closed.'),
      ' The moderator has stopped edits; you can still read everything. Editing resumes here as soon as the group is reopened.',
    )
    const refusedBox = h('div', { class: 'notice', role: 'alert', hidden: true, 'data-testid': 'refused' })
    const lostBox = h('div', { class: 'notice', role: 'region', 'aria-label': 'Text not kept', hidden: true, 'data-testid': 'not-kept' })

    mount(
      h(
        'header',
        { class: 'top' },
        h('div', { class: 'top-title' }, h('p', { class: 'crumb' }, `${info.title} · working group · ${canWrite ? 'rapporteur' : 'read only'}`), h('h1', null, group!.title)),
        canWrite ? h('div', { class: 'name-field' }, h('label', { for: 'my-name' }, 'Your name'), nameInput) : null,
      ),
      // sticky: the connection state and a refused edit stay in view however far the page scrolls
      h(
        'div',
        { class: 'sticky-status', 'data-testid': 'sticky-status' },
        h('div', { class: 'row status-row' }, statusBar(room, { write: canWrite, showFollowers: true }), h('span', { class: 'spacer' }), people),
        refusedBox,
      ),
      closedNotice,
      !canWrite ? h('p', { class: 'notice', role: 'note' }, 'You can read this group but not edit it.') : null,
      lostBox,
      h(
        'div',
        { class: 'rapp-grid' },
        h('section', { 'aria-labelledby': 'notes-h' }, h('h2', { id: 'notes-h' }, 'Notes'), canWrite ? toolbar : null, editorHost),
        h(
          'section',
          { 'aria-labelledby': 'concl-h' },
          h('h2', { id: 'concl-h' }, 'Conclusions'),
          h('p', { class: 'meta' }, 'What the group will present in the plenary. Mark an item final when the group agrees on it.'),
          list,
          canWrite ? addBtn : null,
          canWrite ? trashBox : null,
          canWrite ? historyBox : null,
        ),
      ),
    )

    // ---- notes editor (Tiptap bound to the `notes` XmlFragment) ----
    const editor = new Editor({
      element: editorHost,
      editable,
      extensions: [
        StarterKit.configure({ undoRedo: false, link: { openOnClick: false } }),
        Collaboration.configure({ fragment: notes }),
        CollaborationCaret.configure({
          provider,
          user: user(),
          render: (u: Record<string, unknown>) => {
            const c = String(u.color ?? '#444')
            const caret = h('span', { class: 'collaboration-carets__caret', style: { '--cc': c } })
            caret.append(h('span', { class: 'collaboration-carets__label', style: { '--cc': c } }, String(u.name ?? 'Someone')))
            return caret
          },
          selectionRender: (u: Record<string, unknown>) => ({ nodeName: 'span', class: 'collaboration-carets__selection', style: `--cc: ${String(u.color ?? '#444')}` }),
        }),
      ],
      editorProps: {
        attributes: { id: 'notes-editor', class: 'editor-content', role: 'textbox', 'aria-multiline': 'true', 'aria-labelledby': 'notes-h', 'data-testid': 'notes-editor' },
      },
    })
    if (!canWrite) provider.awareness.setLocalState(null)

    type Btn = { label: string; text: string; run: () => void; active?: () => boolean }
    const buttons: Btn[] = [
      { label: 'Bold', text: 'Bold', run: () => editor.chain().focus().toggleBold().run(), active: () => editor.isActive('bold') },
      { label: 'Italic', text: 'Italic', run: () => editor.chain().focus().toggleItalic().run(), active: () => editor.isActive('italic') },
      { label: 'Heading', text: 'Heading', run: () => editor.chain().focus().toggleHeading({ level: 2 }).run(), active: () => editor.isActive('heading') },
      { label: 'Bulleted list', text: '• Bullets', run: () => editor.chain().focus().toggleBulletList().run(), active: () => editor.isActive('bulletList') },
      { label: 'Numbered list', text: '1. Numbers', run: () => editor.chain().focus().toggleOrderedList().run(), active: () => editor.isActive('orderedList') },
      { label: 'Quote', text: 'Quote', run: () => editor.chain().focus().toggleBlockquote().run(), active: () => editor.isActive('blockquote') },
      { label: 'Undo my last edit', text: 'Undo', run: () => editor.chain().focus().undo().run() },
      { label: 'Redo', text: 'Redo', run: () => editor.chain().focus().redo().run() },
    ]
    const btnEls = buttons.map((bt) => {
      // mousedown must not take the focus (and the selection) away from the editor
      const el = h('button', { type: 'button', class: 'small', title: bt.label, disabled: !editable, onclick: bt.run, onmousedown: (e: Event) => e.preventDefault() }, bt.text)
      if (bt.active) el.setAttribute('aria-pressed', 'false')
      toolbar.append(el)
      return el
    })
    const refreshToolbar = () => buttons.forEach((bt, i) => bt.active && btnEls[i].setAttribute('aria-pressed', String(bt.active())))
    editor.on('transaction', refreshToolbar)

    // ---- people here (awareness) ----
    const renderPeople = () => {
      const items: HTMLElement[] = []
      provider.awareness.getStates().forEach((st, id) => {
        const u = (st as { user?: { name?: string; color?: string } }).user
        if (id === 0 || !u?.name) return
        items.push(h('li', { style: { background: u.color ?? '#444' } }, id === doc.clientID ? `${u.name} (you)` : u.name))
      })
      people.replaceChildren(...items)
      // who types in which conclusion (awareness `editing`: rapporteurs here, the moderator from the
      // console): say so on that item, in that person's colour
      const by = new Map<string, { name: string; color: string }[]>()
      provider.awareness.getStates().forEach((st, id) => {
        const s = st as { user?: { name?: string; color?: string }; editing?: unknown }
        if (id === 0 || id === doc.clientID || typeof s.editing !== 'string' || !s.user?.name) return
        const l = by.get(s.editing) ?? []
        l.push({ name: s.user.name, color: s.user.color ?? '#444' })
        by.set(s.editing, l)
      })
      for (const li of list.querySelectorAll<HTMLLIElement>('li[data-id]')) {
        const who = by.get(li.dataset.id ?? '')
        let mark = li.querySelector<HTMLElement>('.editing-by')
        li.classList.toggle('being-edited', !!who)
        if (!who) {
          mark?.remove()
          li.style.removeProperty('--editor-color')
          continue
        }
        if (!mark) {
          mark = h('span', { class: 'badge editing-by', 'data-testid': 'editing-by' })
          li.querySelector('.citem-actions')?.prepend(mark)
        }
        li.style.setProperty('--editor-color', who[0].color)
        mark.style.setProperty('--cc', who[0].color)
        mark.textContent = `✎ ${who.map((w) => w.name).join(', ')} ${who.length > 1 ? 'are' : 'is'} editing`
      }
    }
    provider.awareness.on('change', renderPeople)
    renderPeople()

    // ---- conclusions ----
    // Moves rewrite `position`, deletes set `trashed` (lib/conclusions.ts): the item's Y.Text is
    // never removed or copied, so whoever is typing in it keeps every keystroke.
    const undo = new Y.UndoManager(conclusions, { trackedOrigins: new Set([LOCAL]), captureTimeout: 500 })
    const edit = (fn: () => void) => {
      undo.stopCapturing()
      doc.transact(fn, LOCAL)
      undo.stopCapturing()
    }
    /** the name of whoever last wrote `key` of `m` (from the Yjs item's client id and awareness) */
    const whoSet = (m: Y.Map<unknown>, key: string): string => {
      const item = (m as unknown as { _map: Map<string, { id: { client: number } }> })._map.get(key)
      const st = item ? (provider.awareness.getStates().get(item.id.client) as { user?: { name?: string } } | undefined) : undefined
      return st?.user?.name || 'Someone else'
    }

    function makeItem(m: Y.Map<unknown>) {
      const id = String(m.get('id') ?? '')
      let text = m.get('text')
      if (!(text instanceof Y.Text)) text = new Y.Text()
      const ta = h('textarea', { rows: '2', 'data-testid': 'conclusion-text', readOnly: !editable, 'data-focus-key': `${id}:text` })
      const label = h('label', { class: 'sr-only' }, 'Conclusion')
      const taId = `c-${id}-text`
      ta.id = taId
      label.htmlFor = taId
      // each textarea has its own origin (its binding ignores its own edits, not a restore's), and
      // the undo manager tracks it as this page's
      const taOrigin = { binding: ta }
      undo.addTrackedOrigin(taOrigin)
      const unbindText = bindText(ta, text as Y.Text, () => autosize(ta), taOrigin)
      const unbind = () => (unbindText(), undo.removeTrackedOrigin(taOrigin))
      ta.addEventListener('focus', () => {
        if (canWrite) provider.awareness.setLocalStateField('editing', id)
      })
      ta.addEventListener('blur', () => {
        if (canWrite && provider.awareness.getLocalState()) provider.awareness.setLocalStateField('editing', null)
        // an item trashed by someone else stays on screen while it has the focus; now it may go
        queueMicrotask(syncList)
      })
      ta.addEventListener('keydown', (e) => {
        const mod = e.ctrlKey || e.metaKey
        if (!mod || !editable) return
        const k = e.key.toLowerCase()
        if (k === 'z' && !e.shiftKey) {
          e.preventDefault()
          undo.undo()
        } else if ((k === 'z' && e.shiftKey) || k === 'y') {
          e.preventDefault()
          undo.redo()
        }
      })
      const final = h('input', { type: 'checkbox', disabled: !editable, 'data-testid': 'conclusion-final' })
      final.addEventListener('change', () => edit(() => m.set('status', final.checked ? 'final' : 'draft')))
      const finalLabel = h('label', { class: 'final-toggle' }, final, 'Final')
      const finalBadge = h('span', { class: 'badge final' }, 'final')
      const author = h('span', { class: 'meta author' })
      const up = h('button', { type: 'button', class: 'small', disabled: !editable, 'data-action': 'up', onclick: () => move(m, -1, 'up') }, '↑')
      const down = h('button', { type: 'button', class: 'small', disabled: !editable, 'data-action': 'down', onclick: () => move(m, 1, 'down') }, '↓')
      const del = h('button', { type: 'button', class: 'small danger', disabled: !editable, 'data-action': 'delete', onclick: () => remove(m) }, 'Delete')
      const controls = h('span', { class: 'citem-controls' }, finalLabel, up, down, del)
      const warn = h('div', { class: 'item-warning', role: 'alert', hidden: true, 'data-testid': 'item-warning' })
      const li = h('li', { 'data-id': id }, warn, label, ta, h('div', { class: 'citem-actions' }, controls, finalBadge, h('span', { class: 'spacer' }), author))
      return { li, unbind, id, ta, final, finalBadge, controls, author, up, down, del, warn, m }
    }
    const parts = new Map<Y.Map<unknown>, ReturnType<typeof makeItem>>()

    // ---- trash (soft-deleted items, restorable) ----
    function renderTrash() {
      const items = trashedMaps(conclusions)
      trashCount.textContent = `(${items.length})`
      trashList.replaceChildren(
        ...(items.length
          ? items.map((m) => {
              const t = m.get('text')
              const txt = t instanceof Y.Text ? t.toString() : ''
              const when = new Date(String(m.get(TRASHED)))
              return h(
                'li',
                { 'data-id': String(m.get('id') ?? '') },
                h('span', { class: 'ctext' }, txt.trim() ? txt : h('em', null, '(empty)')),
                h('span', { class: 'meta' }, isNaN(when.getTime()) ? '' : ` deleted ${when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`),
                canWrite ? h('button', { type: 'button', class: 'small', disabled: !editable, 'data-action': 'restore', onclick: () => restore(m) }, 'Restore') : null,
              )
            })
          : [h('li', { class: 'meta' }, 'Deleted conclusions appear here and can be restored.')]),
      )
    }

    /** the map whose textarea has the focus, if any */
    const focusedMap = (): Y.Map<unknown> | null => {
      for (const [m, it] of parts) if (document.activeElement === it.ta) return m
      return null
    }

    function syncList() {
      const arr = liveMaps(conclusions)
      // keep an item someone else trashed on screen while its textarea has the focus
      const fm = focusedMap()
      if (fm && isTrashed(fm) && !arr.includes(fm)) {
        const at = parts.get(fm)!
        const idx = [...list.children].indexOf(at.li)
        arr.splice(Math.max(0, Math.min(idx, arr.length)), 0, fm)
      }
      const live = new Set(arr)
      for (const [m, it] of parts) {
        if (!live.has(m)) {
          it.unbind()
          it.li.remove()
          parts.delete(m)
        }
      }
      // reordering moves <li> elements, and a moved element loses the focus: put it back
      const active = document.activeElement as HTMLTextAreaElement | HTMLButtonElement | null
      const hadFocus = active && list.contains(active) ? active : null
      const sel = hadFocus instanceof HTMLTextAreaElement ? [hadFocus.selectionStart, hadFocus.selectionEnd, hadFocus.selectionDirection] as const : null
      arr.forEach((m, i) => {
        let it = parts.get(m)
        if (!it) {
          it = makeItem(m)
          parts.set(m, it)
        }
        const pos = i + 1
        const gone = isTrashed(m)
        it.ta.previousElementSibling!.textContent = `Conclusion ${pos}`
        it.ta.readOnly = !editable
        it.up.setAttribute('aria-label', `Move conclusion ${pos} up`)
        it.down.setAttribute('aria-label', `Move conclusion ${pos} down`)
        it.del.setAttribute('aria-label', `Delete conclusion ${pos}`)
        it.up.disabled = !editable || i === 0 || gone
        it.down.disabled = !editable || i === arr.length - 1 || gone
        it.del.disabled = !editable || gone
        it.final.disabled = !editable
        // read-only pages show the status as a badge instead of controls that do nothing
        it.controls.hidden = !canWrite
        const isFinal = m.get('status') === 'final'
        it.finalBadge.hidden = canWrite || !isFinal
        it.final.checked = isFinal
        it.final.setAttribute('aria-label', `Conclusion ${pos} is final`)
        it.li.classList.toggle('final', isFinal)
        it.li.classList.toggle('trashed', gone)
        const a = String(m.get('author') ?? '')
        it.author.textContent = a ? `by ${a}` : ''
        if (list.children[i] !== it.li) list.insertBefore(it.li, list.children[i] ?? null)
        autosize(it.ta)
      })
      if (hadFocus && document.activeElement !== hadFocus && hadFocus.isConnected) {
        hadFocus.focus({ preventScroll: true })
        if (sel && hadFocus instanceof HTMLTextAreaElement) hadFocus.setSelectionRange(sel[0], sel[1], sel[2] ?? undefined)
      }
      if (!arr.length && !list.querySelector('.empty')) list.append(h('li', { class: 'empty' }, 'No conclusions yet.'))
      if (arr.length) list.querySelector('.empty')?.remove()
      renderTrash()
    }

    function move(m: Y.Map<unknown>, dir: number, action: string) {
      if (!editable) return
      const id = String(m.get('id') ?? '')
      let j = -1
      edit(() => (j = moveItem(conclusions, m, dir)))
      syncList()
      const target = list.querySelector<HTMLButtonElement>(`li[data-id="${CSS.escape(id)}"] button[data-action="${action}"]`)
      ;(target && !target.disabled ? target : list.querySelector<HTMLTextAreaElement>(`li[data-id="${CSS.escape(id)}"] textarea`))?.focus()
      announce(`Moved to position ${j + 1}`)
    }

    // the "Deleted. Undo" toast
    const toast = h('div', { class: 'undo-toast', role: 'status', hidden: true, 'data-testid': 'undo-toast' })
    document.body.append(toast)
    let toastTimer = 0
    function showUndoToast(m: Y.Map<unknown>) {
      window.clearTimeout(toastTimer)
      const undoBtn = h('button', { type: 'button', 'data-testid': 'undo-delete', onclick: () => (restore(m), (toast.hidden = true)) }, 'Undo')
      const t = m.get('text')
      const txt = t instanceof Y.Text ? t.toString().trim() : ''
      const what = txt ? ` “${txt.length > 40 ? txt.slice(0, 39) + '…' : txt}”` : ''
      toast.replaceChildren(h('span', { class: 'what' }, `Deleted${what}. `), undoBtn, h('button', { type: 'button', class: 'small', 'aria-label': 'Dismiss', onclick: () => (toast.hidden = true) }, '×'))
      toast.hidden = false
      toastTimer = window.setTimeout(() => (toast.hidden = true), 10_000)
    }

    function remove(m: Y.Map<unknown>) {
      if (!editable) return
      const i = liveMaps(conclusions).indexOf(m)
      edit(() => trashItem(m))
      syncList()
      const next = list.querySelectorAll<HTMLTextAreaElement>('textarea')[Math.max(0, Math.min(i, list.querySelectorAll('textarea').length - 1))]
      ;(next ?? addBtn).focus()
      showUndoToast(m)
    }

    function restore(m: Y.Map<unknown>) {
      if (!editable || !isTrashed(m)) return
      const id = String(m.get('id') ?? '')
      edit(() => restoreItem(m))
      syncList()
      list.querySelector<HTMLTextAreaElement>(`li[data-id="${CSS.escape(id)}"] textarea`)?.focus()
      announce('Conclusion restored')
    }

    addBtn.addEventListener('click', () => {
      if (!editable) return
      const m = new Y.Map<unknown>()
      const id = newId()
      edit(() => {
        const pos = endPosition(conclusions)
        m.set('id', id)
        m.set('text', new Y.Text())
        m.set('status', 'draft')
        m.set('author', name)
        m.set(POSITION, pos)
        conclusions.push([m])
      })
      syncList()
      list.querySelector<HTMLTextAreaElement>(`li[data-id="${CSS.escape(id)}"] textarea`)?.focus()
    })

    // someone else moved or trashed the item I am typing in: say so on the item, keep the focus
    function warnFocused(events: Y.YEvent<Y.AbstractType<unknown>>[], tr: Y.Transaction) {
      if (tr.local && (tr.origin === LOCAL || tr.origin === undo)) return
      const fm = focusedMap()
      if (!fm) return
      for (const ev of events) {
        if (ev.target !== fm || !(ev instanceof Y.YMapEvent)) continue
        const it = parts.get(fm)
        if (!it) continue
        let msg = ''
        if (ev.keysChanged.has(TRASHED) && isTrashed(fm)) {
          msg = `${whoSet(fm, TRASHED)} deleted this conclusion while you were typing in it. Your text is kept; restore it to keep it in the list.`
        } else if (ev.keysChanged.has(POSITION)) {
          const n = liveMaps(conclusions).indexOf(fm) + 1
          msg = `${whoSet(fm, POSITION)} moved this conclusion${n > 0 ? ` to number ${n}` : ''} while you were typing. Nothing you typed is lost.`
        } else continue
        it.warn.hidden = false
        const rows: (HTMLElement | string)[] = [h('span', null, msg)]
        if (isTrashed(fm)) rows.push(h('button', { type: 'button', class: 'small', 'data-action': 'restore-here', onmousedown: (e: Event) => e.preventDefault(), onclick: () => restore(fm) }, 'Restore'))
        rows.push(h('button', { type: 'button', class: 'small', 'aria-label': 'Dismiss', onmousedown: (e: Event) => e.preventDefault(), onclick: () => (it.warn.hidden = true) }, '×'))
        it.warn.replaceChildren(...rows)
        window.clearTimeout((it.warn as unknown as { _t?: number })._t)
        ;(it.warn as unknown as { _t?: number })._t = window.setTimeout(() => (it.warn.hidden = true), 15_000)
      }
    }

    conclusions.observeDeep((events, tr) => {
      syncList()
      warnFocused(events as Y.YEvent<Y.AbstractType<unknown>>[], tr)
      renderPeople()
    })
    syncList()
    room.whenSynced.then(syncList)

    // ---- revision history (server snapshots; restore = a new edit) ----
    const revBase = `/api/meetings/${encodeURIComponent(meeting)}/groups/${encodeURIComponent(groupId)}/revisions`
    async function loadHistory() {
      historyList.replaceChildren(h('li', { class: 'meta' }, 'Loading…'))
      try {
        const { revisions } = await api<{ revisions: { id: number; created_at: string; reason: string }[] }>(revBase, token)
        historyList.replaceChildren(
          ...(revisions.length
            ? revisions
                .slice()
                .reverse()
                .map((r) => {
                  const t = new Date(r.created_at)
                  const when = isNaN(t.getTime()) ? r.created_at : t.toLocaleString([], { weekday: 'short', hour: '2-digit', minute: '2-digit' })
                  return h(
                    'li',
                    { 'data-id': String(r.id) },
                    h('span', { class: 'when' }, when),
                    h('span', { class: 'meta' }, r.reason === 'closed' ? 'when the group was closed' : 'automatic'),
                    h('button', { type: 'button', class: 'small', disabled: !editable, 'data-action': 'restore-revision', 'aria-label': `Restore the version of ${when}`, onclick: () => void restoreRevision(r.id, when) }, 'Restore'),
                  )
                })
            : [h('li', { class: 'meta' }, 'No saved versions yet.')]),
        )
      } catch (e) {
        historyList.replaceChildren(h('li', { class: 'error' }, e instanceof ApiError ? e.message : String(e)))
      }
    }
    historyBox.addEventListener('toggle', () => historyBox.open && void loadHistory())

    async function restoreRevision(id: number, when: string) {
      if (!editable) return
      const res = await fetch(`${revBase}/${id}?format=yjs`, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store', referrerPolicy: 'no-referrer' }).catch(() => null)
      if (!res?.ok) return announce('That version cannot be loaded now. Try again when online.')
      const rev = new Y.Doc()
      Y.applyUpdate(rev, new Uint8Array(await res.arrayBuffer()))
      const { notes: revNotes, conclusions: revConcl } = groupRoots(rev)
      const want = liveMaps(revConcl)
      edit(() => {
        const byId = new Map<string, Y.Map<unknown>>()
        for (const m of orderedMaps(conclusions)) {
          const cid = m.get('id')
          if (typeof cid === 'string' && !byId.has(cid)) byId.set(cid, m)
        }
        const keys = spreadKeys(want.length)
        const keep = new Set<string>()
        want.forEach((rm, i) => {
          const cid = String(rm.get('id'))
          keep.add(cid)
          const rt = rm.get('text')
          const text = rt instanceof Y.Text ? rt.toString() : ''
          const status = rm.get('status') === 'final' ? 'final' : 'draft'
          let m = byId.get(cid)
          if (!m) {
            m = new Y.Map<unknown>()
            m.set('id', cid)
            m.set('text', new Y.Text(text))
            m.set('status', status)
            m.set('author', String(rm.get('author') ?? ''))
            m.set(POSITION, keys[i])
            conclusions.push([m])
            return
          }
          let t = m.get('text')
          if (!(t instanceof Y.Text)) {
            t = new Y.Text()
            m.set('text', t)
          }
          const d = diff((t as Y.Text).toString(), text)
          if (d) {
            if (d.remove) (t as Y.Text).delete(d.index, d.remove)
            if (d.insert) (t as Y.Text).insert(d.index, d.insert)
          }
          if (m.get('status') !== status) m.set('status', status)
          if (isTrashed(m)) restoreItem(m)
          if (m.get(POSITION) !== keys[i]) m.set(POSITION, keys[i])
        })
        for (const m of liveMaps(conclusions)) if (!keep.has(String(m.get('id')))) trashItem(m)
        // the notes: replaced by the version's (collaborators' carets move to the new text)
        notes.delete(0, notes.length)
        notes.insert(0, revNotes.toArray().map((n) => (n as Y.XmlElement | Y.XmlText).clone()))
      })
      rev.destroy()
      syncList()
      announce(`The version of ${when} is restored.`)
    }

    // ---- closed / reopened / refused ----
    function applyEditable() {
      const now = isEditable()
      closedNotice.hidden = !isClosed()
      if (now === editable) return
      editable = now
      editor.setEditable(editable)
      btnEls.forEach((el) => (el.disabled = !editable))
      addBtn.disabled = !editable
      syncList()
    }

    async function reloadCleanly() {
      if (reloading) return
      reloading = true
      const before = snapshot(doc)
      const hadFocus = document.activeElement && document.querySelector('.rapp-grid')?.contains(document.activeElement)
      teardown()
      // the refused edits live in this browser's IndexedDB copy too: delete it, then start again
      // from the server's document
      await room.destroy({ clearLocal: true })
      const next = open(null)
      await next.room.whenSynced
      await new Promise<void>((r) => (next.room.state.synced ? r() : next.room.provider.once('sync', () => r())))
      const lost = notKept(before, snapshot(next.room.doc))
      next.showLost(lost)
      announce('The group is open again: the document was reloaded and you can edit.')
      if (hadFocus) document.querySelector<HTMLElement>('[data-testid="notes-editor"]')?.focus()
    }

    function showLost(lost: Snapshot) {
      if (!lost.notes.length && !lost.conclusions.length) return
      lostBox.hidden = false
      const rows: HTMLElement[] = [h('p', null, h('strong', null, 'Not kept: '), 'the server did not accept these edits (they were made while the group was closed). Copy what you still need:')]
      if (lost.conclusions.length) rows.push(h('p', { class: 'meta' }, 'Conclusions'), h('ul', null, lost.conclusions.map((t) => h('li', { class: 'ctext' }, t))))
      if (lost.notes.length) rows.push(h('p', { class: 'meta' }, 'Notes'), h('ul', null, lost.notes.map((t) => h('li', { class: 'ctext' }, t))))
      rows.push(h('button', { type: 'button', class: 'small', onclick: () => (lostBox.hidden = true) }, 'Dismiss'))
      lostBox.replaceChildren(...rows)
    }

    const offState = room.onState((s) => {
      if (reloading) return
      if (s.denied && refusedStamp < 0) {
        refusedStamp = s.serverStamp
        refusedBox.hidden = false
        refusedBox.replaceChildren(
          h(
            'p',
            null,
            h('strong', null, 'Your latest edit was not accepted. '),
            `The server refused it (${s.denied}); the moderator has probably closed this group. When the group is reopened this page reloads the document from the server, and you can go on editing.`,
          ),
          h('button', { type: 'button', 'data-testid': 'reload-doc', onclick: () => void reloadCleanly() }, 'Reload the document now'),
        )
      }
      // a server state that arrived after the refusal and says "open": start again cleanly
      if (refusedStamp >= 0 && s.closed === false && s.serverStamp > refusedStamp) {
        void reloadCleanly()
        return
      }
      if (s.closed !== null) closedAtStart = s.closed
      applyEditable()
    })

    function teardown() {
      offState()
      provider.awareness.off('change', renderPeople)
      for (const it of parts.values()) it.unbind()
      undo.destroy()
      window.clearTimeout(toastTimer)
      toast.remove()
      editor.destroy()
    }
    current = { room, teardown }
    if (lostBefore) showLost(lostBefore)
    return { room, showLost }
  }

  open(null)
}
