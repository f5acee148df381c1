import type * as Y from 'yjs'

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff
const isLow = (c: number) => c >= 0xdc00 && c <= 0xdfff

/** The smallest single replace that turns `a` into `b`, never splitting a surrogate pair. */
export function diff(a: string, b: string): { index: number; remove: number; insert: string } | null {
  if (a === b) return null
  let start = 0
  const min = Math.min(a.length, b.length)
  while (start < min && a.charCodeAt(start) === b.charCodeAt(start)) start++
  if (start > 0 && isHigh(a.charCodeAt(start - 1))) start--
  let endA = a.length
  let endB = b.length
  while (endA > start && endB > start && a.charCodeAt(endA - 1) === b.charCodeAt(endB - 1)) {
    endA--
    endB--
  }
  if (endA < a.length && isLow(a.charCodeAt(endA))) {
    endA++
    endB++
  }
  return { index: start, remove: endA - start, insert: b.slice(start, endB) }
}

/**
 * Two-way binding of a <textarea>/<input> and a Y.Text with minimal edits (no whole replacements),
 * keeping the local selection in place when remote edits arrive. Returns an unbind function.
 */
export function bindText(el: HTMLTextAreaElement | HTMLInputElement, ytext: Y.Text, onChange?: () => void, origin: object = { binding: el }): () => void {
  el.value = ytext.toString()
  const onInput = () => {
    const d = diff(ytext.toString(), el.value)
    if (!d) return
    const doc = ytext.doc
    const apply = () => {
      if (d.remove > 0) ytext.delete(d.index, d.remove)
      if (d.insert) ytext.insert(d.index, d.insert)
    }
    if (doc) doc.transact(apply, origin)
    else apply()
    onChange?.()
  }
  const observer = (ev: Y.YTextEvent, tr: Y.Transaction) => {
    if (tr.origin === origin) return
    const focused = document.activeElement === el
    let s = el.selectionStart ?? 0
    let e = el.selectionEnd ?? 0
    let pos = 0
    for (const op of ev.delta) {
      if (op.retain) pos += op.retain
      else if (typeof op.insert === 'string') {
        const n = op.insert.length
        if (pos <= s) s += n
        if (pos <= e) e += n
        pos += n
      } else if (op.delete) {
        const n = op.delete
        s -= Math.max(0, Math.min(s - pos, n))
        e -= Math.max(0, Math.min(e - pos, n))
      }
    }
    el.value = ytext.toString()
    if (focused) el.setSelectionRange(s, e)
    onChange?.()
  }
  el.addEventListener('input', onInput)
  ytext.observe(observer)
  return () => {
    el.removeEventListener('input', onInput)
    ytext.unobserve(observer)
  }
}

/** Grow a textarea with its content. */
export function autosize(el: HTMLTextAreaElement) {
  el.style.height = 'auto'
  el.style.height = `${el.scrollHeight + 2}px`
}
