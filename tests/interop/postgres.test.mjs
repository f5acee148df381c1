// PostgreSQL (`--store postgres://…`, contract "Several nodes"): /healthz while the database
// cannot be reached, and `plenary migrate`. Runs on the test cluster that PLENARY_TEST_STORE or
// PLENARY_TEST_PG_URL names (scripts/test.sh sets the latter from scripts/pg.sh); skipped
// without one, and a failure when PLENARY_REQUIRE_PG=1.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  BIN, TEST_STORE, storeFor, scope, waitFor, uniqueId, assertErrorBody,
  addParagraph, notesString, addConclusion, conclusionsJSON
} from './harness.mjs'

// The test cluster: PLENARY_TEST_STORE (the harness's) or PLENARY_TEST_PG_URL (scripts/test.sh).
const PG = TEST_STORE || process.env.PLENARY_TEST_PG_URL || ''
if (!PG && process.env.PLENARY_REQUIRE_PG === '1') {
  throw new Error('PLENARY_REQUIRE_PG=1 but neither PLENARY_TEST_STORE nor PLENARY_TEST_PG_URL is set')
}
const skip = PG ? false : 'no PostgreSQL test cluster (PLENARY_TEST_PG_URL; scripts/pg.sh start DIR makes one)'

/** A loopback TCP proxy to `target` that can drop every connection and refuse new ones. */
async function proxyTo (target) {
  const sockets = new Set()
  let server = null
  let port = 0
  const listen = () => new Promise((resolve, reject) => {
    server = net.createServer((client) => {
      const upstream = net.connect(Number(target.port), target.hostname)
      sockets.add(client); sockets.add(upstream)
      const drop = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream) }
      client.on('error', drop); upstream.on('error', drop); client.on('close', drop); upstream.on('close', drop)
      client.pipe(upstream); upstream.pipe(client)
    })
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => { port = server.address().port; resolve() })
  })
  await listen()
  return {
    get port () { return port },
    /** The database is unreachable: open connections cut, new ones refused. */
    async cut () {
      await new Promise((resolve) => { server.close(() => resolve()); for (const s of sockets) s.destroy(); sockets.clear() })
    },
    async restore () { await listen() },
    async close () { for (const s of sockets) s.destroy(); await new Promise((resolve) => server.close(() => resolve())) }
  }
}

const run = (args) => new Promise((resolve) => {
  execFile(BIN, args, { timeout: 60000 }, (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }))
})

test('/healthz answers 503 with the JSON error body while PostgreSQL cannot be reached, and the node carries on after', { skip }, async (t) => {
  const s = scope(t)
  const direct = new URL(storeFor(`health-${uniqueId()}`, PG))
  const proxy = await proxyTo(direct)
  s.add(() => proxy.close())
  const viaProxy = new URL(direct)
  viaProxy.host = `127.0.0.1:${proxy.port}`
  const server = await s.server({ args: ['--store', viaProxy.toString()] })
  let res = await server.request('GET', '/healthz')
  assert.equal(res.status, 200, res.text)
  assert.equal(res.text, 'ok')
  const m = await server.createMeeting({ title: 'Health', groups: [{ id: 'wg-a', title: 'A' }] })

  await proxy.cut()
  await waitFor(async () => (await server.request('GET', '/healthz')).status === 503, 15000, '/healthz to answer 503')
  res = await server.request('GET', '/healthz')
  assertErrorBody(res, 503, '/healthz without the database')
  assert.equal(res.json.error.code, 'store_unavailable')

  await proxy.restore()
  await waitFor(async () => (await server.request('GET', '/healthz')).status === 200, 15000, '/healthz to answer 200 again')
  // and the node writes and relays again
  const room = `${m.id}/wg-a`
  const w = await s.provider(server, room, m.tokens.rapporteurs['wg-a'])
  const o = await s.provider(server, room, m.tokens.participant)
  addParagraph(w.doc, 'after the outage')
  await waitFor(() => notesString(o.doc).includes('after the outage'), 15000, 'an edit after the outage to reach another client')
})

test('plenary migrate copies a data dir into PostgreSQL: meetings, tokens and documents are served from it', { skip }, async (t) => {
  const s = scope(t)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'plenary-migrate-'))
  s.add(() => rmSync(dir, { recursive: true, force: true }))
  const embedded = await s.server({ dataDir: dir, args: ['--store', 'sqlite'] })
  const m = await embedded.createMeeting({ title: 'Moved', groups: [{ id: 'wg-a', title: 'A' }, { id: 'wg-b', title: 'B' }] })
  const room = `${m.id}/wg-a`
  const w = await s.provider(embedded, room, m.tokens.rapporteurs['wg-a'])
  addParagraph(w.doc, 'typed on SQLite')
  addConclusion(w.doc, { id: 'c1', text: 'carried over' })
  const o = await s.provider(embedded, room, m.tokens.participant)
  await waitFor(() => notesString(o.doc).includes('typed on SQLite') && conclusionsJSON(o.doc).length === 1, 10000, 'the edits to be durable and relayed')
  const closed = await embedded.request('POST', `/api/meetings/${m.id}/groups/wg-b/close`, { token: m.tokens.moderator })
  assert.equal(closed.status, 200, closed.text)
  const expected = { notes: notesString(o.doc), conclusions: conclusionsJSON(o.doc) }
  w.destroy(); o.destroy()
  assert.deepEqual(await embedded.stop('SIGTERM'), { code: 0, signal: null })

  const target = storeFor(`migrate-${uniqueId()}`, PG)
  const first = await run(['migrate', '--from-data-dir', dir, '--to', target])
  assert.equal(first.code, 0, `migrate failed: ${first.stderr}`)
  assert.match(first.stdout, /copied 1 meetings/)
  const again = await run(['migrate', '--from-data-dir', dir, '--to', target])
  assert.notEqual(again.code, 0, 'a second migrate into a non-empty database must be refused')
  assert.match(again.stderr, /not empty/)

  const node = await s.server({ adminToken: embedded.adminToken, args: ['--store', target] })
  const res = await node.request('GET', `/api/meetings/${m.id}`, { token: m.tokens.participant })
  assert.equal(res.status, 200, res.text)
  assert.equal(res.json.title, 'Moved')
  assert.deepEqual(res.json.groups.map((g) => [g.id, g.closed]), [['wg-a', false], ['wg-b', true]])
  const late = await s.provider(node, room, m.tokens.participant)
  assert.equal(notesString(late.doc), expected.notes)
  assert.deepEqual(conclusionsJSON(late.doc), expected.conclusions)
})
