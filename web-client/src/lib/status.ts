import { h } from './dom'
import type { Room, RoomState } from './room'

/** A status line that is always visible: connection state, and for writers the "saved" mark. */
export function statusBar(room: Room, opts: { write?: boolean; showFollowers?: boolean; showWriters?: boolean } = {}): HTMLElement {
  const conn = h('span', { class: 'pill', 'data-testid': 'connection' })
  const saved = opts.write ? h('span', { class: 'pill', 'data-testid': 'saved' }) : null
  const followers = opts.showFollowers ? h('span', { class: 'pill muted', 'data-testid': 'followers' }) : null
  const denied = h('span', { class: 'pill bad', hidden: true })
  const bar = h('div', { class: 'statusbar', role: 'status', 'aria-live': 'polite', 'aria-atomic': 'false' }, conn, saved, followers, denied)

  const render = (s: RoomState) => {
    const online = s.status === 'connected' && s.synced
    conn.textContent = online ? 'Online' : s.status === 'disconnected' ? (opts.write ? 'Offline — edits are kept in this browser' : 'Offline — reconnecting…') : 'Connecting…'
    conn.className = 'pill ' + (online ? 'ok' : s.status === 'disconnected' ? 'bad' : 'warn')
    conn.dataset.state = online ? 'online' : s.status
    if (saved) {
      saved.dataset.state = s.saved ? 'saved' : 'unsaved'
      saved.textContent = s.saved ? '✓ Saved' : s.denied ? 'Not saved' : online ? 'Saving…' : 'Not saved yet'
      saved.className = 'pill ' + (s.saved ? 'ok' : 'warn')
      saved.title = s.saved ? 'The server confirmed that every edit made here is stored.' : 'Some edits made here are not yet confirmed as stored by the server.'
    }
    if (followers) {
      followers.hidden = s.followers === null
      followers.textContent = s.followers === null ? '' : `${s.followers} following${s.writers !== null && opts.showWriters !== false ? `, ${s.writers} editing` : ''}`
    }
    denied.hidden = !s.denied
    denied.textContent = s.denied ? `Edits refused by the server: ${s.denied}` : ''
  }
  room.onState(render)
  return bar
}
