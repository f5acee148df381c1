import * as Y from 'yjs'

// The order and the trash of a group's conclusions (docs/PLENARY_LAYOUT.md "Order of conclusions";
// the server's twin is `plenary::merge::read_conclusions`).
//
// - `position` (string): a fractional index. A move rewrites only this key, so the item's Y.Text —
//   and whoever is typing in it — stays where it is.
// - Reading order: maps with a non-empty `position` first, sorted by (position compared by code
//   unit, array index); maps without one after them, in array order. Old documents and stock
//   clients that only append therefore still read as before (an appended item shows at the end).
// - `trashed` (RFC 3339 time string): a soft delete. Readers skip the item; Restore deletes the key.

export const POSITION = 'position'
export const TRASHED = 'trashed'

/** base-62 digits in ASCII order, so that string comparison is numeric comparison */
export const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

const posOf = (m: Y.Map<unknown>): string | null => {
  const p = m.get(POSITION)
  return typeof p === 'string' && p !== '' ? p : null
}
export const isTrashed = (m: Y.Map<unknown>): boolean => {
  const t = m.get(TRASHED)
  return typeof t === 'string' && t !== ''
}

/** Every conclusion map (trashed ones too) in reading order. */
export function orderedMaps(arr: Y.Array<Y.Map<unknown>>): Y.Map<unknown>[] {
  const positioned: { p: string; i: number; m: Y.Map<unknown> }[] = []
  const rest: Y.Map<unknown>[] = []
  arr.forEach((m, i) => {
    if (!(m instanceof Y.Map)) return
    const p = posOf(m)
    if (p !== null) positioned.push({ p, i, m })
    else rest.push(m)
  })
  positioned.sort((a, b) => (a.p < b.p ? -1 : a.p > b.p ? 1 : a.i - b.i))
  return [...positioned.map((x) => x.m), ...rest]
}

/** The live (not trashed) maps in reading order, repeated ids after the first left out. */
export function liveMaps(arr: Y.Array<Y.Map<unknown>>): Y.Map<unknown>[] {
  const seen = new Set<string>()
  return orderedMaps(arr).filter((m) => {
    if (isTrashed(m)) return false
    const id = m.get('id')
    if (typeof id !== 'string' || seen.has(id)) return false
    seen.add(id)
    return true
  })
}

/** The trashed maps, most recently trashed first. */
export function trashedMaps(arr: Y.Array<Y.Map<unknown>>): Y.Map<unknown>[] {
  return orderedMaps(arr)
    .filter(isTrashed)
    .sort((a, b) => String(b.get(TRASHED)).localeCompare(String(a.get(TRASHED))))
}

// ---- fractional indices ----

const valid = (k: string | null): boolean => k === null || (k !== '' && !k.endsWith('0') && [...k].every((c) => DIGITS.includes(c)))

/** A key strictly between `a` and `b` (null = open end); both valid keys with a < b. */
export function midpoint(a: string, b: string | null): string {
  if (b !== null) {
    let n = 0
    while ((a[n] ?? '0') === b[n]) n++
    if (n > 0) return b.slice(0, n) + midpoint(a.slice(n), b.slice(n))
  }
  const da = a ? DIGITS.indexOf(a[0]) : 0
  const db = b !== null ? DIGITS.indexOf(b[0]) : DIGITS.length
  if (db - da > 1) return DIGITS[Math.round((da + db) / 2)]
  if (b !== null && b.length > 1) return b.slice(0, 1)
  return DIGITS[da] + midpoint(a.slice(1), null)
}

function randomDigit(): string {
  const a = new Uint8Array(1)
  crypto.getRandomValues(a)
  return DIGITS[1 + (a[0] % (DIGITS.length - 1))]
}

/**
 * A key between `a` and `b` with a random last digit when it fits, so that two people who move
 * items into the same gap at once rarely get the same key (equal keys still read in a fixed
 * order: by array index).
 */
export function keyBetween(a: string | null, b: string | null): string {
  const m = midpoint(a ?? '', b)
  const r = m + randomDigit() + randomDigit()
  return (a === null || r > a) && (b === null || r < b) ? r : m
}

/** `n` evenly spread keys (deterministic: two pages that renumber the same list agree). */
export function spreadKeys(n: number): string[] {
  const width = n < 60 ? 2 : n < 3800 ? 3 : 4
  const span = DIGITS.length ** width
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    let v = Math.floor(((i + 1) * span) / (n + 1))
    let s = ''
    for (let w = 0; w < width; w++) {
      s = DIGITS[v % DIGITS.length] + s
      v = Math.floor(v / DIGITS.length)
    }
    out.push(s.replace(/0+$/, '') || DIGITS[1])
  }
  return out
}

/**
 * Makes sure every live item has a valid position, strictly increasing in reading order; when they
 * do not, renumbers the live items (rewriting `position` only, never a text). Call inside a
 * transaction. Returns the live maps in order.
 */
export function ensurePositions(arr: Y.Array<Y.Map<unknown>>): Y.Map<unknown>[] {
  const live = liveMaps(arr)
  let ok = true
  let prev: string | null = null
  for (const m of live) {
    const p = posOf(m)
    if (p === null || !valid(p) || (prev !== null && p <= prev)) {
      ok = false
      break
    }
    prev = p
  }
  if (!ok) {
    const keys = spreadKeys(live.length)
    live.forEach((m, i) => {
      if (m.get(POSITION) !== keys[i]) m.set(POSITION, keys[i])
    })
  }
  return live
}

/** Moves the live item `m` by `dir` places (−1 up, +1 down). Call inside a transaction. */
export function moveItem(arr: Y.Array<Y.Map<unknown>>, m: Y.Map<unknown>, dir: number): number {
  const live = ensurePositions(arr)
  const i = live.indexOf(m)
  const j = i + dir
  if (i < 0 || j < 0 || j >= live.length) return i
  // the gap the item goes into: between live[j-1] and live[j] (up), or live[j] and live[j+1] (down)
  const lo = dir < 0 ? live[j - 1] : live[j]
  const hi = dir < 0 ? live[j] : live[j + 1]
  m.set(POSITION, keyBetween(lo ? posOf(lo) : null, hi ? posOf(hi) : null))
  return j
}

/** A position for a new item at the end of the live list. Call inside a transaction. */
export function endPosition(arr: Y.Array<Y.Map<unknown>>): string {
  const live = ensurePositions(arr)
  const last = live[live.length - 1]
  let after = last ? posOf(last) : null
  // stay after trashed items too, so that a restore does not land after a newer item by surprise
  for (const m of orderedMaps(arr)) {
    const p = posOf(m)
    if (p !== null && valid(p) && (after === null || p > after)) after = p
  }
  return keyBetween(after, null)
}

export function trashItem(m: Y.Map<unknown>, now = new Date()) {
  m.set(TRASHED, now.toISOString())
}
export function restoreItem(m: Y.Map<unknown>) {
  m.delete(TRASHED)
}
