import * as Y from 'yjs'
import { fromBase64, toBase64 } from 'lib0/buffer'

// Read-only copies of documents for the phone view, kept in localStorage so that a reload while
// offline still shows every tab as it was last loaded, with the time of that load. A copy is the
// document's whole state (one Yjs update) and is never fed back into a live document: the page
// reads it into a separate Y.Doc and shows it only until the live one has synced, so nothing of it
// is ever sent to the server.
//
// Bounded: at most MAX_DOC characters per document and MAX_MEETING per meeting (the oldest copies
// of the meeting go first); a document too large is not kept. Keyed by meeting, a hash of the
// capability (never the token) and room.

export const MAX_DOC = 400_000
export const MAX_MEETING = 1_500_000
const PREFIX = 'plenary-copy:'

interface Stored {
  /** when the page last had this document live from the server (ms) */
  at: number
  /** base64 of Y.encodeStateAsUpdate */
  u: string
}

export interface Snapshot {
  doc: Y.Doc
  at: number
}

const keyOf = (meeting: string, cap: string, room: string) => `${PREFIX}${meeting}:${cap}:${room}`

function read(key: string): Stored | null {
  try {
    const raw = localStorage.getItem(key)
    if (!raw) return null
    const s = JSON.parse(raw) as Stored
    return typeof s.at === 'number' && typeof s.u === 'string' ? s : null
  } catch {
    return null
  }
}

/** The kept copy of a room, as its own Y.Doc, or null. */
export function loadSnapshot(meeting: string, cap: string, room: string): Snapshot | null {
  const s = read(keyOf(meeting, cap, room))
  if (!s) return null
  try {
    const doc = new Y.Doc()
    Y.applyUpdate(doc, fromBase64(s.u))
    return { doc, at: s.at }
  } catch {
    return null
  }
}

/** Keeps `doc` (live as of `at`) for this meeting, within the size bounds. Returns whether it did. */
export function saveSnapshot(meeting: string, cap: string, room: string, doc: Y.Doc, at: number): boolean {
  const key = keyOf(meeting, cap, room)
  const value = JSON.stringify({ at, u: toBase64(Y.encodeStateAsUpdate(doc)) } satisfies Stored)
  if (value.length > MAX_DOC) return false
  try {
    // the other copies of this meeting, oldest first: dropped while the meeting is over budget
    const mine = `${PREFIX}${meeting}:`
    const others: { k: string; at: number; size: number }[] = []
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i)
      if (!k || !k.startsWith(mine) || k === key) continue
      const raw = localStorage.getItem(k) ?? ''
      others.push({ k, at: read(k)?.at ?? 0, size: raw.length })
    }
    others.sort((a, b) => a.at - b.at)
    let total = value.length + others.reduce((n, o) => n + o.size, 0)
    while (total > MAX_MEETING && others.length) {
      const o = others.shift()!
      localStorage.removeItem(o.k)
      total -= o.size
    }
    localStorage.setItem(key, value)
    return true
  } catch {
    // storage full or disabled: the page keeps working with what it holds in memory
    return false
  }
}
