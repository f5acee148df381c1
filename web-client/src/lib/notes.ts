import * as Y from 'yjs'
import { h } from './dom'

// Read-only renderer of the Tiptap/ProseMirror Y.XmlFragment (`notes`), without loading Tiptap.

const BLOCKS: Record<string, keyof HTMLElementTagNameMap> = {
  paragraph: 'p',
  blockquote: 'blockquote',
  bulletList: 'ul',
  orderedList: 'ol',
  listItem: 'li',
  codeBlock: 'pre',
  horizontalRule: 'hr',
  hardBreak: 'br',
  taskList: 'ul',
  taskItem: 'li',
}

function safeHref(href: unknown): string | null {
  if (typeof href !== 'string') return null
  try {
    const u = new URL(href, location.origin)
    return ['http:', 'https:', 'mailto:'].includes(u.protocol) ? u.href : null
  } catch {
    return null
  }
}

function renderText(t: Y.XmlText): Node[] {
  const out: Node[] = []
  for (const op of t.toDelta() as { insert: unknown; attributes?: Record<string, unknown> }[]) {
    if (typeof op.insert !== 'string') continue
    let node: Node = document.createTextNode(op.insert)
    const a = op.attributes ?? {}
    if (a.code) node = h('code', null, node)
    if (a.bold) node = h('strong', null, node)
    if (a.italic) node = h('em', null, node)
    if (a.underline) node = h('u', null, node)
    if (a.strike) node = h('s', null, node)
    if (a.link) {
      const href = safeHref((a.link as { href?: unknown }).href)
      if (href) node = h('a', { href, rel: 'noopener noreferrer nofollow', target: '_blank' }, node)
    }
    out.push(node)
  }
  return out
}

function renderNode(n: Y.XmlElement | Y.XmlText | Y.XmlHook, depth: number): Node | Node[] | null {
  if (n instanceof Y.XmlText) return renderText(n)
  if (!(n instanceof Y.XmlElement) || depth > 40) return null
  const name = n.nodeName
  let el: HTMLElement
  if (name === 'heading') {
    const level = Math.min(6, Math.max(1, Number(n.getAttribute('level')) || 2))
    // notes headings sit below the page's own headings
    el = document.createElement(`h${Math.min(6, level + 2)}`)
  } else if (name === 'codeBlock') {
    el = h('pre', null, h('code'))
    for (const c of n.toArray()) {
      const r = renderNode(c as Y.XmlText, depth + 1)
      if (r) el.firstChild!.appendChild(Array.isArray(r) ? fragment(r) : r)
    }
    return el
  } else {
    el = document.createElement(BLOCKS[name] ?? 'div')
    if (name === 'orderedList') {
      const start = Number(n.getAttribute('start'))
      if (start && start !== 1) el.setAttribute('start', String(start))
    }
  }
  for (const c of n.toArray()) {
    const r = renderNode(c as Y.XmlElement, depth + 1)
    if (r) el.appendChild(Array.isArray(r) ? fragment(r) : r)
  }
  return el
}

function fragment(nodes: Node[]): DocumentFragment {
  const f = document.createDocumentFragment()
  for (const n of nodes) f.appendChild(n)
  return f
}

export function renderNotes(frag: Y.XmlFragment): DocumentFragment {
  const out = document.createDocumentFragment()
  for (const c of frag.toArray()) {
    const r = renderNode(c as Y.XmlElement, 0)
    if (r) out.appendChild(Array.isArray(r) ? fragment(r) : r)
  }
  return out
}

/** true when the notes hold no visible text */
export function notesEmpty(frag: Y.XmlFragment): boolean {
  for (const c of frag.createTreeWalker(() => true)) {
    if (c instanceof Y.XmlText && (c.toDelta() as { insert: unknown }[]).some((op) => typeof op.insert === 'string' && op.insert.trim() !== '')) return false
    if (c instanceof Y.XmlElement && c.nodeName === 'horizontalRule') return false
  }
  return true
}
