import { api, type MeetingInfo } from './api'

// The participant link of a meeting, as this browser knows it. The projector opened from the
// console carries the moderator's token, which must never be shown on a big screen; it shows the
// join QR code only for a participant link it knows from this browser: the organizer page stores
// it when it creates the meeting, and the console stores it when the moderator pastes it. Before
// showing it, the projector checks with the server that it really is a participant token.

const key = (m: string) => `plenary-join:${m}`

export function storeJoinLink(meeting: string, link: string) {
  try {
    if (link) localStorage.setItem(key(meeting), link)
    else localStorage.removeItem(key(meeting))
  } catch {
    /* storage may be disabled */
  }
}

export function storedJoinLink(meeting: string): string | null {
  try {
    return localStorage.getItem(key(meeting))
  } catch {
    return null
  }
}

/** the token of a participant link of this meeting on this origin, or null */
export function tokenOfLink(meeting: string, link: string): string | null {
  try {
    const u = new URL(link, location.origin)
    if (u.origin !== location.origin || u.pathname.replace(/\/+$/, '') !== `/m/${meeting}`) return null
    return new URLSearchParams(u.hash.replace(/^#/, '')).get('token')
  } catch {
    return null
  }
}

/** resolves to the link when the server confirms it carries a participant token of the meeting */
export async function verifiedJoinLink(meeting: string, link: string | null): Promise<string | null> {
  if (!link) return null
  const t = tokenOfLink(meeting, link)
  if (!t) return null
  try {
    const info = await api<MeetingInfo>(`/api/meetings/${encodeURIComponent(meeting)}`, t)
    return info.role === 'participant' ? link : null
  } catch {
    return null
  }
}
