// Hostile clients: one test per attack class, each against its own server (so that one attack
// that brings the process down does not hide the others). Around every attack the same checks:
//   - a writer in *another* room keeps getting its saved acks (ack=1); its round trip before and
//     during the attack is reported (t.diagnostic), with the server's RSS growth;
//   - afterwards the process is alive and /healthz answers;
//   - the attacked room still converges for stock y-websocket clients;
//   - after a restart (SIGTERM, same data dir) every document loads with its content.
// Normal clients are stock yjs + y-websocket providers; the attacker is a raw `ws` socket.
// Every flood is bounded in count and in time.
//
//   PLENARY_BIN=/path/to/plenary node --test tests/interop/hostile.test.mjs
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import {
  Y, WebSocket, scope, waitFor, withTimeout, enc, encoding, decoding, svCovers, SLOW,
  addParagraph, addConclusion, notesString, conclusionsJSON, MSG_SAVED_ACK
} from './harness.mjs'

const plainNotes = (doc) => notesString(doc).replace(/<[^>]*>/g, '')
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : NaN }
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d

/** A small seeded PRNG (mulberry32): the same inputs on every run. */
function prng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function rssKiB (pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : NaN
  } catch { return NaN }
}

/** A raw socket that is not waited on for anything (the attacker). Resolves once open. */
function rawSocket (server, room, params) {
  return withTimeout(new Promise((resolve, reject) => {
    const ws = new WebSocket(server.wsUrl(room, params))
    ws.binaryType = 'arraybuffer'
    ws.on('error', () => {})
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
    ws.once('open', () => resolve(ws))
    ws.once('close', () => reject(new Error('closed before open')))
  }), 10000, 'attacker socket')
}
const sendP = (ws, bytes) => new Promise((resolve) => {
  if (ws.readyState !== WebSocket.OPEN) return resolve(false)
  ws.send(bytes, (err) => resolve(!err))
})
const closedP = (ws) => ws.readyState === WebSocket.CLOSED
  ? Promise.resolve()
  : new Promise((resolve) => ws.once('close', resolve))

/**
 * Keeps `conns` attacker sockets (from `open()`) sending `frame(n)` until the attack's deadline
 * or `cap` messages, reopening sockets the server closed (at most `maxReopen` times), never
 * buffering more than 256 KiB per socket on this side.
 */
async function flood (ctx, open, frame, { conns = 4, cap = 200000, maxReopen = 40 } = {}) {
  const socks = []
  for (let c = 0; c < conns; c++) socks.push(await open())
  let sent = 0
  let reopened = 0
  while (sent < cap && !ctx.over) {
    let progressed = false
    for (let k = 0; k < socks.length && sent < cap; k++) {
      let ws = socks[k]
      if (ws.readyState !== WebSocket.OPEN) {
        if (reopened >= maxReopen) continue
        reopened++
        try { ws = socks[k] = await open() } catch { continue }
      }
      if (ws.bufferedAmount > 256 * 1024) continue
      ws.send(frame(sent), () => {})
      sent++
      progressed = true
    }
    await new Promise((resolve) => progressed && sent % 64 >= socks.length ? resolve() : setTimeout(resolve, progressed ? 0 : 5))
  }
  for (const ws of socks) ws.terminate()
  return { sent, reopened }
}

/** An attacker socket that never reads what the server sends. */
async function deaf (ctx, token) {
  const ws = await rawSocket(ctx.server, ctx.room, { token })
  ws._socket.pause()
  return ws
}

// ------------------------------------------------------------------ the frame around each attack

/**
 * Starts a server with a meeting (wg-a attacked, wg-b the bystander writer), runs `attack(ctx)`
 * while probing the bystander's saved-ack round trip, then runs the after-checks.
 * `ctx`: {server, m, room, token: {rapporteur, participant}, deadline, rnd}
 */
async function underAttack (t, name, attack, { attackMs = 8000 } = {}) {
  const s = scope(t)
  const server = await s.server()
  const m = await server.createMeeting({ groups: [{ id: 'wg-a', title: 'Attacked' }, { id: 'wg-b', title: 'Bystander' }] })
  const room = `${m.id}/wg-a`
  const other = `${m.id}/wg-b`
  const rap = m.tokens.rapporteurs['wg-a']

  // the attacked room holds content before the attack
  const a1 = await s.provider(server, room, rap)
  const a2 = await s.provider(server, room, m.tokens.participant)
  addParagraph(a1.doc, 'before the attack')
  addConclusion(a1.doc, { id: 'c-before', text: 'Conclusion before the attack', status: 'final' })
  await waitFor(() => plainNotes(a2.doc).includes('before the attack'), 10000, 'pre-attack edit at the follower')

  // the bystander: a writer in another room with saved acks
  const b = await s.provider(server, other, m.tokens.rapporteurs['wg-b'], { params: { ack: '1' } })
  const ackWaiters = new Set()
  b.provider.messageHandlers[MSG_SAVED_ACK] = (_e, decoder) => {
    const sv = Y.decodeStateVector(decoding.readVarUint8Array(decoder))
    for (const w of ackWaiters) if (svCovers(sv, w.own)) { ackWaiters.delete(w); w.resolve() }
  }
  let probeN = 0
  const probe = async () => {
    const t0 = performance.now()
    addParagraph(b.doc, `bystander ${++probeN}`)
    const own = Y.decodeStateVector(Y.encodeStateVector(b.doc))
    let w
    const acked = new Promise((resolve) => { w = { own, resolve }; ackWaiters.add(w) })
    const died = server.exited.then((info) => { throw new Error(`the server exited (${JSON.stringify(info)})`) })
    try {
      await withTimeout(Promise.race([acked, died]), 15000, `saved ack of bystander edit ${probeN}`)
    } finally { ackWaiters.delete(w) }
    return performance.now() - t0
  }
  const before = []
  for (let i = 0; i < 9; i++) before.push(await probe())

  const pid = server.proc.pid
  const rss0 = rssKiB(pid)
  let rssPeak = rss0
  const during = []
  let probeError = null
  let attackDone = false
  const ctx = {
    server, m, room, rnd: prng(0x5eed ^ name.length),
    token: { rapporteur: rap, participant: m.tokens.participant, moderator: m.tokens.moderator },
    deadline: Date.now() + attackMs * SLOW,
    get over () { return Date.now() > this.deadline }
  }
  const probing = (async () => {
    while (!attackDone || during.length < 3) {
      rssPeak = Math.max(rssPeak, rssKiB(pid) || 0)
      try {
        during.push(await probe())
      } catch (e) { probeError = e; return }
      await new Promise((resolve) => setTimeout(resolve, 40))
    }
  })()
  let attackError = null
  try {
    await attack(ctx)
  } catch (e) { attackError = e }
  attackDone = true
  await probing
  rssPeak = Math.max(rssPeak, rssKiB(pid) || 0)
  const ratio = median(during) / median(before)
  t.diagnostic(`${name}: ack round trip median ${round(median(before))} ms before, ${round(median(during))} ms during (ratio ${round(ratio)}, ${during.length} probes); RSS ${Math.round(rss0 / 1024)} MiB before, peak +${Math.round((rssPeak - rss0) / 1024)} MiB; alive after: ${server.running}`)
  // 1. alive and healthy
  assert.ok(server.running, `the server died during "${name}": ${JSON.stringify(server.exitInfo)}\n${server.logs.slice(-1500)}`)
  if (attackError) throw attackError
  const health = await server.request('GET', '/healthz')
  assert.equal(health.status, 200)
  // 2. the bystander's acks kept arriving
  assert.equal(probeError, null, `bystander acks stopped during "${name}": ${probeError?.message}`)
  // 3. the attacked room still converges for normal clients
  addParagraph(a1.doc, 'after the attack')
  addConclusion(a1.doc, { id: 'c-after', text: 'Conclusion after the attack', status: 'final' })
  await waitFor(() => a1.provider.wsconnected && a2.provider.wsconnected, 10000, 'normal clients connected')
  await waitFor(() => plainNotes(a2.doc).includes('after the attack'), 15000, 'the follower to see the post-attack edit')
  const late = await s.provider(server, room, m.tokens.participant)
  await waitFor(() => notesString(late.doc) === notesString(a1.doc) &&
    JSON.stringify(conclusionsJSON(late.doc)) === JSON.stringify(conclusionsJSON(a1.doc)), 15000, 'a late joiner to converge with the writer')
  await waitFor(async () => {
    const r = await server.request('GET', `/api/meetings/${m.id}/summary.json`, { token: m.tokens.participant })
    return r.json?.groups?.[0]?.conclusions?.some((c) => c.text === 'Conclusion after the attack')
  }, 15000, 'the post-attack conclusion in the plenary summary')
  const expectNotes = notesString(a1.doc)
  const expectB = plainNotes(b.doc)
  // 4. a restart loads every document with its content
  for (const p of [a1, a2, b, late]) p.destroy()
  const stopped = await server.restart('SIGTERM')
  assert.deepEqual(stopped, { code: 0, signal: null }, 'SIGTERM exit')
  const ra = await s.provider(server, room, m.tokens.participant)
  const rb = await s.provider(server, other, m.tokens.participant)
  assert.equal(notesString(ra.doc), expectNotes, 'attacked room after restart')
  for (const text of ['before the attack', 'after the attack']) assert.ok(plainNotes(ra.doc).includes(text))
  assert.equal(plainNotes(rb.doc), expectB, 'bystander room after restart')
  const sum = await server.request('GET', `/api/meetings/${m.id}/summary.json`, { token: m.tokens.participant })
  const texts = sum.json.groups.flatMap((g) => g.conclusions.map((c) => c.text))
  for (const text of ['Conclusion before the attack', 'Conclusion after the attack']) {
    assert.ok(texts.includes(text), `plenary after restart lacks ${text}: ${sum.text}`)
  }
  return { before, during, ratio, rssGrowthKiB: rssPeak - rss0 }
}

// ------------------------------------------------------------------ crafted updates (Yjs v1)

const bytes = (fn) => { const e = encoding.createEncoder(); fn(e); return encoding.toUint8Array(e) }

/**
 * A v1 update with one item in root array `conclusions` whose ContentAny holds one value nested
 * `depth` deep: arrays (lib0 any tag 117), maps (118) or both alternating.
 */
function nestedAnyUpdate (depth, kind, clientID = 777001) {
  return bytes((e) => {
    encoding.writeVarUint(e, 1) // one client
    encoding.writeVarUint(e, 1) // one struct
    encoding.writeVarUint(e, clientID)
    encoding.writeVarUint(e, 0) // clock
    encoding.writeUint8(e, 8) // info: ContentAny, no origins, no parentSub
    encoding.writeVarUint(e, 1) // parent is a root type, named:
    encoding.writeVarString(e, 'conclusions')
    encoding.writeVarUint(e, 1) // one value
    for (let i = 0; i < depth; i++) {
      const map = kind === 'maps' || (kind === 'mixed' && i % 2 === 1)
      if (map) {
        encoding.writeUint8(e, 118); encoding.writeVarUint(e, 1); encoding.writeVarString(e, 'k')
      } else {
        encoding.writeUint8(e, 117); encoding.writeVarUint(e, 1)
      }
    }
    encoding.writeUint8(e, 126) // null at the bottom
    encoding.writeVarUint(e, 0) // empty delete set
  })
}

async function sendNestedAny (ctx, token) {
  const victims = []
  for (const kind of ['arrays', 'maps', 'mixed']) {
    const ws = await rawSocket(ctx.server, ctx.room, { token })
    victims.push(ws)
    await sendP(ws, enc.update(nestedAnyUpdate(7000, kind, 777001 + victims.length)))
    // a round trip (or a close) before the next kind
    await withTimeout(new Promise((resolve) => {
      ws.once('message', resolve); ws.once('close', resolve)
      sendP(ws, enc.syncStep1(new Uint8Array([0])))
    }), 10000, `reply or close after nested ${kind}`).catch(() => {})
  }
  for (const ws of victims) ws.terminate()
}

test('nested Any 7,000 deep (arrays, maps) from a participant', async (t) => {
  await underAttack(t, 'nested Any (participant)', (ctx) => sendNestedAny(ctx, ctx.token.participant), { attackMs: 2000 })
})

test('nested Any 7,000 deep (arrays, maps) from a rapporteur', async (t) => {
  await underAttack(t, 'nested Any (rapporteur)', (ctx) => sendNestedAny(ctx, ctx.token.rapporteur), { attackMs: 2000 })
})

test('truncated and bit-flipped updates from a rapporteur (seeded, 300 inputs)', async (t) => {
  // a realistic update to mutate: notes with formatting and a conclusion
  const d = new Y.Doc()
  d.clientID = 4242
  addParagraph(d, 'A paragraph to be mangled')
  d.getXmlFragment('notes').get(0).get(0).format(0, 5, { bold: true })
  addConclusion(d, { id: 'mangled', text: 'A conclusion to be mangled' })
  const base = Y.encodeStateAsUpdate(d)
  let closed = 0
  let answered = 0
  await underAttack(t, 'mangled updates', async (ctx) => {
    let ws = null
    for (let i = 0; i < 300 && !ctx.over; i++) {
      let input
      if (i % 2 === 0) {
        input = base.slice(0, Math.floor(ctx.rnd() * base.length))
      } else {
        input = Uint8Array.from(base)
        const flips = 1 + Math.floor(ctx.rnd() * 3)
        for (let f = 0; f < flips; f++) input[Math.floor(ctx.rnd() * input.length)] ^= 1 << Math.floor(ctx.rnd() * 8)
      }
      if (!ws || ws.readyState !== WebSocket.OPEN) ws = await rawSocket(ctx.server, ctx.room, { token: ctx.token.rapporteur })
      const sock = ws
      await sendP(sock, enc.update(input))
      // wait for the connection's verdict: a step-2 reply to a barrier, or a close
      const verdict = await withTimeout(new Promise((resolve) => {
        const onMsg = (data) => { const b = new Uint8Array(data); if (b[0] === 0 && b[1] === 1) { sock.off('message', onMsg); resolve('open') } }
        sock.on('message', onMsg)
        sock.once('close', () => resolve('closed'))
        sendP(sock, enc.syncStep1(new Uint8Array([0])))
      }), 10000, `verdict on mangled input ${i}`)
      if (verdict === 'closed') closed++
      else answered++
    }
    ws?.terminate()
  }, { attackMs: 20000 })
  t.diagnostic(`mangled updates: ${closed} closed the connection, ${answered} were answered`)
})

test('huge claimed counts (a 9-byte update claiming 2^28 clients, and friends)', async (t) => {
  const big = [0x80, 0x80, 0x80, 0x80, 0x01] // var-uint 2^28
  const inputs = {
    '2^28 clients': Uint8Array.from([...big, 0x01, 0x01, 0x00, 0x00]),
    '2^28 structs of one client': Uint8Array.from([0x01, ...big, 0x01, 0x00]),
    '2^28 delete-set clients': Uint8Array.from([0x00, ...big, 0x00, 0x00]),
    '2^28 ranges in a delete set': Uint8Array.from([0x00, 0x01, 0x05, ...big]),
    '2^28 values in a ContentAny': bytes((e) => {
      encoding.writeVarUint(e, 1); encoding.writeVarUint(e, 1); encoding.writeVarUint(e, 9); encoding.writeVarUint(e, 0)
      encoding.writeUint8(e, 8); encoding.writeVarUint(e, 1); encoding.writeVarString(e, 'conclusions')
      encoding.writeVarUint(e, 2 ** 28)
    }),
    'a 2^28-byte string': bytes((e) => {
      encoding.writeVarUint(e, 1); encoding.writeVarUint(e, 1); encoding.writeVarUint(e, 9); encoding.writeVarUint(e, 0)
      encoding.writeUint8(e, 4); encoding.writeVarUint(e, 1); encoding.writeVarString(e, 'notes')
      encoding.writeVarUint(e, 2 ** 28)
    }),
    'a state vector of 2^28 clients': null // sent as sync step 1
  }
  assert.equal(inputs['2^28 clients'].length, 9)
  await underAttack(t, 'huge counts', async (ctx) => {
    for (const token of [ctx.token.rapporteur, ctx.token.participant]) {
      for (const [what, input] of Object.entries(inputs)) {
        const ws = await rawSocket(ctx.server, ctx.room, { token })
        const frame = input ? enc.update(input) : bytes((e) => { encoding.writeVarUint(e, 0); encoding.writeVarUint(e, 0); encoding.writeVarUint8Array(e, Uint8Array.from([...big, 0x01])) })
        await sendP(ws, frame)
        await withTimeout(closedP(ws), 10000, `close after "${what}"`).catch(() => {})
        ws.terminate()
      }
    }
  }, { attackMs: 3000 })
})

/** Makes the attacked room's document big, so that every sync step 2 costs something. */
async function fatten (ctx, kib) {
  const ws = await rawSocket(ctx.server, ctx.room, { token: ctx.token.rapporteur })
  const d = new Y.Doc()
  const chunk = 'x'.repeat(1024)
  for (let i = 0; i < kib; i += 64) {
    const before = Y.encodeStateVector(d)
    d.getText('filler').insert(d.getText('filler').length, chunk.repeat(64))
    await sendP(ws, enc.update(Y.encodeStateAsUpdate(d, before)))
  }
  ws.close()
}

test('sync-step-1 floods with random state vectors from a participant that does not read', async (t) => {
  let r
  await underAttack(t, 'sync-step-1 flood', async (ctx) => {
    await fatten(ctx, 256)
    r = await flood(ctx, () => deaf(ctx, ctx.token.participant), () => {
      const sv = bytes((e) => {
        const n = 1 + Math.floor(ctx.rnd() * 8)
        encoding.writeVarUint(e, n)
        for (let k = 0; k < n; k++) { encoding.writeVarUint(e, Math.floor(ctx.rnd() * 2 ** 31)); encoding.writeVarUint(e, Math.floor(ctx.rnd() * 2 ** 20)) }
      })
      return bytes((e) => { encoding.writeVarUint(e, 0); encoding.writeVarUint(e, 0); encoding.writeVarUint8Array(e, sv) })
    }, { cap: 50000 })
  }, { attackMs: 6000 })
  t.diagnostic(`sync-step-1 flood: ${r.sent} messages sent, ${r.reopened} sockets reopened`)
})

test('no-op update floods from a participant', async (t) => {
  let r
  await underAttack(t, 'no-op update flood', async (ctx) => {
    const empty = enc.update(Y.encodeStateAsUpdate(new Y.Doc()))
    r = await flood(ctx, () => rawSocket(ctx.server, ctx.room, { token: ctx.token.participant }), () => empty, { cap: 400000 })
  }, { attackMs: 6000 })
  t.diagnostic(`no-op update flood: ${r.sent} messages sent, ${r.reopened} sockets reopened`)
})

test('awareness floods: many client ids, large states, many connections of one token', async (t) => {
  let r
  await underAttack(t, 'awareness flood', async (ctx) => {
    // 40 connections of one rapporteur token that never read what is relayed back
    let conn = 0
    r = await flood(ctx, async () => { const ws = await deaf(ctx, ctx.token.rapporteur); ws.k = conn++; return ws }, (n) => {
      const k = n % 40
      const clock = 1 + Math.floor(n / 40)
      let entries
      if (clock % 3 === 0) {
        // many client ids in one message
        entries = Array.from({ length: 500 }, (_, j) => ({ clientID: 1000000 + k * 10000 + ((clock * 500 + j) % 10000), clock, state: { user: { name: `bot ${j}` } } }))
      } else if (clock % 3 === 1) {
        // one large state
        entries = [{ clientID: 2000000 + k, clock, state: { user: { name: 'big' }, pad: 'p'.repeat(100000) } }]
      } else {
        entries = [{ clientID: 3000000 + k, clock, state: { cursor: { anchor: clock } } }]
      }
      return enc.awareness(entries)
    }, { conns: 40, cap: 40000 })
  }, { attackMs: 6000 })
  t.diagnostic(`awareness flood: ${r.sent} messages sent, ${r.reopened} sockets reopened`)
})

test('query-awareness floods from participants that do not read', async (t) => {
  let r
  await underAttack(t, 'query-awareness flood', async (ctx) => {
    // make the room's awareness big: writers with large states that stay connected
    const writers = []
    for (let k = 0; k < 8; k++) {
      const ws = await rawSocket(ctx.server, ctx.room, { token: ctx.token.rapporteur })
      await sendP(ws, enc.awareness([{ clientID: 5000000 + k, clock: 1, state: { user: { name: `w${k}` }, pad: 'q'.repeat(50000) } }]))
      writers.push(ws)
    }
    const q = enc.queryAwareness()
    r = await flood(ctx, () => deaf(ctx, ctx.token.participant), () => q, { cap: 200000 })
    for (const ws of writers) ws.terminate()
  }, { attackMs: 6000 })
  t.diagnostic(`query-awareness flood: ${r.sent} messages sent, ${r.reopened} sockets reopened`)
})

test('slowloris: 300 sockets sending request headers one byte at a time', async (t) => {
  const N = 300
  const LIMIT_MS = 20000 // the server must have cut them by then (its header timeout is 10 s)
  let cutByServer = 0
  let httpDuring = null
  await underAttack(t, 'slowloris', async (ctx) => {
    const head = `GET /healthz HTTP/1.1\r\nHost: ${ctx.server.host}\r\nX-Slow: ${'s'.repeat(4000)}\r\n\r\n`
    const socks = []
    const started = Date.now()
    await Promise.all(Array.from({ length: N }, () => new Promise((resolve) => {
      const sock = net.connect(ctx.server.port, ctx.server.host)
      sock.on('error', () => {})
      sock.once('connect', resolve)
      sock.once('close', resolve)
      const st = { sock, pos: 0, cut: false }
      sock.on('close', () => { if (st.pos < head.length) st.cut = true })
      socks.push(st)
    })))
    // trickle: one byte per socket every 100 ms, until every socket was cut or the limit passed
    while (Date.now() - started < LIMIT_MS * SLOW && socks.some((s) => !s.cut)) {
      for (const st of socks) {
        if (!st.cut && !st.sock.destroyed && st.pos < head.length) st.sock.write(head[st.pos++])
      }
      if (httpDuring === null && Date.now() - started > 2000) {
        // a normal request while the slow ones hold their sockets
        httpDuring = (await ctx.server.request('GET', '/healthz').catch((e) => ({ status: e.message }))).status
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    cutByServer = socks.filter((s) => s.cut).length
    for (const st of socks) st.sock.destroy()
  }, { attackMs: LIMIT_MS + 2000 })
  t.diagnostic(`slowloris: ${cutByServer} of ${N} slow sockets cut by the server within ${LIMIT_MS} ms; /healthz during: ${httpDuring}`)
  assert.equal(httpDuring, 200, '/healthz while slow clients hold sockets')
  assert.equal(cutByServer, N, 'every slow socket is cut by the header-read timeout')
})
