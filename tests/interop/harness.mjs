// Test harness for the plenary interop suite: spawns the real server binary, creates meetings over
// HTTP, opens stock `y-websocket` providers and raw `ws` sockets, and waits on conditions with
// deadlines (never sleep-and-hope).
//
// Every process it spawns is tracked by PID and killed (by that PID only) in cleanup hooks and,
// as a last resort, when the test process exits.

import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync, readdirSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import os from 'node:os'
import path from 'node:path'
import { after } from 'node:test'
import assert from 'node:assert/strict'

import * as Y from 'yjs'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import * as authProtocol from 'y-protocols/auth'

export { Y, WebSocket, WebsocketProvider, encoding, decoding }

const here = path.dirname(fileURLToPath(import.meta.url))
export const REPO = path.resolve(here, '..', '..')
export const BIN = process.env.PLENARY_BIN || path.join(REPO, 'target', 'release', 'plenary')
/** Multiplier for every deadline (slow CI machines): PLENARY_TEST_SLOWDOWN=2 doubles them. */
export const SLOW = Number(process.env.PLENARY_TEST_SLOWDOWN || 1) || 1

/**
 * PLENARY_TEST_STORE: a PostgreSQL URL (superuser, e.g. `scripts/pg.sh url DIR`). Every server the
 * harness starts with its default command line then runs on PostgreSQL (`--store`), with a fresh
 * database per data dir (a restart on the same data dir keeps its database).
 */
export const TEST_STORE = process.env.PLENARY_TEST_STORE || ''
const storeOfDataDir = new Map()

function psqlBinary () {
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))
    for (const v of versions) {
      const p = `/usr/lib/postgresql/${v}/bin/psql`
      if (existsSync(p)) return p
    }
  } catch {}
  return 'psql'
}

/** The `--store` URL for a server on `dataDir`: a database made for it on first use. */
export function storeFor (dataDir, admin = TEST_STORE) {
  if (!admin) return null
  let url = storeOfDataDir.get(dataDir)
  if (!url) {
    const db = `plenary_interop_${process.pid}_${storeOfDataDir.size}_${randomBytes(3).toString('hex')}`
    execFileSync(psqlBinary(), [admin, '-qXc', `CREATE DATABASE ${db}`], { stdio: ['ignore', 'ignore', 'inherit'] })
    const u = new URL(admin)
    u.pathname = `/${db}`
    url = u.toString()
    storeOfDataDir.set(dataDir, url)
  }
  return url
}

export const MSG_SYNC = 0
export const MSG_AWARENESS = 1
export const MSG_AUTH = 2
export const MSG_QUERY_AWARENESS = 3
export const MSG_SAVED_ACK = 100
export const SYNC_STEP1 = 0
export const SYNC_STEP2 = 1
export const SYNC_UPDATE = 2
export const MAX_MESSAGE_BYTES = 1048576

process.setMaxListeners(0) // every WebsocketProvider adds a process 'exit' listener

// ------------------------------------------------------------------ waiting

/**
 * Polls `cond` (sync or async) until it returns a truthy value, which is returned. Throws after
 * `timeoutMs` (scaled by PLENARY_TEST_SLOWDOWN) with `what` and the last error thrown by `cond`.
 */
export async function waitFor (cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs * SLOW
  let lastErr = null
  for (;;) {
    try {
      const v = await cond()
      if (v) return v
      lastErr = null
    } catch (e) {
      lastErr = e
    }
    if (Date.now() > deadline) {
      const extra = lastErr ? ` (last error: ${lastErr.message})` : ''
      throw new Error(`timed out after ${timeoutMs * SLOW} ms waiting for ${what}${extra}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 15))
  }
}

/** Rejects if `promise` has not settled within `timeoutMs`. */
export function withTimeout (promise, timeoutMs, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs * SLOW} ms waiting for ${what}`)), timeoutMs * SLOW)
    })
  ]).finally(() => clearTimeout(timer))
}

export const randomToken = () => randomBytes(24).toString('hex')
let uniq = 0
/** A meeting id that is unique within this process and valid per ^[a-z0-9][a-z0-9-]{0,62}$. */
export const uniqueId = (prefix = 'm') => `${prefix}-${process.pid}-${++uniq}-${randomBytes(3).toString('hex')}`

// ------------------------------------------------------------------ process tracking

const livePids = new Set()
const killAllTracked = () => {
  for (const pid of livePids) {
    try { process.kill(pid, 'SIGKILL') } catch {}
  }
  livePids.clear()
}
process.on('exit', killAllTracked)
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => { killAllTracked(); process.exit(130) })
}

// ------------------------------------------------------------------ server

export class Server {
  /**
   * @param {object} [opts]
   * @param {string} [opts.dataDir] reuse a data dir (restart); default: a fresh temp dir
   * @param {string} [opts.adminToken] default: random
   * @param {string[]} [opts.args] extra command line arguments
   * @param {object} [opts.env] extra environment
   * @param {number} [opts.startTimeoutMs]
   * @param {string[]} [opts.wrapper] run the binary through this command, which must exec it
   *   (so that the PID stays the server's), e.g. ['bash', '-c', 'ulimit -Sn 1024 && exec "$@"', 'plenary']
   */
  static async start (opts = {}) {
    const s = new Server(opts)
    await s._spawn()
    return s
  }

  constructor ({ dataDir, adminToken, args = [], env = {}, startTimeoutMs = 30000, argv = null, wrapper = null } = {}) {
    this.wrapper = wrapper
    /** argv: the whole command line after the binary (default: serve on port 0 with a temp data dir) */
    this.argv = argv
    this.ownsDataDir = !dataDir
    this.dataDir = dataDir || mkdtempSync(path.join(os.tmpdir(), 'plenary-interop-'))
    this.adminToken = adminToken || randomToken()
    this.args = args
    this.env = env
    this.startTimeoutMs = startTimeoutMs
    this.proc = null
    this.logs = '' // stdout + stderr of every run of this server object
    this.runs = 0
  }

  async _spawn () {
    if (!existsSync(BIN)) {
      throw new Error(`server binary ${BIN} not found: build it with \`cargo build --release -p plenary-server\` or set PLENARY_BIN`)
    }
    const args = this.argv
      ? (typeof this.argv === 'function' ? this.argv(this) : this.argv)
      : ['serve', '--addr', '127.0.0.1:0', '--data-dir', this.dataDir, '--admin-token', this.adminToken, '--no-demo', ...this.storeArgs(), ...this.args]
    // the server's own PLENARY_* variables of the caller's shell must not leak into the tests
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PLENARY_') || k === 'PLENARY_BIN'))
    Object.assign(env, this.env)
    const proc = this.wrapper
      ? spawn(this.wrapper[0], [...this.wrapper.slice(1), BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.proc = proc
    this.runs++
    livePids.add(proc.pid)
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        livePids.delete(proc.pid)
        resolve({ code, signal })
      })
    })
    this.exitInfo = null
    this.exited.then((info) => { if (this.proc === proc) this.exitInfo = info })
    let stdoutBuf = ''
    this.runStdout = '' // stdout of this run only
    const listening = new Promise((resolve, reject) => {
      proc.on('error', reject)
      proc.stdout.on('data', (chunk) => {
        const s = chunk.toString('utf8')
        this.logs += s
        this.runStdout += s
        stdoutBuf += s
        const m = /listening on http:\/\/(\[[^\]]+\]|[^\s:/]+):(\d+)/.exec(stdoutBuf)
        if (m) resolve({ host: m[1], port: Number(m[2]) })
      })
      proc.stderr.on('data', (chunk) => { this.logs += chunk.toString('utf8') })
      this.exited.then(({ code, signal }) => reject(new Error(`server exited (code ${code}, signal ${signal}) before listening; output:\n${this.logs.slice(-4000)}`)))
    })
    let addr
    try {
      addr = await withTimeout(listening, this.startTimeoutMs, 'the server\'s "listening on http://HOST:PORT" line')
    } catch (e) {
      this._killNow('SIGKILL')
      throw new Error(`${e.message}\nserver output so far:\n${this.logs.slice(-4000)}`)
    }
    this.host = addr.host
    this.port = addr.port
    this.base = `http://${addr.host}:${addr.port}`
    this.wsBase = `ws://${addr.host}:${addr.port}/ws`
  }

  /** `--store URL` under PLENARY_TEST_STORE (unless the test gives its own `--store`). */
  storeArgs () {
    if (!TEST_STORE || this.args.includes('--store')) return []
    return ['--store', storeFor(this.dataDir)]
  }

  get running () { return this.proc !== null && this.exitInfo === null }

  _killNow (signal) {
    if (this.proc && livePids.has(this.proc.pid)) {
      try { this.proc.kill(signal) } catch {}
    }
  }

  /** Sends `signal` (default SIGTERM) and waits for the exit; returns {code, signal}. */
  async stop (signal = 'SIGTERM', timeoutMs = 20000) {
    if (!this.proc) return null
    if (this.exitInfo) return this.exitInfo
    this._killNow(signal)
    try {
      return await withTimeout(this.exited, timeoutMs, `server exit after ${signal}`)
    } catch (e) {
      this._killNow('SIGKILL')
      await this.exited
      throw e
    }
  }

  /** kill -9 */
  async crash () { return this.stop('SIGKILL', 10000) }

  /** Stops (SIGTERM unless told otherwise) and starts again on the same data dir and admin token. */
  async restart (signal = 'SIGTERM') {
    const info = await this.stop(signal)
    await this._spawn()
    return info
  }

  /** Starts again after a stop()/crash(). */
  async start () { await this._spawn() }

  /** Kills the process (if running) and removes the temp data dir it created. */
  async dispose () {
    if (this.proc && !this.exitInfo) {
      this._killNow('SIGKILL')
      await withTimeout(this.exited, 10000, 'server exit after SIGKILL').catch(() => {})
    }
    if (this.ownsDataDir && !process.env.PLENARY_KEEP_DATA) {
      rmSync(this.dataDir, { recursive: true, force: true })
    }
  }

  // ---------------------------------------------------------------- HTTP

  async request (method, urlPath, { token, body, rawBody, headers = {} } = {}) {
    const h = { ...headers }
    if (token !== undefined) h.authorization = `Bearer ${token}`
    let payload
    if (rawBody !== undefined) {
      payload = rawBody
      if (!h['content-type']) h['content-type'] = 'application/json'
    } else if (body !== undefined) {
      payload = JSON.stringify(body)
      h['content-type'] = 'application/json'
    }
    const res = await withTimeout(fetch(this.base + urlPath, { method, headers: h, body: payload }), 15000, `${method} ${urlPath}`)
    const text = await res.text()
    let json
    try { json = JSON.parse(text) } catch { json = undefined }
    return { status: res.status, headers: res.headers, text, json }
  }

  /** POST /api/meetings; asserts 201 and returns the body. */
  async createMeeting ({ id = uniqueId(), title = 'Test meeting', groups = [{ id: 'wg-a', title: 'Group A' }, { id: 'wg-b', title: 'Group B' }] } = {}) {
    const body = { title, groups }
    if (id !== null) body.id = id
    const res = await this.request('POST', '/api/meetings', { token: this.adminToken, body })
    assert.equal(res.status, 201, `POST /api/meetings: expected 201, got ${res.status}: ${res.text}`)
    return res.json
  }

  wsUrl (room, params = {}) {
    const q = new URLSearchParams(params).toString()
    return `${this.wsBase}/${room}${q ? '?' + q : ''}`
  }
}

// ------------------------------------------------------------------ wire encoding

const frame = (fn) => { const e = encoding.createEncoder(); fn(e); return encoding.toUint8Array(e) }
export const enc = {
  syncStep1: (docOrSv) => frame((e) => {
    encoding.writeVarUint(e, MSG_SYNC); encoding.writeVarUint(e, SYNC_STEP1)
    encoding.writeVarUint8Array(e, docOrSv instanceof Y.Doc ? Y.encodeStateVector(docOrSv) : (docOrSv || Y.encodeStateVector(new Y.Doc())))
  }),
  syncStep2: (update) => frame((e) => { encoding.writeVarUint(e, MSG_SYNC); encoding.writeVarUint(e, SYNC_STEP2); encoding.writeVarUint8Array(e, update) }),
  update: (update) => frame((e) => { encoding.writeVarUint(e, MSG_SYNC); encoding.writeVarUint(e, SYNC_UPDATE); encoding.writeVarUint8Array(e, update) }),
  /** entries: [{clientID, clock, state}] (state null = removal) */
  awareness: (entries) => frame((e) => {
    encoding.writeVarUint(e, MSG_AWARENESS)
    encoding.writeVarUint8Array(e, frame((inner) => {
      encoding.writeVarUint(inner, entries.length)
      for (const { clientID, clock, state } of entries) {
        encoding.writeVarUint(inner, clientID)
        encoding.writeVarUint(inner, clock)
        encoding.writeVarString(inner, JSON.stringify(state === undefined ? null : state))
      }
    }))
  }),
  queryAwareness: () => frame((e) => encoding.writeVarUint(e, MSG_QUERY_AWARENESS))
}

/** Decodes one server frame into {type: 'sync'|'awareness'|'auth'|'query'|'ack'|'unknown'|'undecodable', ...}. */
export function decodeMessage (data) {
  const buf = new Uint8Array(data)
  try {
    const d = decoding.createDecoder(buf)
    const t = decoding.readVarUint(d)
    switch (t) {
      case MSG_SYNC: {
        const sub = decoding.readVarUint(d)
        const payload = decoding.readVarUint8Array(d)
        if (sub === SYNC_STEP1) return { type: 'sync', sub: 'step1', sv: Y.decodeStateVector(payload), payload }
        if (sub === SYNC_STEP2) return { type: 'sync', sub: 'step2', update: payload }
        if (sub === SYNC_UPDATE) return { type: 'sync', sub: 'update', update: payload }
        return { type: 'undecodable', error: `unknown sync type ${sub}`, bytes: buf }
      }
      case MSG_AWARENESS: {
        const inner = decoding.createDecoder(decoding.readVarUint8Array(d))
        const n = decoding.readVarUint(inner)
        const entries = []
        for (let i = 0; i < n; i++) {
          const clientID = decoding.readVarUint(inner)
          const clock = decoding.readVarUint(inner)
          const state = JSON.parse(decoding.readVarString(inner))
          entries.push({ clientID, clock, state })
        }
        return { type: 'awareness', entries }
      }
      case MSG_AUTH: {
        const sub = decoding.readVarUint(d)
        const reason = decoding.readVarString(d)
        return { type: 'auth', sub, reason }
      }
      case MSG_QUERY_AWARENESS: return { type: 'query' }
      case MSG_SAVED_ACK: return { type: 'ack', sv: Y.decodeStateVector(decoding.readVarUint8Array(d)) }
      default: return { type: 'unknown', messageType: t, bytes: buf }
    }
  } catch (e) {
    return { type: 'undecodable', error: e.message, bytes: buf }
  }
}

/** True when every (client, clock) of `sv` (a Map) is <= the one in `cover` (a Map). */
export function svCovers (cover, sv) {
  for (const [client, clock] of sv) {
    if ((cover.get(client) || 0) < clock) return false
  }
  return true
}

// ------------------------------------------------------------------ raw websocket client

export class UpgradeRefused extends Error {
  constructor (status, body) {
    super(`upgrade refused with HTTP ${status}: ${body}`)
    this.status = status
    this.body = body
    try { this.json = JSON.parse(body) } catch { this.json = undefined }
  }
}

/**
 * A raw `ws` socket speaking the y-websocket protocol by hand. It records every message,
 * mirrors the document it is sent into `this.doc`, and exposes its close code.
 */
export class RawClient {
  /** Connects; rejects with UpgradeRefused when the server answers the upgrade with an HTTP error. */
  static connect (url, { timeoutMs = 10000, handshake = true, maxPayload } = {}) {
    return withTimeout(new Promise((resolve, reject) => {
      const ws = new WebSocket(url, maxPayload ? { maxPayload } : undefined)
      ws.binaryType = 'arraybuffer'
      ws.on('error', (e) => reject(e))
      ws.on('unexpected-response', (req, res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c) => { body += c })
        res.on('end', () => {
          reject(new UpgradeRefused(res.statusCode, body))
          req.destroy()
        })
      })
      const client = new RawClient(ws)
      ws.once('open', async () => {
        try {
          if (handshake) await client.handshake()
          resolve(client)
        } catch (e) { reject(e) }
      })
    }), timeoutMs, `websocket connect ${url.replace(/token=[^&]*/, 'token=…')}`)
  }

  constructor (ws) {
    this.ws = ws
    this.doc = new Y.Doc()
    this.messages = []
    this.closeInfo = null
    this.errors = []
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() }
        resolve(this.closeInfo)
      })
    })
    ws.on('error', (e) => { this.errors.push(e) })
    /** The first thing the server sent that a y-websocket client cannot take (see `check`). */
    this.failure = null
    ws.on('message', (data) => {
      const m = decodeMessage(data)
      m.at = Date.now()
      this.messages.push(m)
      if (m.type === 'undecodable' || m.type === 'unknown') {
        this.failure ??= `the server sent a frame a client cannot read (${m.error ?? `message type ${m.messageType}`})`
      }
      if (m.type === 'sync' && (m.sub === 'step2' || m.sub === 'update')) {
        try { Y.applyUpdate(this.doc, m.update, 'server') } catch (e) {
          m.applyError = e.message
          this.failure ??= `the server sent an update that does not apply: ${e.message}`
        }
      }
    })
  }

  /**
   * Throws if the server sent this socket something a client cannot take (an undecodable or
   * unknown frame, an update that does not apply). Every wait of this client and the end of its
   * scope check it, so the test fails with that instead of a timeout.
   */
  check () {
    if (this.failure) throw new Error(`raw client: ${this.failure}`)
  }

  get open () { return this.ws.readyState === WebSocket.OPEN }

  send (bytes) {
    return new Promise((resolve, reject) => this.ws.send(bytes, (err) => err ? reject(err) : resolve()))
  }

  /** Sends sync step 1 and waits for the server's step 2 (the document as the server has it). */
  async handshake () { await this.barrier() }

  /**
   * A round trip through the server: send sync step 1 and wait for the step 2 reply. Since a
   * connection's frames are handled in order, everything sent before has been processed after it.
   */
  async barrier (timeoutMs = 10000) {
    const n = this.count((m) => m.type === 'sync' && m.sub === 'step2')
    await this.send(enc.syncStep1(this.doc))
    await waitFor(() => this.count((m) => m.type === 'sync' && m.sub === 'step2') > n || this.failure || this.closeInfo, timeoutMs, 'round trip (sync step 2 reply)')
    this.check()
    if (this.closeInfo) throw new Error(`connection closed during round trip: ${JSON.stringify(this.closeInfo)}`)
  }

  count (pred) { return this.messages.filter(pred).length }

  /** Waits for the first message matching pred among those with index >= from. */
  async waitMessage (pred, timeoutMs, what, from = 0) {
    let found
    let failed = null
    await waitFor(() => {
      if (this.failure) return (failed = this.failure)
      for (let i = from; i < this.messages.length; i++) {
        if (pred(this.messages[i], i)) { found = this.messages[i]; return true }
      }
      if (this.closeInfo) throw new Error(`closed ${JSON.stringify(this.closeInfo)}`)
      return false
    }, timeoutMs, what)
    if (failed) this.check()
    return found
  }

  /** Sends a Yjs update made by `fn(doc)` on this client's mirror doc. Returns the update. */
  async edit (fn) {
    let upd = null
    const h = (u, origin) => { if (origin !== 'server') upd = upd ? Y.mergeUpdates([upd, u]) : u }
    this.doc.on('update', h)
    try { fn(this.doc) } finally { this.doc.off('update', h) }
    if (upd) await this.send(enc.update(upd))
    return upd
  }

  authMessages () { return this.messages.filter((m) => m.type === 'auth') }
  acks () { return this.messages.filter((m) => m.type === 'ack') }

  /** Latest awareness state per client id as relayed to this socket (null = removed). */
  awarenessView () {
    const view = new Map()
    for (const m of this.messages) {
      if (m.type !== 'awareness') continue
      for (const e of m.entries) view.set(e.clientID, e)
    }
    return view
  }

  async close () {
    if (this.ws.readyState === WebSocket.CLOSED) return
    this.ws.close(1000)
    await withTimeout(this.closed, 5000, 'raw socket close').catch(() => this.ws.terminate())
  }

  terminate () { this.ws.terminate() }

  destroy () {
    try { this.ws.terminate() } catch {}
    this.doc.destroy()
  }
}

// ------------------------------------------------------------------ stock provider

/**
 * Opens a stock y-websocket WebsocketProvider. Returns {doc, provider, awareness, auth: [reasons],
 * acks: [state vectors], closes: [codes]}. BroadcastChannel is disabled so that providers in this
 * process only ever talk through the server.
 */
export function openProvider (server, room, token, { doc = new Y.Doc(), clientID, params = {}, connect = true, state, maxBackoffTime = 300 } = {}) {
  if (clientID !== undefined) doc.clientID = clientID
  const allParams = { ...params }
  if (token !== undefined && token !== null) allParams.token = token
  const provider = new WebsocketProvider(server.wsBase, room, doc, {
    connect: false,
    params: allParams,
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    maxBackoffTime
  })
  const h = { doc, provider, awareness: provider.awareness, auth: [], acks: [], closes: [], unknown: [] }
  // record permission-denied messages instead of console.warn
  provider.messageHandlers[MSG_AUTH] = (_encoder, decoder, p) => {
    authProtocol.readAuthMessage(decoder, p.doc, (_doc, reason) => { h.auth.push({ reason, at: Date.now() }) })
  }
  // record saved acknowledgements (plenary extension), unknown to stock clients
  provider.messageHandlers[MSG_SAVED_ACK] = (_encoder, decoder) => {
    h.acks.push({ sv: Y.decodeStateVector(decoding.readVarUint8Array(decoder)), at: Date.now() })
  }
  provider.on('connection-close', (ev) => { if (ev) h.closes.push(ev.code) })
  if (state !== undefined) provider.awareness.setLocalState(state)
  if (connect) provider.connect()
  h.synced = () => waitFor(() => provider.synced, 10000, `provider ${room} to sync`)
  h.destroy = () => {
    try { provider.destroy() } catch {}
    try { doc.destroy() } catch {}
  }
  return h
}

// ------------------------------------------------------------------ scopes

/**
 * The server of one test file, started at once (top-level `const server = await sharedServer()`)
 * and disposed of after the file.
 */
export async function sharedServer (opts) {
  const server = await Server.start(opts)
  after(() => server.dispose())
  return server
}

/**
 * Collects things to close at the end of a test (t.after) or of a file (node:test `after`).
 *   const s = scope(t)            // per test
 *   const s = scope(null); after(() => s.close())
 */
export function scope (t) {
  const items = []
  const raws = []
  const s = {
    add (fn) { items.push(fn); return fn },
    async provider (server, room, token, opts) {
      const p = openProvider(server, room, token, opts)
      items.push(() => p.destroy())
      if (opts?.connect !== false && opts?.waitSync !== false) await p.synced()
      return p
    },
    async raw (server, room, params, opts) {
      const c = await RawClient.connect(server.wsUrl(room, params), opts)
      raws.push(c)
      items.push(() => c.destroy())
      return c
    },
    async server (opts) {
      const srv = await Server.start(opts)
      items.push(() => srv.dispose())
      return srv
    },
    /** Closes everything (errors of closing are ignored); then fails if a raw client failed. */
    async close () {
      for (const fn of items.splice(0).reverse()) {
        try { await fn() } catch {}
      }
      const failures = raws.splice(0).filter((c) => c.failure).map((c) => c.failure)
      assert.deepEqual(failures, [], 'raw clients that got frames a client cannot take')
    }
  }
  if (t) t.after(() => s.close())
  return s
}

// ------------------------------------------------------------------ document helpers

/** The contract's group document: add a conclusion map {id, text: Y.Text, status, author}. */
export function addConclusion (doc, { id, text = '', status = 'draft', author = 'rapporteur' }, index) {
  const conclusions = doc.getArray('conclusions')
  const m = new Y.Map()
  doc.transact(() => {
    m.set('id', id)
    m.set('text', new Y.Text(text))
    m.set('status', status)
    m.set('author', author)
    if (index === undefined) conclusions.push([m])
    else conclusions.insert(index, [m])
  })
  return m
}

export function findConclusion (doc, id) {
  for (const m of doc.getArray('conclusions')) {
    if (m instanceof Y.Map && m.get('id') === id) return m
  }
  return null
}

/** Appends a paragraph with `text` to the notes XmlFragment. */
export function addParagraph (doc, text, index) {
  const notes = doc.getXmlFragment('notes')
  const p = new Y.XmlElement('paragraph')
  const t = new Y.XmlText()
  doc.transact(() => {
    p.insert(0, [t])
    t.insert(0, text)
    if (index === undefined) notes.push([p])
    else notes.insert(index, [p])
  })
  return t
}

export const notesString = (doc) => doc.getXmlFragment('notes').toString()
export const conclusionsJSON = (doc) => doc.getArray('conclusions').toJSON()

/** Asserts an HTTP error response per the contract: JSON {"error":{"code":"snake_case","message":"..."}}. */
export function assertErrorBody (res, status, what) {
  assert.equal(res.status, status, `${what}: expected HTTP ${status}, got ${res.status}: ${res.text}`)
  assertErrorJson(res.json, res.text, what)
}

export function assertErrorJson (json, text, what) {
  assert.ok(json && typeof json === 'object', `${what}: body is not JSON: ${JSON.stringify(text)}`)
  assert.ok(json.error && typeof json.error === 'object', `${what}: body has no "error" object: ${text}`)
  assert.match(String(json.error.code), /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/, `${what}: error.code is not snake_case: ${text}`)
  assert.equal(typeof json.error.message, 'string', `${what}: error.message is not a string: ${text}`)
  assert.ok(json.error.message.trim().length > 0, `${what}: error.message is empty: ${text}`)
}
