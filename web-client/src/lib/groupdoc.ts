import * as Y from 'yjs'
import { liveMaps } from './conclusions'

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

/** The live conclusions in reading order (lib/conclusions.ts: by `position`, trashed ones left out). */
export function readConclusions(arr: Y.Array<Y.Map<unknown>>): Conclusion[] {
  const out: Conclusion[] = []
  liveMaps(arr).forEach((m) => {
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
