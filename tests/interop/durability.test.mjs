// Durability: SIGTERM (graceful: close 1001, exit 0, flush) and kill -9 (every update another client
// had received is there after a restart); restart serves every meeting, token and document.
// Each test runs its own server so that it can stop and restart it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  Y, scope, waitFor, withTimeout, svCovers,
  addConclusion, findConclusion, addParagraph, notesString, conclusionsJSON
} from './harness.mjs'

const plainNotes = (doc) => notesString(doc).replace(/<[^>]*>/g, '')

test('SIGTERM: sockets closed with 1001, exit 0, and after a restart every meeting, token and document is served', async (t) => {
  const s = scope(t)
  const server = await s.server()
  const m = await server.createMeeting({ title: 'Durable – ünïcødé', groups: [{ id: 'wg-a', title: 'A' }, { id: 'wg-b', title: 'B' }] })
  const room = `${m.id}/wg-a`
  const w = await s.provider(server, room, m.tokens.rapporteurs['wg-a'])
  const o = await s.provider(server, room, m.tokens.participant)
  addParagraph(w.doc, 'seen by another client')
  const c = addConclusion(w.doc, { id: 'keep', text: 'kept across restarts' })
  c.get('text').insert(0, '» ')
  await waitFor(() => findConclusion(o.doc, 'keep')?.get('text').toString() === '» kept across restarts', 10000, 'the observer to see the edits')
  // an edit nobody else has seen: a raw writer whose update the server has processed (round trip)
  const raw = await s.raw(server, `${m.id}/wg-b`, { token: m.tokens.moderator })
  await raw.edit((d) => addParagraph(d, 'flushed on shutdown'))
  await raw.barrier()
  const expectedA = { notes: notesString(w.doc), conclusions: conclusionsJSON(w.doc) }

  const exit = await server.stop('SIGTERM')
  assert.deepEqual(exit, { code: 0, signal: null }, `server did not exit 0 on SIGTERM: ${JSON.stringify(exit)}\n${server.logs.slice(-2000)}`)
  const info = await withTimeout(raw.closed, 5000, 'raw socket close')
  assert.equal(info.code, 1001, `expected close 1001 on shutdown, got ${info.code}`)
  await waitFor(() => w.closes.length > 0 && o.closes.length > 0, 5000, 'providers to see the close')
  assert.equal(w.closes[0], 1001)
  assert.equal(o.closes[0], 1001)
  // stop the old clients before the restart so that they cannot re-upload what they have
  w.destroy(); o.destroy(); raw.destroy()

  await server.start()
  for (const token of [m.tokens.moderator, m.tokens.participant, m.tokens.rapporteurs['wg-a'], m.tokens.rapporteurs['wg-b']]) {
    const res = await server.request('GET', `/api/meetings/${m.id}`, { token })
    assert.equal(res.status, 200, `old token refused after restart: ${res.status} ${res.text}`)
    assert.equal(res.json.title, 'Durable – ünïcødé')
    assert.deepEqual(res.json.groups.map((g) => [g.id, g.title]), [['wg-a', 'A'], ['wg-b', 'B']])
  }
  const dup = await server.request('POST', '/api/meetings', { token: server.adminToken, body: { id: m.id, title: 'again', groups: [{ id: 'g1', title: 'G1' }] } })
  assert.equal(dup.status, 409, 'meeting id not kept across restart')
  const late = await s.provider(server, room, m.tokens.participant)
  assert.equal(notesString(late.doc), expectedA.notes)
  assert.deepEqual(conclusionsJSON(late.doc), expectedA.conclusions)
  const lateB = await s.provider(server, `${m.id}/wg-b`, m.tokens.participant)
  assert.ok(plainNotes(lateB.doc).includes('flushed on shutdown'), 'an update processed before SIGTERM was lost')
  // and the restarted server accepts writes again
  const w2 = await s.provider(server, room, m.tokens.rapporteurs['wg-a'])
  addParagraph(w2.doc, 'after restart')
  await waitFor(() => plainNotes(late.doc).includes('after restart'), 10000, 'a write after the restart')
})

test('SIGINT: sockets closed with 1001, exit 0', async (t) => {
  const s = scope(t)
  const server = await s.server()
  const m = await server.createMeeting()
  const raw = await s.raw(server, `${m.id}/wg-a`, { token: m.tokens.rapporteurs['wg-a'] })
  await raw.edit((d) => addParagraph(d, 'before SIGINT'))
  await raw.barrier()
  const exit = await server.stop('SIGINT', 15000)
  assert.deepEqual(exit, { code: 0, signal: null })
  const info = await withTimeout(raw.closed, 5000, 'raw socket close')
  assert.equal(info.code, 1001)
  raw.destroy()
  await server.start()
  const late = await s.provider(server, `${m.id}/wg-a`, m.tokens.participant)
  assert.ok(plainNotes(late.doc).includes('before SIGINT'))
})

test('SIGTERM after every client has left: exit 0 within the deadline, documents kept', async (t) => {
  const s = scope(t)
  const server = await s.server()
  const m = await server.createMeeting()
  // a client that only looked at a room, then left
  const visitor = await s.provider(server, `${m.id}/wg-b`, m.tokens.participant)
  visitor.destroy()
  const exit0 = await server.stop('SIGTERM', 15000)
  assert.deepEqual(exit0, { code: 0, signal: null }, 'SIGTERM after a read-only visit')
  await server.start()
  // a client that wrote, then left; SIGTERM right away
  const w = await s.provider(server, `${m.id}/wg-a`, m.tokens.rapporteurs['wg-a'])
  addParagraph(w.doc, 'written, then the client left')
  const o = await s.provider(server, `${m.id}/wg-a`, m.tokens.participant)
  await waitFor(() => plainNotes(o.doc).includes('written, then the client left'), 10000, 'observer')
  w.destroy(); o.destroy()
  const exit = await server.stop('SIGTERM', 15000)
  assert.deepEqual(exit, { code: 0, signal: null })
  await server.start()
  const late = await s.provider(server, `${m.id}/wg-a`, m.tokens.participant)
  assert.ok(plainNotes(late.doc).includes('written, then the client left'))
})

test('kill -9 while a rapporteur types: everything another client had received is there after a restart (twice)', async (t) => {
  const s = scope(t)
  const server = await s.server()
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  let expectedPrefix = ''
  for (let round = 1; round <= 2; round++) {
    const w = await s.provider(server, room, m.tokens.rapporteurs['wg-a'])
    const o = await s.provider(server, room, m.tokens.participant)
    assert.equal(w.doc.getText('typing').toString(), expectedPrefix, `round ${round}: writer did not start from the recovered text`)
    if (round === 1) addConclusion(w.doc, { id: 'typed', text: '' })
    const ct = findConclusion(w.doc, 'typed').get('text')
    const typing = w.doc.getText('typing')
    let i = 0
    const timer = setInterval(() => {
      // a burst of keystrokes, each its own update
      for (let k = 0; k < 5; k++, i++) {
        const ch = String.fromCharCode(97 + (i % 26))
        typing.insert(typing.length, ch)
        ct.insert(ct.length, ch)
      }
    }, 2)
    try {
      const target = expectedPrefix.length + 400
      await waitFor(() => o.doc.getText('typing').length >= target, 20000, `the observer to receive ${target} characters`)
      await server.crash() // while the writer keeps typing
    } finally {
      clearInterval(timer)
    }
    const seenText = o.doc.getText('typing').toString()
    const seenConclusion = findConclusion(o.doc, 'typed')?.get('text').toString() ?? ''
    const seenSv = Y.decodeStateVector(Y.encodeStateVector(o.doc))
    w.destroy(); o.destroy()

    await server.start()
    const f = await s.provider(server, room, m.tokens.moderator)
    const sv = Y.decodeStateVector(Y.encodeStateVector(f.doc))
    assert.ok(svCovers(sv, seenSv), `round ${round}: state after restart ${JSON.stringify([...sv])} does not cover what the observer had ${JSON.stringify([...seenSv])}`)
    const got = f.doc.getText('typing').toString()
    assert.ok(got.startsWith(seenText), `round ${round}: lost typing: observer had ${seenText.length} chars, restart has ${got.length}`)
    const gotC = findConclusion(f.doc, 'typed')?.get('text').toString() ?? ''
    assert.ok(gotC.startsWith(seenConclusion), `round ${round}: lost conclusion text: observer had ${seenConclusion.length}, restart has ${gotC.length}`)
    expectedPrefix = got
    f.destroy()
  }
})

test('kill -9 right after an ack: everything the ack covered is there after a restart', async (t) => {
  const s = scope(t)
  const server = await s.server()
  const m = await server.createMeeting()
  const room = `${m.id}/wg-b`
  const w = await s.provider(server, room, m.tokens.rapporteurs['wg-b'], { params: { ack: '1' } })
  const c = addConclusion(w.doc, { id: 'acked', text: '' })
  for (let i = 0; i < 200; i++) c.get('text').insert(c.get('text').length, String(i % 10))
  addParagraph(w.doc, 'acked notes')
  const own = Y.decodeStateVector(Y.encodeStateVector(w.doc))
  await waitFor(() => w.acks.some((a) => svCovers(a.sv, own)), 10000, 'an ack covering all edits')
  await server.crash()
  const expected = conclusionsJSON(w.doc)
  w.destroy()
  await server.start()
  const f = await s.provider(server, room, m.tokens.participant)
  assert.ok(svCovers(Y.decodeStateVector(Y.encodeStateVector(f.doc)), own), 'acked updates lost after kill -9')
  assert.deepEqual(conclusionsJSON(f.doc), expected)
  assert.ok(plainNotes(f.doc).includes('acked notes'))
})
