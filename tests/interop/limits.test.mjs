// Floods that cost the server in proportion to a document or an awareness table: sync step 1
// with random state vectors from participants that do not read, awareness from one token over
// many connections, query-awareness from a socket that does not read. The server's memory must
// stay bounded (compared with the document's size, in one run) and writers must keep getting
// their saved acknowledgements. Figures are printed (`# …`) for BENCHMARKS and reports.
//
// PLENARY_BIN may name an older binary to measure it: the assertions then say what it misses.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { Y, Server, scope, waitFor, enc } from './harness.mjs'

let server
after(async () => { await server?.dispose() })

const rssBytes = (pid) => 1024 * Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1])
const MiB = (n) => (n / 1048576).toFixed(1)
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]
}

/** Samples the server's RSS until stopped; returns the peak. */
function rssSampler (pid) {
  let peak = rssBytes(pid)
  const timer = setInterval(() => { try { peak = Math.max(peak, rssBytes(pid)) } catch {} }, 50)
  return { stop () { clearInterval(timer); try { peak = Math.max(peak, rssBytes(pid)) } catch {} return peak } }
}

/** A random, valid 1-entry state vector: unknown client, random clock. */
function randomStateVector () {
  const client = randomBytes(4).readUInt32LE(0) + 1
  return Y.encodeStateVector(new Map([[client, randomBytes(2).readUInt16LE(0)]]))
}

/** `n` edits, one at a time, each timed until its saved ack arrives; returns latencies in ms. */
/** An edit whose ack does not come within 30 s counts 30 s (and fails the test afterwards). */
const MISSED = 30000

async function ackedEdits (writer, n, label) {
  const lat = []
  for (let i = 0; i < n; i++) {
    const before = writer.acks().length
    const t0 = performance.now()
    await writer.edit((d) => d.getText('pulse').insert(0, `${label}${i} `))
    try {
      await waitFor(() => writer.acks().length > before || writer.closeInfo, MISSED, `ack of ${label} edit ${i}`)
    } catch {
      lat.push(MISSED)
      continue
    }
    assert.equal(writer.closeInfo, null, `writer ${label} closed: ${JSON.stringify(writer.closeInfo)}`)
    lat.push(performance.now() - t0)
  }
  return lat
}

/** Fills `room` with about `bytes` of text through a writer; returns the document's size. */
async function bigDocument (writer, bytes) {
  const chunk = 200 * 1024
  for (let i = 0; i * chunk < bytes; i++) {
    await writer.edit((d) => d.getText('bulk').insert(0, randomBytes(chunk / 2).toString('hex')))
  }
  await writer.barrier(30000)
  return Y.encodeStateAsUpdate(writer.doc).length
}

test('a sync-step-1 flood from participants that do not read leaves writers acked and memory bounded', async (t) => {
  const s = scope(t)
  server = await Server.start()
  const pid = server.proc.pid
  const m = await server.createMeeting()
  const roomA = `${m.id}/wg-a`
  const roomB = `${m.id}/wg-b`
  const writerA = await s.raw(server, roomA, { token: m.tokens.rapporteurs['wg-a'], ack: '1' })
  const writerB = await s.raw(server, roomB, { token: m.tokens.rapporteurs['wg-b'], ack: '1' })
  const docBytes = await bigDocument(writerA, 2 * 1048576)
  t.diagnostic(`binary ${process.env.PLENARY_BIN || 'target/release/plenary'}`)
  const calm = [...await ackedEdits(writerA, 20, 'calm-a'), ...await ackedEdits(writerB, 20, 'calm-b')]
  const rssBefore = rssBytes(pid)

  // two participants ask for the whole document over and over and never read
  const flooders = []
  for (let i = 0; i < 2; i++) {
    const f = await s.raw(server, roomA, { token: m.tokens.participant })
    f.ws._socket.pause()
    flooders.push(f)
  }
  const sampler = rssSampler(pid)
  const sends = flooders.map(async (f) => {
    for (let i = 0; i < 200 && f.ws.readyState === 1; i++) {
      f.ws.send(enc.syncStep1(randomStateVector()))
      if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve))
    }
  })
  const [latA, latB] = await Promise.all([ackedEdits(writerA, 40, 'flood-a'), ackedEdits(writerB, 40, 'flood-b'), ...sends])
  const peak = sampler.stop()
  const growth = Math.max(0, peak - rssBefore)
  const during = [...latA, ...latB]
  t.diagnostic(`document ${MiB(docBytes)} MiB; RSS before ${MiB(rssBefore)} MiB, peak ${MiB(peak)} MiB, growth ${MiB(growth)} MiB (${(growth / docBytes).toFixed(1)} documents)`)
  t.diagnostic(`ack latency calm p50 ${quantile(calm, 0.5).toFixed(1)} ms p99 ${quantile(calm, 0.99).toFixed(1)} ms; during flood p50 ${quantile(during, 0.5).toFixed(1)} ms p99 ${quantile(during, 0.99).toFixed(1)} ms (same room p99 ${quantile(latA, 0.99).toFixed(1)}, other room p99 ${quantile(latB, 0.99).toFixed(1)})`)
  t.diagnostic(`flooders closed with ${flooders.map((f) => f.closeInfo?.code ?? 'nothing (still open)').join(', ')}`)
  // Each non-reading flooder may hold one outbound queue (16 MiB by default, of frames shared
  // with the room's cache) and a WebSocket write buffer: a few documents, not one per request.
  assert.ok(growth < 16 * docBytes, `RSS grew by ${MiB(growth)} MiB for a ${MiB(docBytes)} MiB document`)
  assert.equal(during.filter((ms) => ms >= MISSED).length, 0, 'every writer edit was acknowledged')
  for (const f of flooders) f.destroy()
})

test('awareness from one rapporteur token over many connections stays bounded; newcomers join and sync', async (t) => {
  const s = scope(t)
  server ??= await Server.start()
  const pid = server.proc.pid
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const rap = m.tokens.rapporteurs['wg-a']
  const writer = await s.raw(server, room, { token: rap })
  await writer.edit((d) => d.getText('t').insert(0, 'notes'))
  // 18 connections, 8 ids each, 60 KB states: 8.6 MB of awareness asked for
  const pad = 'x'.repeat(60000)
  const flooders = []
  for (let c = 0; c < 18; c++) {
    const f = await s.raw(server, room, { token: rap })
    await f.send(enc.awareness(Array.from({ length: 8 }, (_, i) => ({ clientID: 5000 + c * 8 + i, clock: 1, state: { pad } }))))
    await f.barrier(30000)
    flooders.push(f)
  }
  // a newcomer with the same token: greeted within bounds, syncs, stays open
  const newcomer = await s.raw(server, room, { token: rap }, { timeoutMs: 30000 })
  await waitFor(() => newcomer.doc.getText('t').toString() === 'notes', 15000, 'newcomer synced')
  const greeting = newcomer.messages.filter((msg) => msg.type === 'awareness')
  const states = [...newcomer.awarenessView().values()].filter((e) => e.clientID !== 0 && e.state !== null)
  const bytes = states.reduce((n, e) => n + JSON.stringify(e.state).length, 0)
  t.diagnostic(`newcomer greeted with ${states.length} states, ${MiB(bytes)} MiB in ${greeting.length} awareness messages`)
  assert.ok(states.length <= 32, `${states.length} states from one token`)
  assert.ok(bytes <= 1048576 + 4096, `${bytes} bytes of awareness in the greeting`)
  assert.equal(newcomer.closeInfo, null)

  // 200 query-awareness from a socket that does not read: memory does not follow
  const rssBefore = rssBytes(pid)
  const sampler = rssSampler(pid)
  const q = await s.raw(server, room, { token: m.tokens.participant })
  q.ws._socket.pause()
  for (let i = 0; i < 200; i++) q.ws.send(enc.queryAwareness())
  // the room still answers everybody else promptly
  await writer.barrier(30000)
  await newcomer.barrier(30000)
  // a measurement window for the answers to pile up (the server answers at its own pace)
  await new Promise((resolve) => setTimeout(resolve, 5000))
  await writer.barrier(30000)
  const peak = sampler.stop()
  const growth = Math.max(0, peak - rssBefore)
  t.diagnostic(`query-awareness flood: RSS before ${MiB(rssBefore)} MiB, peak ${MiB(peak)} MiB, growth ${MiB(growth)} MiB`)
  assert.ok(growth < 64 * 1048576, `RSS grew by ${MiB(growth)} MiB`)
  q.destroy()
})
