import * as Y from 'yjs'

export interface Conclusion {
  map: Y.Map<unknown>
  id: string
  text: Y.Text | null
  status: 'draft' | 'final'
  author: string
}

export function groupRoots(doc: Y.Doc) {
  return { notes: doc.getXmlFragment('notes'), conclusions: doc.getArray<Y.Map<unknown>>('conclusions') }
}

export function readConclusions(arr: Y.Array<Y.Map<unknown>>): Conclusion[] {
  const out: Conclusion[] = []
  arr.forEach((m) => {
    if (!(m instanceof Y.Map)) return
    const t = m.get('text')
    out.push({
      map: m,
      id: String(m.get('id') ?? ''),
      text: t instanceof Y.Text ? t : null,
      status: m.get('status') === 'final' ? 'final' : 'draft',
      author: String(m.get('author') ?? ''),
    })
  })
  return out
}
