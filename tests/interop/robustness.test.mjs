// Bad input: undecodable frames close with 1002, messages over the size limit with 1009 (and the
// client sees that code, not 1006); nothing is applied and every other connection carries on.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  sharedServer, Y, scope, waitFor, withTimeout, enc, addParagraph, notesString, MAX_MESSAGE_BYTES, encoding
} from './harness.mjs'

const server = await sharedServer()

const plainNotes = (doc) => notesString(doc).replace(/<[^>]*>/g, '')

const awarenessInner = (fn) => {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 1)
  const inner = encoding.createEncoder()
  fn(inner)
  encoding.writeVarUint8Array(e, encoding.toUint8Array(inner))
  return encoding.toUint8Array(e)
}

const GARBAGE = {
  'empty frame': new Uint8Array(0),
  'truncated var-uint message type': Uint8Array.from([0x80]),
  'var-uint longer than 64 bits': Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
  'sync with no sub-type': Uint8Array.from([0]),
  'unknown sync sub-type': Uint8Array.from([0, 7, 0]),
  'sync update length past the end': Uint8Array.from([0, 2, 0x05, 0x01]),
  'sync step 1 truncated state vector': Uint8Array.from([0, 0, 0x03, 0x02, 0x01, 0x05]),
  'sync update that is not a Yjs update': Uint8Array.from([0, 2, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
  'awareness announcing 2 entries, holding none': awarenessInner((i) => encoding.writeVarUint(i, 2)),
  'auth message with truncated reason': Uint8Array.from([2, 0, 0x10, 0x61])
}

async function roomWithWatchers (s) {
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const w = await s.provider(server, room, m.tokens.rapporteurs['wg-a'])
  const o = await s.provider(server, room, m.tokens.participant)
  addParagraph(w.doc, 'before')
  await waitFor(() => plainNotes(o.doc).includes('before'), 10000, 'initial edit')
  return { m, room, w, o }
}

test('undecodable frames close that connection with 1002; others carry on', async (t) => {
  const s = scope(t)
  const { m, room, w, o } = await roomWithWatchers(s)
  let i = 0
  for (const [name, bytes] of Object.entries(GARBAGE)) {
    for (const token of [m.tokens.rapporteurs['wg-a'], m.tokens.participant]) {
      await t.test(`${name} (${token === m.tokens.participant ? 'read-only' : 'writer'})`, async () => {
        const raw = await s.raw(server, room, { token })
        await raw.send(bytes)
        const info = await withTimeout(raw.closed, 10000, `close after "${name}"`)
        assert.equal(info.code, 1002, `"${name}": expected close 1002, got ${info.code} ${info.reason}`)
        // the room is still alive for everybody else
        addParagraph(w.doc, `after-${++i}`)
        await waitFor(() => plainNotes(o.doc).includes(`after-${i}`), 10000, `edit after "${name}"`)
      })
    }
  }
  assert.ok(w.provider.wsconnected && o.provider.wsconnected)
  assert.deepEqual(w.closes, [])
  assert.deepEqual(o.closes, [])
})

test('a client that keeps sending after its garbage frame still sees 1002 (not a reset)', async (t) => {
  const s = scope(t)
  const { room, m, w, o } = await roomWithWatchers(s)
  const raw = await s.raw(server, room, { token: m.tokens.rapporteurs['wg-a'] })
  const filler = enc.awareness([{ clientID: 99, clock: 1, state: { pad: 'p'.repeat(16000) } }])
  raw.ws.send(Uint8Array.from([0, 2, 0x7f]))
  for (let i = 0; i < 300; i++) raw.ws.send(filler, () => {}) // ~4.8 MB more, sent without waiting
  const info = await withTimeout(raw.closed, 15000, 'close after garbage + more frames')
  assert.equal(info.code, 1002, `expected 1002, got ${info.code}; errors: ${raw.errors.map((e) => e.message)}`)
  addParagraph(w.doc, 'after-garbage-flood')
  await waitFor(() => plainNotes(o.doc).includes('after-garbage-flood'), 10000, 'the room to carry on')
})

test('awareness states that are not JSON objects are never relayed (closed with 1002 or ignored)', async (t) => {
  const s = scope(t)
  const { room, m } = await roomWithWatchers(s)
  const obs = await s.provider(server, room, m.tokens.moderator)
  const bad = { 'not JSON': '{"user": ', 'a JSON string': '"hello"', 'a JSON number': '42', 'a JSON array': '[1,2]' }
  let id = 424240
  for (const [name, json] of Object.entries(bad)) {
    const raw = await s.raw(server, room, { token: m.tokens.rapporteurs['wg-a'] })
    const cid = ++id
    await raw.send(awarenessInner((i) => {
      encoding.writeVarUint(i, 1); encoding.writeVarUint(i, cid); encoding.writeVarUint(i, 1); encoding.writeVarString(i, json)
    }))
    // barrier: a later valid state of this connection, unless it was closed
    await raw.send(enc.awareness([{ clientID: cid + 1000, clock: 1, state: { ok: name } }])).catch(() => {})
    await waitFor(() => raw.closeInfo || obs.awareness.getStates().get(cid + 1000)?.ok === name, 10000, `close or barrier after ${name}`)
    if (raw.closeInfo) assert.equal(raw.closeInfo.code, 1002, `${name}: closed with ${raw.closeInfo.code}`)
    assert.ok(!obs.awareness.getStates().has(cid), `${name}: relayed`)
  }
})

test('a valid update followed by garbage in the same connection: the update stays, the connection closes 1002', async (t) => {
  const s = scope(t)
  const { room, m, o } = await roomWithWatchers(s)
  const raw = await s.raw(server, room, { token: m.tokens.rapporteurs['wg-a'] })
  await raw.edit((d) => addParagraph(d, 'valid-before-garbage'))
  await raw.send(Uint8Array.from([0, 2, 0x7f]))
  const info = await withTimeout(raw.closed, 10000, 'close')
  assert.equal(info.code, 1002)
  await waitFor(() => plainNotes(o.doc).includes('valid-before-garbage'), 10000, 'the valid update')
})

/** A sync-update message whose Yjs update inserts `text` into Y.Text `big`, of exactly `size` bytes if given. */
function bigUpdateMessage (size, marker) {
  const build = (len) => {
    const d = new Y.Doc()
    d.getText('big').insert(0, marker + 'x'.repeat(Math.max(0, len - marker.length)))
    return enc.update(Y.encodeStateAsUpdate(d))
  }
  let len = size - 64
  for (let k = 0; k < 20; k++) {
    const msg = build(len)
    if (msg.length === size) return msg
    len += size - msg.length
  }
  throw new Error(`could not build a message of exactly ${size} bytes`)
}

test('a message over 1,048,576 bytes closes with 1009 (seen by the client), nothing applied, others carry on', async (t) => {
  const s = scope(t)
  const { room, m, w, o } = await roomWithWatchers(s)
  const msg = bigUpdateMessage(MAX_MESSAGE_BYTES + 1, 'OVERSIZED-1')
  assert.equal(msg.length, MAX_MESSAGE_BYTES + 1)
  const raw = await s.raw(server, room, { token: m.tokens.rapporteurs['wg-a'] })
  raw.send(msg).catch(() => {})
  const info = await withTimeout(raw.closed, 15000, 'close after the oversized message')
  assert.equal(info.code, 1009, `expected close 1009, got ${info.code} (${info.reason}); errors: ${raw.errors.map((e) => e.message)}`)

  // a much bigger one, and one split over several frames (the limit is per message)
  const raw2 = await s.raw(server, room, { token: m.tokens.rapporteurs['wg-a'] })
  raw2.send(bigUpdateMessage(4 * MAX_MESSAGE_BYTES, 'OVERSIZED-4')).catch(() => {})
  const info2 = await withTimeout(raw2.closed, 15000, 'close after the 4 MiB message')
  assert.equal(info2.code, 1009, `4 MiB: expected close 1009, got ${info2.code}`)

  const raw3 = await s.raw(server, room, { token: m.tokens.rapporteurs['wg-a'] })
  const frag = bigUpdateMessage(MAX_MESSAGE_BYTES + 300000, 'OVERSIZED-F')
  const third = Math.floor(frag.length / 3)
  raw3.ws.send(frag.subarray(0, third), { fin: false })
  raw3.ws.send(frag.subarray(third, 2 * third), { fin: false })
  raw3.ws.send(frag.subarray(2 * third), { fin: true }, () => {})
  const info3 = await withTimeout(raw3.closed, 15000, 'close after the fragmented oversized message')
  assert.equal(info3.code, 1009, `fragmented: expected close 1009, got ${info3.code}`)

  addParagraph(w.doc, 'after-oversized')
  await waitFor(() => plainNotes(o.doc).includes('after-oversized'), 10000, 'edit after the oversized messages')
  assert.equal(o.doc.getText('big').length, 0, 'oversized update was relayed')
  const late = await s.provider(server, room, m.tokens.moderator)
  assert.equal(late.doc.getText('big').length, 0, 'oversized update was applied')
  assert.ok(w.provider.wsconnected && o.provider.wsconnected)
})

test('a message of exactly 1,048,576 bytes is accepted', async (t) => {
  const s = scope(t)
  const { room, m, o } = await roomWithWatchers(s)
  const msg = bigUpdateMessage(MAX_MESSAGE_BYTES, 'EXACT')
  assert.equal(msg.length, MAX_MESSAGE_BYTES)
  const raw = await s.raw(server, room, { token: m.tokens.rapporteurs['wg-a'] })
  await raw.send(msg)
  await waitFor(() => o.doc.getText('big').length > 1000000, 20000, 'the 1 MiB update at another client')
  assert.ok(o.doc.getText('big').toString().startsWith('EXACT'))
  await raw.barrier(20000)
  assert.equal(raw.closeInfo, null)
})

test('a slow reader (stops reading) is disconnected; the others keep their latency', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const w = await s.provider(server, room, m.tokens.rapporteurs['wg-a'])
  const o = await s.provider(server, room, m.tokens.moderator)
  const slow = await s.raw(server, room, { token: m.tokens.participant })
  const followers = () => o.awareness.getStates().get(0)?.server?.followers
  await waitFor(() => followers() === 1, 10000, 'the slow reader counted as a follower')
  slow.ws._socket.pause() // stop reading: the kernel buffers fill, then the server's queue

  // small messages: the server's outbound queue counts messages (default 1024), and the kernel's
  // socket buffers hold a few MB, so many small updates fill both with little memory
  const chunk = 'y'.repeat(4 * 1024)
  const flood = w.doc.getText('flood')
  const latencies = []
  let sent = 0
  const maxUpdates = 6000 // ~24 MiB at most, then give up
  const deadline = Date.now() + 60000
  for (; sent < maxUpdates && followers() !== 0 && Date.now() < deadline; sent++) {
    flood.insert(flood.length, chunk)
    if (sent % 10 === 0) {
      const t0 = Date.now()
      w.doc.getMap('latency').set('k', sent)
      await waitFor(() => o.doc.getMap('latency').get('k') === sent, 10000, `marker ${sent} at the fast reader`)
      latencies.push(Date.now() - t0)
    }
  }
  assert.ok(followers() === 0 || await waitFor(() => followers() === 0, 10000, 'the slow reader to be dropped').catch(() => false),
    `the slow reader was not disconnected after ${sent} updates of 4 KiB`)
  latencies.sort((a, b) => a - b)
  const p50 = latencies[Math.floor(latencies.length / 2)]
  const max = latencies[latencies.length - 1]
  t.diagnostic(`slow reader dropped after ${sent} updates; fast reader latency p50 ${p50} ms, max ${max} ms`)
  assert.ok(max < 2000, `the fast reader waited up to ${max} ms while a slow reader stalled (p50 ${p50} ms)`)

  // the slow reader sees its connection closed (1013, or a drop once its buffers are full)
  slow.ws._socket.resume()
  const info = await withTimeout(slow.closed, 30000, 'the slow reader\'s socket to close')
  assert.ok([1013, 1006].includes(info.code), `slow reader closed with ${info.code}`)
  t.diagnostic(`slow reader close code ${info.code}`)
  // and the room carries on
  w.doc.getMap('latency').set('k', 'after')
  await waitFor(() => o.doc.getMap('latency').get('k') === 'after', 10000, 'an edit after the slow reader left')
})
