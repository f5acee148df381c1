// Several plenary nodes on one PostgreSQL database (issue 13, the contract's "Several nodes"), as an
// outsider sees them: real `plenary serve --store postgres://…` processes on 127.0.0.1, each with
// its own data dir and port, a loopback TCP balancer in front of them, and the means to hurt them:
// stop by PID, `kill -9`, SIGSTOP/SIGCONT a node, SIGSTOP/SIGCONT a whole PostgreSQL cluster.
//
// Every process signalled here was started by this process (the nodes by the harness, PostgreSQL
// clusters by `scripts/pg.sh` called from here); every wait is a condition with a deadline.
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, chmodSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after } from 'node:test'

import { Server, REPO, TEST_STORE, storeFor, waitFor, withTimeout, randomToken, uniqueId } from '../harness.mjs'

/** The PostgreSQL test cluster: PLENARY_TEST_STORE (the harness's) or PLENARY_TEST_PG_URL (scripts/test.sh). */
export const PG = TEST_STORE || process.env.PLENARY_TEST_PG_URL || ''
if (!PG && process.env.PLENARY_REQUIRE_PG === '1') {
  throw new Error('PLENARY_REQUIRE_PG=1 but neither PLENARY_TEST_STORE nor PLENARY_TEST_PG_URL is set')
}
/** `skip` option of a cluster test: a reason when there is no PostgreSQL to run on. */
export const skipWithoutPg = PG ? false : 'no PostgreSQL test cluster (PLENARY_TEST_PG_URL; scripts/pg.sh start DIR makes one)'

// ------------------------------------------------------------------ psql

export function pgBinDir () {
  try {
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a))
    for (const v of versions) {
      const d = `/usr/lib/postgresql/${v}/bin`
      if (existsSync(`${d}/psql`)) return d
    }
  } catch {}
  return null
}

const psqlBin = () => { const d = pgBinDir(); return d ? `${d}/psql` : 'psql' }

/** Runs `sql` with psql on `url`; resolves with stdout's lines (unaligned, tuples only). */
export function psql (url, sql, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    execFile(psqlBin(), [url, '-qXAtc', sql], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`psql: ${err.message} ${stderr}`))
      else resolve(stdout.split('\n').filter((l) => l.length > 0))
    })
  })
}

// ------------------------------------------------------------------ nodes

/**
 * N `plenary serve` processes on one fresh database. `nodes[i]` is a harness `Server` (its
 * `request`, `createMeeting`, `wsBase`, `stop`, `crash`, `start`), with `pause()`/`resume()`
 * (SIGSTOP/SIGCONT) and `nodeId` (the id it logs at start) added.
 */
export class Cluster {
  /**
   * @param {object} [opts]
   * @param {number} [opts.nodes] how many nodes (default 2)
   * @param {string} [opts.pg] a superuser URL of the PostgreSQL cluster (default PG); a fresh
   *   database is made on it for this cluster and dropped at dispose
   * @param {string[]} [opts.args] extra arguments for every node
   * @param {object[]} [opts.meetings] meetings (createMeeting options) made on the first node
   *   before the others start, in `cluster.meetings`: the other nodes read them at start, so tests
   *   of replication do not depend on the directory's change signals
   */
  static async start ({ nodes = 2, pg = PG, args = [], meetings = [] } = {}) {
    const c = new Cluster({ pg, args })
    try {
      // The first node applies the schema; the others then start together.
      await c.addNode()
      for (const opts of meetings) c.meetings.push(await c.nodes[0].createMeeting(opts))
      await Promise.all(Array.from({ length: nodes - 1 }, () => c.addNode()))
    } catch (e) {
      await c.dispose()
      throw e
    }
    return c
  }

  /** A cluster for the whole test file, disposed of after it. */
  static async shared (opts) {
    const c = await Cluster.start(opts)
    after(() => c.dispose())
    return c
  }

  constructor ({ pg, args }) {
    if (!pg) throw new Error('Cluster: no PostgreSQL URL')
    this.pg = pg
    this.url = storeFor(`cluster-${uniqueId()}`, pg)
    this.adminToken = randomToken()
    this.args = args
    this.nodes = []
    this.meetings = []
  }

  get adminUrl () { return this.pg }

  /** Starts one more node on the cluster's database; resolves once /healthz answers 200. */
  async addNode (extraArgs = []) {
    const node = new Server({ adminToken: this.adminToken, args: ['--store', this.url, ...this.args, ...extraArgs] })
    this.nodes.push(node)
    await node._spawn()
    await nodeReady(node)
    decorate(node)
    return node
  }

  node (i) { return this.nodes[i] }
  get live () { return this.nodes.filter((n) => n.running && !n.paused) }

  /** POST /api/meetings on node `i` (default 0). */
  createMeeting (opts, i = 0) { return this.nodes[i].createMeeting(opts) }

  /** Waits until every running node serves meeting `m` (GET /api/meetings/{m} 200 with its tokens). */
  async meetingEverywhere (m, timeoutMs = 5000) {
    for (const n of this.nodes.filter((x) => x.running)) {
      await waitFor(async () => (await n.request('GET', `/api/meetings/${m.id}`, { token: m.tokens.participant })).status === 200,
        timeoutMs, `meeting ${m.id} (created on another node) to be served by ${n.base}`)
    }
    return m
  }

  /** Kills every node (SIGCONT first where paused), removes their data dirs, drops the database. */
  async dispose () {
    for (const n of this.nodes) {
      if (n.paused) { try { n.resume() } catch {} }
    }
    await Promise.all(this.nodes.map((n) => n.dispose()))
    const db = new URL(this.url).pathname.slice(1)
    await psql(this.pg, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {})
  }
}

/** Waits until `node` (started, "listening on" seen) answers /healthz with 200. */
export async function nodeReady (node, timeoutMs = 20000) {
  await waitFor(async () => {
    if (node.exitInfo) throw new Error(`node exited: ${JSON.stringify(node.exitInfo)}\n${node.logs.slice(-2000)}`)
    return (await node.request('GET', '/healthz')).status === 200
  }, timeoutMs, `node ${node.base} /healthz 200`)
}

function decorate (node) {
  if (node._clusterDecorated) return
  node._clusterDecorated = true
  node.paused = false
  /** SIGSTOP: the process stops (its sockets stay open, nothing answers). */
  node.pause = () => { signalOwn(node, 'SIGSTOP'); node.paused = true }
  /** SIGCONT */
  node.resume = () => { signalOwn(node, 'SIGCONT'); node.paused = false }
  Object.defineProperty(node, 'pid', { get: () => node.proc?.pid })
  Object.defineProperty(node, 'nodeId', {
    get: () => {
      // tracing's field of the start-up line: `node=0123456789abcdef` (ANSI colours aside)
      const plain = node.runStdout.concat(node.logs).replace(/\x1b\[[0-9;]*m/g, '')
      const all = [...plain.matchAll(/node[=:"\s]+([0-9a-f]{16})\b/g)]
      return all.length ? all[all.length - 1][1] : null
    }
  })
}

function signalOwn (node, sig) {
  if (!node.running) throw new Error(`node ${node.base} is not running`)
  process.kill(node.proc.pid, sig)
}

// ------------------------------------------------------------------ balancer

/**
 * A loopback TCP proxy standing in for a load balancer without sticky sessions: each new client
 * connection goes to the next node, round-robin, skipping nodes that are marked down or refuse
 * the connection (a dead node). When a node's side of a connection closes, the client's side is
 * closed too, so the client sees the drop and reconnects (to another node).
 *
 * It has `base`, `wsBase` and `wsUrl` like a harness `Server`, so `openProvider(balancer, …)` and
 * `RawClient.connect(balancer.wsUrl(…))` go through it.
 */
export class Balancer {
  static async start (nodes) {
    const b = new Balancer(nodes)
    await b._listen()
    return b
  }

  constructor (nodes) {
    this.nodes = nodes // harness Servers (their current host/port is read at each connection)
    this.next = 0
    this.down = new Set() // node indexes taken out by hand (a health check would)
    this.pairs = new Set()
    /** every connection made: {node: index, at, open} */
    this.connections = []
  }

  _listen () {
    return new Promise((resolve, reject) => {
      this.server = net.createServer((client) => this._accept(client))
      this.server.once('error', reject)
      this.server.listen(0, '127.0.0.1', () => {
        this.port = this.server.address().port
        this.base = `http://127.0.0.1:${this.port}`
        this.wsBase = `ws://127.0.0.1:${this.port}/ws`
        resolve()
      })
    })
  }

  wsUrl (room, params = {}) {
    const q = new URLSearchParams(params).toString()
    return `${this.wsBase}/${room}${q ? '?' + q : ''}`
  }

  /** Same as a harness Server's request(), through the balancer. */
  request (...args) { return Server.prototype.request.apply(this, args) }

  setDown (i, down = true) { if (down) this.down.add(i); else this.down.delete(i) }

  _candidates () {
    const order = []
    for (let k = 0; k < this.nodes.length; k++) {
      const i = (this.next + k) % this.nodes.length
      const n = this.nodes[i]
      // no peeking at the processes: a dead node is found when it refuses the connection
      if (!this.down.has(i) && n.port) order.push(i)
    }
    this.next = (this.next + 1) % Math.max(1, this.nodes.length)
    return order
  }

  _accept (client) {
    client.pause()
    client.on('error', () => {})
    const order = this._candidates()
    const attempt = () => {
      const i = order.shift()
      if (i === undefined) { client.destroy(); return }
      const n = this.nodes[i]
      const upstream = net.connect(n.port, '127.0.0.1')
      let connected = false
      upstream.once('error', () => {
        if (!connected) { upstream.destroy(); attempt() }
      })
      upstream.once('connect', () => {
        connected = true
        const rec = { node: i, at: Date.now(), open: true }
        this.connections.push(rec)
        const pair = { client, upstream, node: i }
        this.pairs.add(pair)
        const drop = () => {
          rec.open = false
          this.pairs.delete(pair)
          client.destroy()
          upstream.destroy()
        }
        client.on('close', drop)
        upstream.on('close', drop)
        upstream.on('error', drop)
        client.on('error', drop)
        client.pipe(upstream)
        upstream.pipe(client)
        client.resume()
      })
    }
    attempt()
  }

  /** Open connections per node index. */
  openTo (i) { return this.connections.filter((c) => c.open && c.node === i).length }

  /** Drops every open connection to node `i` (as a balancer does when a health check fails). */
  dropConnectionsTo (i) {
    for (const p of [...this.pairs]) {
      if (p.node === i) { p.client.destroy(); p.upstream.destroy() }
    }
  }

  async close () {
    for (const p of [...this.pairs]) { p.client.destroy(); p.upstream.destroy() }
    await new Promise((resolve) => this.server.close(() => resolve()))
  }
}

// ------------------------------------------------------------------ a PostgreSQL of one's own

/**
 * A PostgreSQL cluster of this test alone (scripts/pg.sh start in a fresh temp folder), so that it
 * can be frozen without touching anything else. `freeze()` SIGSTOPs the postmaster and every one of
 * its children (found from DIR/data/postmaster.pid and `ps --ppid`), `thaw()` SIGCONTs them.
 */
export class OwnPostgres {
  static available () { return pgBinDir() !== null && existsSync(path.join(REPO, 'scripts', 'pg.sh')) }

  static async start () {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'plenary-ctest-pg-'))
    chmodSync(dir, 0o755) // the `postgres` user must enter it (scripts/pg.sh runs PostgreSQL as that user under root)
    const pg = new OwnPostgres(dir)
    try {
      pg.url = await new Promise((resolve, reject) => {
        execFile('bash', [path.join(REPO, 'scripts', 'pg.sh'), 'start', dir], { timeout: 120000 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`scripts/pg.sh start: ${err.message}\n${stderr}`))
          else resolve(stdout.trim().split('\n').pop())
        })
      })
    } catch (e) {
      rmSync(dir, { recursive: true, force: true })
      throw e
    }
    pg.postmaster = Number(readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0])
    return pg
  }

  constructor (dir) {
    this.dir = dir
    this.url = null
    this.postmaster = 0
    this.frozen = []
  }

  /** The postmaster's children now (backends, walwriter, checkpointer, …). */
  children () {
    let out = ''
    try {
      out = execFileSync('ps', ['--ppid', String(this.postmaster), '-o', 'pid='], { encoding: 'utf8' })
    } catch { return [] } // ps exits 1 when there are none
    return out.split('\n').map((l) => Number(l.trim())).filter((n) => n > 0)
  }

  /** SIGSTOP the postmaster first (it forks no new backend then), then each child. Returns the PIDs. */
  freeze () {
    process.kill(this.postmaster, 'SIGSTOP')
    this.frozen = [this.postmaster]
    for (const pid of this.children()) {
      try { process.kill(pid, 'SIGSTOP'); this.frozen.push(pid) } catch {}
    }
    return [...this.frozen]
  }

  /** SIGCONT every process frozen, children first. */
  thaw () {
    for (const pid of [...this.frozen].reverse()) {
      try { process.kill(pid, 'SIGCONT') } catch {}
    }
    this.frozen = []
  }

  async stop () {
    this.thaw()
    await new Promise((resolve) => {
      execFile('bash', [path.join(REPO, 'scripts', 'pg.sh'), 'stop', this.dir], { timeout: 60000 }, () => resolve())
    })
    rmSync(this.dir, { recursive: true, force: true })
  }
}

// ------------------------------------------------------------------ plenary lease (as seen in the database)

/**
 * Which node holds the plenary lease of meeting `m`, read from the database as an outsider would:
 * any table whose name mentions "lease" (h-lease's is `plenary_leases(meeting_id, holder, epoch,
 * expires_at)`), a row not lapsed that mentions the meeting id and a node id of the cluster.
 * Returns the node's index or -1.
 */
export async function leaseHolder (cluster, meetingId) {
  const tables = await psql(cluster.url, "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) || ' ' || " +
    "(SELECT count(*) FROM information_schema.columns c WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name AND c.column_name = 'expires_at') " +
    "FROM information_schema.tables t WHERE table_name ILIKE '%lease%' AND table_schema NOT IN ('pg_catalog', 'information_schema')")
  for (const line of tables) {
    const [table, hasExpiry] = line.split(' ')
    // a lapsed lease is nobody's (on the database's clock, as the nodes judge it)
    const where = hasExpiry === '1' ? ' WHERE t.expires_at > now()' : ''
    const rows = await psql(cluster.url, `SELECT row_to_json(t)::text FROM ${table} t${where}`)
    for (const row of rows) {
      if (!row.includes(meetingId)) continue
      for (let i = 0; i < cluster.nodes.length; i++) {
        const id = cluster.nodes[i].nodeId
        if (id && row.includes(id)) return i
      }
    }
  }
  return -1
}

export { withTimeout }
