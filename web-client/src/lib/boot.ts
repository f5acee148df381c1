import { api, describeError, type MeetingInfo } from './api'
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
  try {
    const info = await api<MeetingInfo>(`/api/meetings/${encodeURIComponent(meeting)}`, token)
    return { token, info }
  } catch (e) {
    document.title = 'Cannot open — plenary'
    mount(h('h1', null, 'Cannot open this meeting'), h('p', { class: 'error', role: 'alert' }, describeError(e)), h('p', null, h('button', { onclick: () => location.reload() }, 'Try again')))
    return null
  }
}
