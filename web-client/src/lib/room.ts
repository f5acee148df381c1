import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

export type Status = 'connecting' | 'connected' | 'disconnected'

export interface RoomState {
  status: Status
  synced: boolean
  /** writers only: true when the server's durable state vector covers ours */
  saved: boolean
  /** writers only: an ack has ever been received on this page */
  acked: boolean
  /** follower counts published by the server (awareness client 0) */
  followers: number | null
  writers: number | null
  /** group closed for writing, as published by the server (null: not known yet) */
  closed: boolean | null
  /** how many server states (awareness client 0) this page has received; grows with each one */
  serverStamp: number
  /** last permission-denied reason from the server, if any */
  denied: string | null
}

export interface Room {
  doc: Y.Doc
  provider: WebsocketProvider
  state: RoomState
  onState(fn: (s: RoomState) => void): () => void
  /** resolves once the first sync with the server (or the local store, for persisted rooms) completed */
  whenSynced: Promise<void>
  /** stop syncing; with `clearLocal`, also delete this browser's IndexedDB copy of the document */
  destroy(opts?: { clearLocal?: boolean }): Promise<void>
}

export const MSG_ACK = 100
/** y-protocols query-awareness: the server answers with the room's awareness (our ping) */
export const MSG_QUERY_AWARENESS = 3
/** how often the page pings the server */
export const PING_MS = 3000
/** a connection that brought no message for this long is dead (e.g. Wi-Fi dropped silently) */
export const DEAD_MS = 8000

export function wsBase(): string {
  return `${location.origin.replace(/^http/, 'ws')}/ws`
}

/** true when every (client, clock) of `ours` is <= the acknowledged vector */
export function covers(acked: Map<number, number>, ours: Map<number, number>): boolean {
  for (const [client, clock] of ours) {
    if ((acked.get(client) ?? 0) < clock) return false
  }
  return true
}

export interface OpenOptions {
  /** ask for saved acknowledgements (`ack=1`) and track the saved state */
  write?: boolean
  /** keep the document in IndexedDB so that edits survive offline periods and reloads */
  persist?: boolean
}

/** short non-cryptographic hash (FNV-1a, 32 bit), so that the token itself is not stored */
export function fnv1a(s: string): string {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h.toString(36)
}

export function openRoom(meeting: string, name: string, token: string, opts: OpenOptions = {}): Room {
  const doc = new Y.Doc()
  const params: Record<string, string> = { token }
  if (opts.write) params.ack = '1'
  const provider = new WebsocketProvider(wsBase(), `${meeting}/${name}`, doc, {
    connect: false,
    params,
    // Read-only connections receive no echo of their own awareness, so without a periodic resync the
    // provider's 30 s silence watchdog would drop and reopen the socket.
    resyncInterval: 20_000,
    // Several tabs of one browser must each hold their own server connection (and ack).
    disableBc: true,
  })
  if (!opts.write) provider.awareness.setLocalState(null)

  const listeners = new Set<(s: RoomState) => void>()
  const state: RoomState = { status: 'connecting', synced: false, saved: true, acked: false, followers: null, writers: null, closed: null, serverStamp: 0, denied: null }
  const ackVector = new Map<number, number>()

  const emit = () => {
    for (const fn of listeners) fn(state)
  }
  // Highest clock per client of every update that did NOT come from the server (typed here, or
  // restored from IndexedDB). Updates the server sent us are durable by its contract (stored before
  // relayed), so "saved" = the acknowledged durable state vector covers all of these — which is the
  // same as covering Y.encodeStateVector(doc) once the server has acked after our sync.
  const pending = new Map<number, number>()
  const recomputeSaved = () => {
    if (!opts.write) return
    const saved = covers(ackVector, pending)
    if (saved !== state.saved) {
      state.saved = saved
      emit()
    }
  }

  provider.messageHandlers[MSG_ACK] = (_encoder, decoder) => {
    const sv = Y.decodeStateVector(decoding.readVarUint8Array(decoder))
    // keep the maximum we ever heard of: acknowledgements only grow
    for (const [client, clock] of sv) {
      if ((ackVector.get(client) ?? 0) < clock) ackVector.set(client, clock)
    }
    state.acked = true
    recomputeSaved()
    emit()
  }
  const origAuth = provider.messageHandlers[2]
  provider.messageHandlers[2] = (encoder, decoder, prov, emitSynced, type) => {
    // y-protocols auth: 0 = permission denied, followed by a reason string
    const peek = decoding.clone(decoder)
    if (decoding.readVarUint(peek) === 0) {
      state.denied = decoding.readVarString(peek) || 'permission denied'
      emit()
    }
    origAuth(encoder, decoder, prov, emitSynced, type)
  }

  let updateQueued = false
  doc.on('update', (update: Uint8Array, origin: unknown) => {
    if (!opts.write || origin === provider) return
    const { to } = Y.parseUpdateMeta(update)
    for (const [client, clock] of to) {
      if ((pending.get(client) ?? 0) < clock) pending.set(client, clock)
    }
    if (updateQueued) return
    updateQueued = true
    queueMicrotask(() => {
      updateQueued = false
      recomputeSaved()
    })
  })

  // y-websocket reports "connecting" at every reconnection attempt; once a connection was lost or
  // refused, this page stays "disconnected" (offline) until a connection is really open again.
  let lost = false
  provider.on('connection-close', () => {
    lost = true
    if (state.status !== 'disconnected') {
      state.status = 'disconnected'
      state.synced = false
      serverClock = -1
      state.followers = null
      state.writers = null
      emit()
    }
  })
  provider.on('status', ({ status }) => {
    if (status === 'connecting' && lost) return
    if (status === 'connected') lost = false
    state.status = status
    if (status !== 'connected') {
      // a new connection starts a new sequence of server states; counts are unknown meanwhile
      // (the closed flag is kept: it is the best knowledge while offline)
      serverClock = -1
      state.followers = null
      state.writers = null
    }
    emit()
  })
  provider.on('sync', (synced: boolean) => {
    state.synced = synced
    emit()
  })
  // The server's own state (awareness client 0: follower counts, closed flag) is read from the
  // messages themselves rather than from provider.awareness: stock awareness drops a remote state
  // after 30 s without a renewal and ignores a re-sent snapshot with the same clock, while the
  // server republishes only on changes. Messages of one connection arrive in order, so the last
  // one (with a clock not older than the last seen on this connection) is the current state.
  let serverClock = -1
  const origAwareness = provider.messageHandlers[1]
  provider.messageHandlers[1] = (encoder, decoder, prov, emitSynced, type) => {
    try {
      const peek = decoding.createDecoder(decoding.readVarUint8Array(decoding.clone(decoder)))
      const n = decoding.readVarUint(peek)
      for (let i = 0; i < n; i++) {
        const client = decoding.readVarUint(peek)
        const clock = decoding.readVarUint(peek)
        const json = decoding.readVarString(peek)
        if (client !== 0 || clock < serverClock) continue
        serverClock = clock
        const srv = (JSON.parse(json) as { server?: { followers?: unknown; writers?: unknown; closed?: unknown } } | null)?.server
        if (!srv) continue
        state.followers = typeof srv.followers === 'number' ? srv.followers : null
        state.writers = typeof srv.writers === 'number' ? srv.writers : null
        if (typeof srv.closed === 'boolean') state.closed = srv.closed
        state.serverStamp++
        emit()
      }
    } catch {
      /* not ours to judge: the stock handler below decides */
    }
    origAwareness(encoder, decoder, prov, emitSynced, type)
  }

  // ---- liveness: a silent network drop leaves a socket "open" for a long time; ping the server
  // every PING_MS and treat DEAD_MS without any incoming message as a dead connection: show
  // offline at once and start a new connection (the provider backs off while it fails).
  const p = provider as unknown as { wsconnected: boolean; wsLastMessageReceived: number; ws: WebSocket | null }
  const dropDead = () => {
    if (!provider.shouldConnect) return
    provider.disconnect() // emits connection-close: the page shows offline
    provider.connect()
  }
  const ping = window.setInterval(() => {
    if (!p.wsconnected || !p.ws || p.ws.readyState !== 1) return
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, MSG_QUERY_AWARENESS)
    try {
      p.ws.send(encoding.toUint8Array(enc))
    } catch {
      /* the watchdog below decides */
    }
  }, PING_MS)
  const watchdog = window.setInterval(() => {
    if (p.wsconnected && Date.now() - p.wsLastMessageReceived > DEAD_MS) dropDead()
  }, 500)
  const onOffline = () => {
    if (p.wsconnected || p.ws) dropDead()
  }
  window.addEventListener('offline', onOffline)
  // closing the tab with edits the server has not confirmed: ask first
  const onBeforeUnload = (e: BeforeUnloadEvent) => {
    if (opts.write && !state.saved) {
      e.preventDefault()
      e.returnValue = ''
    }
  }
  window.addEventListener('beforeunload', onBeforeUnload)

  let resolveSynced!: () => void
  const whenSynced = new Promise<void>((r) => (resolveSynced = r))
  provider.once('sync', () => resolveSynced())

  let persistence: { destroy(): Promise<void> | void } | null = null
  // Keyed by a hash of the capability too: a meeting id re-created on another server (new tokens)
  // must not receive this browser's copy of an older document.
  const idbName = opts.persist ? `plenary:${meeting}/${name}:${fnv1a(token)}` : null
  let destroyed = false
  if (opts.persist && typeof indexedDB !== 'undefined') {
    // loaded on demand: the participant bundle never contains y-indexeddb
    import('y-indexeddb')
      .then(({ IndexeddbPersistence }) => {
        if (destroyed) return
        const p = new IndexeddbPersistence(idbName!, doc)
        persistence = p
        p.whenSynced.then(() => {
          if (destroyed) return
          resolveSynced()
          provider.connect()
        })
      })
      .catch(() => {
        if (!destroyed) provider.connect()
      })
    // The browser store should answer in milliseconds; if it does not (e.g. its deletion waits for
    // another tab of this link to close it), go online without it rather than hang.
    setTimeout(() => {
      if (!destroyed && !provider.shouldConnect) provider.connect()
    }, 4000)
  } else {
    provider.connect()
  }

  return {
    doc,
    provider,
    state,
    whenSynced,
    onState(fn) {
      listeners.add(fn)
      fn(state)
      return () => listeners.delete(fn)
    },
    async destroy(o = {}) {
      destroyed = true
      listeners.clear()
      window.clearInterval(ping)
      window.clearInterval(watchdog)
      window.removeEventListener('offline', onOffline)
      window.removeEventListener('beforeunload', onBeforeUnload)
      provider.destroy()
      const p = persistence as { destroy(): Promise<void> | void; clearData?(): Promise<void> } | null
      if (o.clearLocal && p?.clearData) await p.clearData()
      else await p?.destroy()
      if (o.clearLocal && !p && idbName && typeof indexedDB !== 'undefined') indexedDB.deleteDatabase(idbName)
      doc.destroy()
    },
  }
}
