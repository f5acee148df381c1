import type { PConclusion, PGroup, Plenary } from './plenary'

// One numbering `G.N` for the console, the projector and the phones (and, by the same rule, the
// server's exports; docs/PLENARY_LAYOUT.md "Numbering"):
//   G = 1-based position of the group in the curated order (`curation.order` first, unknown ids
//       ignored, groups it does not name after it in meeting order) — `readPlenary` builds that order;
//   N = 1-based position of the item among that group's *shown* items (not hidden, text not blank),
//       in document order. Hidden and blank items have no number.

export interface NumberedItem {
  c: PConclusion
  g: PGroup
  /** 1-based group position */
  gi: number
  /** 1-based position among the group's shown items; null when hidden or blank */
  n: number | null
  /** "G.N", or null when the item has no number */
  label: string | null
  /** how many shown items the group has */
  of: number
}

export interface NumberedGroup {
  g: PGroup
  gi: number
  /** every item of the group in document order, numbered or not */
  all: NumberedItem[]
  /** the shown items only (those with a number) */
  shown: NumberedItem[]
}

export const isShown = (c: Pick<PConclusion, 'hidden' | 'text'>) => !c.hidden && c.text.trim() !== ''

export function numberGroups(p: Plenary): NumberedGroup[] {
  return p.groups.map((g, i) => {
    const gi = i + 1
    const of = g.conclusions.filter(isShown).length
    let n = 0
    const all = g.conclusions.map((c): NumberedItem => {
      if (!isShown(c)) return { c, g, gi, n: null, label: null, of }
      n++
      return { c, g, gi, n, label: `${gi}.${n}`, of }
    })
    return { g, gi, all, shown: all.filter((x) => x.n !== null) }
  })
}

/** every shown item in presentation order (the order the console and the projector step through) */
export function shownItems(p: Plenary): NumberedItem[] {
  return numberGroups(p).flatMap((ng) => ng.shown)
}

/** the number of a key ("{groupId}/{conclusionId}"), or null */
export function numberOf(p: Plenary, key: string): string | null {
  for (const ng of numberGroups(p)) for (const it of ng.all) if (it.c.key === key) return it.label
  return null
}
