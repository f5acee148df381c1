import { api, ApiError, describeError, type MeetingInfo } from './api'
import { fnv1a } from './room'
import { h, mount } from './dom'
import { readToken } from './token'

/** Read the token and check it against the meeting; shows a clear error page when that fails. */
export async function boot(meeting: string): Promise<{ token: string; info: MeetingInfo } | null> {
  const token = readToken()
  if (!token) {
    mount(
      h('h1', null, 'This link is incomplete'),
      h('p', { class: 'error', role: 'alert' }, 'The link has no access token. Open the full link you were given (it ends with #token=…).'),
    )
    return null
  }
  // the last answer is kept per meeting and capability (a hash, never the token), so that a reload
  // while offline still opens the page with what this browser holds
  const key = `plenary-info:${meeting}:${fnv1a(token)}`
  try {
    const info = await api<MeetingInfo>(`/api/meetings/${encodeURIComponent(meeting)}`, token)
    try {
      localStorage.setItem(key, JSON.stringify(info))
    } catch {
      /* storage full or disabled */
    }
    return { token, info }
  } catch (e) {
    if (e instanceof ApiError && e.status === 0) {
      try {
        const kept = localStorage.getItem(key)
        if (kept) return { token, info: JSON.parse(kept) as MeetingInfo }
      } catch {
        /* fall through to the error page */
      }
    }
    document.title = 'Cannot open — plenary'
    mount(h('h1', null, 'Cannot open this meeting'), h('p', { class: 'error', role: 'alert' }, describeError(e)), h('p', null, h('button', { onclick: () => location.reload() }, 'Try again')))
    return null
  }
}
