import * as Y from 'yjs'
import type { GroupInfo } from './api'

// The plenary document (docs/PLENARY_LAYOUT.md): `meta`, `groups` (server-written), `curation`
// (moderators). Root types are declared here so that `doc.toJSON()` and our reads see them.

export interface PConclusion {
  id: string
  key: string // "{groupId}/{conclusionId}"
  text: string
  status: 'draft' | 'final'
  hidden: boolean
}
export interface PGroup {
  id: string
  title: string
  /** optional `short_title` of the group (server-written when present), else '' */
  shortTitle: string
  closed: boolean
  /** `edited_at` (server-written): when the group's conclusions last changed, to the minute (ms), else null */
  editedAt: number | null
  color: number // index in the group palette, stable by meeting order
  conclusions: PConclusion[]
}
export interface Plenary {
  title: string
  /** `meta.short_title` when the server provides one (projector headline), else '' */
  shortTitle: string
  /** `curation.screen`: what the room's projector shows (docs/PLENARY_LAYOUT.md) */
  screen: Screen | null
  groups: PGroup[]
  presenting: string | null
  intro: string
  closing: string
  ordered: boolean
}

export type Screen = 'focus' | 'overview' | 'join' | 'blank'
export const SCREENS: Screen[] = ['focus', 'overview', 'join', 'blank']

export function plenaryRoots(doc: Y.Doc) {
  return {
    meta: doc.getMap('meta'),
    groups: doc.getArray<Y.Map<unknown>>('groups'),
    curation: doc.getMap<unknown>('curation'),
  }
}

function textOf(v: unknown): string {
  if (v instanceof Y.Text) return v.toString()
  return typeof v === 'string' ? v : ''
}

/**
 * Read the plenary into plain data. `fallbackGroups` (from GET /api/meetings/{m}) supplies group
 * titles and order while the server has not filled `groups` yet.
 */
export function readPlenary(doc: Y.Doc, fallbackGroups: GroupInfo[] = [], fallbackTitle = ''): Plenary {
  const { meta, groups, curation } = plenaryRoots(doc)
  const hiddenMap = curation.get('hidden')
  const hidden = (key: string) => (hiddenMap instanceof Y.Map ? hiddenMap.get(key) === true : false)

  const byId = new Map<string, PGroup>()
  const meetingOrder: string[] = []
  fallbackGroups.forEach((g) => {
    meetingOrder.push(g.id)
    byId.set(g.id, { id: g.id, title: g.title, shortTitle: '', closed: !!g.closed, editedAt: null, color: 0, conclusions: [] })
  })
  groups.forEach((gm) => {
    if (!(gm instanceof Y.Map)) return
    const id = String(gm.get('id') ?? '')
    if (!id) return
    if (!byId.has(id)) meetingOrder.push(id)
    const list = gm.get('conclusions')
    const conclusions: PConclusion[] = []
    if (list instanceof Y.Array) {
      list.forEach((cm: unknown) => {
        if (!(cm instanceof Y.Map)) return
        const cid = String(cm.get('id') ?? '')
        const key = `${id}/${cid}`
        conclusions.push({ id: cid, key, text: textOf(cm.get('text')), status: cm.get('status') === 'final' ? 'final' : 'draft', hidden: hidden(key) })
      })
    }
    const short = gm.get('short_title')
    const edited = gm.get('edited_at')
    const editedAt = typeof edited === 'string' && !Number.isNaN(Date.parse(edited)) ? Date.parse(edited) : null
    byId.set(id, { id, title: String(gm.get('title') ?? byId.get(id)?.title ?? id), shortTitle: typeof short === 'string' ? short.trim() : '', closed: gm.get('closed') === true, editedAt, color: 0, conclusions })
  })
  meetingOrder.forEach((id, i) => (byId.get(id)!.color = i))

  const order = curation.get('order')
  const ordered: string[] = []
  if (Array.isArray(order)) {
    for (const id of order) if (typeof id === 'string' && byId.has(id) && !ordered.includes(id)) ordered.push(id)
  }
  for (const id of meetingOrder) if (!ordered.includes(id)) ordered.push(id)

  const presenting = curation.get('presenting')
  const screen = curation.get('screen')
  const short = meta.get('short_title')
  return {
    title: String(meta.get('title') ?? fallbackTitle),
    shortTitle: typeof short === 'string' ? short.trim() : '',
    screen: typeof screen === 'string' && (SCREENS as string[]).includes(screen) ? (screen as Screen) : null,
    groups: ordered.map((id) => byId.get(id)!),
    presenting: typeof presenting === 'string' && presenting ? presenting : null,
    intro: textOf(curation.get('intro')),
    closing: textOf(curation.get('closing')),
    ordered: Array.isArray(order),
  }
}

/** Group colours: AA contrast (>= 4.5:1) against white, used as text, borders and badges. */
export const GROUP_COLORS = ['#1d4ed8', '#b3261e', '#047857', '#7c3aed', '#b45309', '#0e7490', '#be185d', '#4d7c0f']
export const groupColor = (i: number) => GROUP_COLORS[i % GROUP_COLORS.length]
