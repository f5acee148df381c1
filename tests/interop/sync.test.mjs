// Document sync with stock yjs + y-websocket clients: convergence, late joiners, room isolation,
// read-only refusals, and saved acknowledgements (ack=1).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  sharedServer, Y, scope, waitFor, enc, svCovers, addConclusion, findConclusion, addParagraph, notesString, conclusionsJSON
} from './harness.mjs'

const server = await sharedServer()

const plainNotes = (doc) => notesString(doc).replace(/<[^>]*>/g, '')
const sameDoc = (a, b) => notesString(a) === notesString(b) &&
  JSON.stringify(conclusionsJSON(a)) === JSON.stringify(conclusionsJSON(b))

test('concurrent edits converge in notes (Y.XmlFragment)', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const a = await s.provider(server, room, m.tokens.rapporteurs['wg-a'])
  const b = await s.provider(server, room, m.tokens.moderator)
  const obs = await s.provider(server, room, m.tokens.participant)

  // truly concurrent: both edit in the same tick, before either can see the other
  addParagraph(a.doc, 'alpha from A')
  addParagraph(b.doc, 'beta from B')
  await waitFor(() => [a, b, obs].every((p) => p.doc.getXmlFragment('notes').length === 2) &&
    notesString(a.doc) === notesString(b.doc) && notesString(b.doc) === notesString(obs.doc),
  10000, 'both paragraphs at all three clients, in the same order')

  // concurrent edits inside the same paragraph, with formatting
  const ta = a.doc.getXmlFragment('notes').get(0).get(0)
  const tb = b.doc.getXmlFragment('notes').get(0).get(0)
  ta.insert(0, 'A1 ')
  tb.insert(tb.length, ' B1')
  ta.format(0, 2, { bold: true })

  // edits made while one side is offline merge on reconnect
  b.provider.disconnect()
  addParagraph(a.doc, 'gamma while B offline')
  addParagraph(b.doc, 'delta made offline by B', 0)
  b.provider.connect()

  await waitFor(() => notesString(a.doc) === notesString(b.doc) && notesString(b.doc) === notesString(obs.doc) &&
    a.doc.getXmlFragment('notes').length === 4, 10000, 'notes to converge after the offline edits')
  const text = plainNotes(obs.doc)
  for (const frag of ['alpha from A', 'beta from B', 'A1 ', ' B1', 'gamma while B offline', 'delta made offline by B']) {
    assert.ok(text.includes(frag), `converged notes lack ${JSON.stringify(frag)}: ${notesString(obs.doc)}`)
  }
  assert.match(notesString(obs.doc), /<bold>A1<\/bold>/, 'formatting attribute lost')
})

test('concurrent edits converge in conclusions (Y.Array of Y.Map with Y.Text)', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-b`
  const a = await s.provider(server, room, m.tokens.rapporteurs['wg-b'])
  const b = await s.provider(server, room, m.tokens.moderator)
  const obs = await s.provider(server, room, m.tokens.participant)

  addConclusion(a.doc, { id: 'c-a', text: 'Alpha', author: 'ana' })
  addConclusion(b.doc, { id: 'c-b', text: 'Beta', author: 'bo' })
  await waitFor(() => [a, b, obs].every((p) => p.doc.getArray('conclusions').length === 2) && sameDoc(a.doc, b.doc),
    10000, 'both conclusions everywhere')

  // concurrent text edits of the same conclusion + a status change + a new item
  findConclusion(a.doc, 'c-a').get('text').insert(0, 'X')
  findConclusion(b.doc, 'c-a').get('text').insert(5, 'Y')
  findConclusion(b.doc, 'c-b').set('status', 'final')
  addConclusion(a.doc, { id: 'c-c', text: 'Gamma ✓ ünï', author: 'ana' }, 0)

  await waitFor(() => sameDoc(a.doc, b.doc) && sameDoc(b.doc, obs.doc) && findConclusion(obs.doc, 'c-c') &&
    findConclusion(obs.doc, 'c-a')?.get('text').toString() === 'XAlphaY', 10000, 'conclusions to converge')
  const got = conclusionsJSON(obs.doc)
  // c-a and c-b were pushed concurrently: Yjs orders them by client id; c-c was inserted first after both
  assert.equal(got[0].id, 'c-c')
  assert.deepEqual(got.map((c) => c.id).slice(1).sort(), ['c-a', 'c-b'])
  const byId = Object.fromEntries(got.map((c) => [c.id, c]))
  assert.deepEqual(byId['c-a'], { id: 'c-a', text: 'XAlphaY', status: 'draft', author: 'ana' })
  assert.deepEqual(byId['c-b'], { id: 'c-b', text: 'Beta', status: 'final', author: 'bo' })
  assert.deepEqual(byId['c-c'], { id: 'c-c', text: 'Gamma ✓ ünï', status: 'draft', author: 'ana' })
  assert.ok(obs.doc.getArray('conclusions').get(0).get('text') instanceof Y.Text, 'text is not a Y.Text')

  // deletion converges too
  const arr = b.doc.getArray('conclusions')
  arr.delete(arr.toArray().findIndex((c) => c.get('id') === 'c-b'), 1)
  await waitFor(() => !findConclusion(a.doc, 'c-b') && !findConclusion(obs.doc, 'c-b') && sameDoc(a.doc, obs.doc),
    10000, 'deleted conclusion to disappear everywhere')
})

test('a late joiner gets everything', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const a = await s.provider(server, room, m.tokens.rapporteurs['wg-a'])
  const b = await s.provider(server, room, m.tokens.moderator)
  addParagraph(a.doc, 'first paragraph')
  const c = addConclusion(b.doc, { id: 'late-1', text: '', author: 'bo' })
  // 300 keystrokes, one update each
  const ct = c.get('text')
  for (let i = 0; i < 300; i++) ct.insert(ct.length, String.fromCharCode(97 + (i % 26)))
  findConclusion(b.doc, 'late-1').set('status', 'final')
  await waitFor(() => sameDoc(a.doc, b.doc) && findConclusion(a.doc, 'late-1')?.get('text').length === 300,
    10000, 'A to see all of B\'s keystrokes')
  const expected = { notes: notesString(a.doc), conclusions: conclusionsJSON(a.doc) }
  a.destroy(); b.destroy()

  for (const token of [m.tokens.participant, m.tokens.rapporteurs['wg-b']]) {
    const late = await s.provider(server, room, token)
    assert.equal(notesString(late.doc), expected.notes)
    assert.deepEqual(conclusionsJSON(late.doc), expected.conclusions)
    late.destroy()
  }
})

test('rooms are isolated (other group, same group id in another meeting)', async (t) => {
  const s = scope(t)
  const m1 = await server.createMeeting()
  const m2 = await server.createMeeting()
  const w1a = await s.provider(server, `${m1.id}/wg-a`, m1.tokens.rapporteurs['wg-a'])
  const o1a = await s.provider(server, `${m1.id}/wg-a`, m1.tokens.participant)
  const w1b = await s.provider(server, `${m1.id}/wg-b`, m1.tokens.rapporteurs['wg-b'])
  const o1b = await s.provider(server, `${m1.id}/wg-b`, m1.tokens.participant)
  const w2a = await s.provider(server, `${m2.id}/wg-a`, m2.tokens.rapporteurs['wg-a'])
  const o2a = await s.provider(server, `${m2.id}/wg-a`, m2.tokens.participant)

  addParagraph(w1a.doc, 'SECRET-m1-wg-a')
  addConclusion(w1a.doc, { id: 'secret', text: 'SECRET-m1-wg-a' })
  await waitFor(() => plainNotes(o1a.doc).includes('SECRET-m1-wg-a') && findConclusion(o1a.doc, 'secret'), 10000, 'own room to get the edit')
  // barrier edits in the other rooms: once their observers see them, a leak would have shown
  addParagraph(w1b.doc, 'marker-m1-wg-b')
  addParagraph(w2a.doc, 'marker-m2-wg-a')
  await waitFor(() => plainNotes(o1b.doc).includes('marker-m1-wg-b') && plainNotes(o2a.doc).includes('marker-m2-wg-a'), 10000, 'markers in the other rooms')
  for (const p of [w1b, o1b, w2a, o2a]) {
    assert.ok(!plainNotes(p.doc).includes('SECRET'), `edit leaked into another room: ${notesString(p.doc)}`)
    assert.equal(p.doc.getArray('conclusions').length, 0, 'conclusion leaked into another room')
  }
  assert.ok(!plainNotes(o1a.doc).includes('marker'), 'marker leaked into m1/wg-a')
  const late = await s.provider(server, `${m2.id}/wg-a`, m2.tokens.moderator)
  assert.equal(plainNotes(late.doc), 'marker-m2-wg-a')
})

test('a participant\'s edits are refused with an auth message, reach nobody, and its connection stays open', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const writer = await s.provider(server, room, m.tokens.rapporteurs['wg-a'])
  const obs = await s.provider(server, room, m.tokens.moderator)
  const part = await s.provider(server, room, m.tokens.participant)
  addParagraph(writer.doc, 'legit-1')
  await waitFor(() => plainNotes(part.doc).includes('legit-1'), 10000, 'participant to read the writer\'s edit')
  assert.equal(part.auth.length, 0, `participant got an auth message before writing: ${JSON.stringify(part.auth)}`)

  // stock provider: local edits are sent as updates
  addParagraph(part.doc, 'EVIL-stock')
  addConclusion(part.doc, { id: 'evil', text: 'EVIL-stock' })
  await waitFor(() => part.auth.length >= 1, 10000, 'an auth (permission denied) message to the participant')
  assert.equal(typeof part.auth[0].reason, 'string')
  assert.ok(part.auth[0].reason.length > 0, 'empty reason')

  // raw socket: check the exact bytes: 2 (auth), 0 (permission denied), var-string reason
  const raw = await s.raw(server, room, { token: m.tokens.participant })
  const doc = new Y.Doc()
  doc.getText('evil').insert(0, 'EVIL-raw')
  const n = raw.messages.length
  await raw.send(enc.update(Y.encodeStateAsUpdate(doc)))
  const auth = await raw.waitMessage((msg) => msg.type === 'auth', 10000, 'auth message on the raw socket', n)
  assert.equal(auth.sub, 0, 'auth message type is not permission-denied (0)')
  assert.ok(auth.reason.length > 0)
  // also as sync step 2 (what a stock client sends in reply to the server's step 1)
  const doc2 = new Y.Doc()
  doc2.getText('evil').insert(0, 'EVIL-step2')
  const n2 = raw.authMessages().length
  await raw.send(enc.syncStep2(Y.encodeStateAsUpdate(doc2)))
  await waitFor(() => raw.authMessages().length > n2, 10000, 'auth message for a refused sync step 2')
  // the connection stays open and usable
  await raw.barrier()
  assert.equal(raw.closeInfo, null)

  // a later legitimate edit arrives everywhere; the refused ones never do
  addParagraph(writer.doc, 'legit-2')
  await waitFor(() => plainNotes(obs.doc).includes('legit-2') && plainNotes(part.doc).includes('legit-2') &&
    raw.doc.getXmlFragment('notes').toString().includes('legit-2'), 10000, 'legit-2 everywhere')
  assert.ok(!plainNotes(obs.doc).includes('EVIL'), `refused edit reached the moderator: ${notesString(obs.doc)}`)
  assert.ok(!plainNotes(writer.doc).includes('EVIL'), 'refused edit reached the writer')
  assert.equal(findConclusion(obs.doc, 'evil'), null, 'refused conclusion reached the moderator')
  assert.equal(obs.doc.getText('evil').toString(), '', 'refused raw update was relayed')
  assert.ok(part.provider.wsconnected, 'participant provider was disconnected')
  assert.deepEqual(part.closes, [], 'participant connection was closed')

  // and nothing was applied: a late joiner does not have it
  const late = await s.provider(server, room, m.tokens.moderator)
  assert.ok(!plainNotes(late.doc).includes('EVIL'))
  assert.equal(late.doc.getText('evil').toString(), '')
  assert.equal(findConclusion(late.doc, 'evil'), null)
  assert.ok(plainNotes(late.doc).includes('legit-2'))
})

test('a participant with offline edits is refused at sync step 2 and gets the document', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const writer = await s.provider(server, room, m.tokens.rapporteurs['wg-a'])
  addParagraph(writer.doc, 'server-side text')
  const doc = new Y.Doc()
  addParagraph(doc, 'EVIL-offline')
  const part = await s.provider(server, room, m.tokens.participant, { doc })
  await waitFor(() => part.auth.length >= 1, 10000, 'permission denied for the offline edits')
  await waitFor(() => plainNotes(part.doc).includes('server-side text'), 10000, 'participant to receive the document')
  addParagraph(writer.doc, 'after')
  const obs = await s.provider(server, room, m.tokens.moderator)
  await waitFor(() => plainNotes(obs.doc).includes('after'), 10000, 'later edit')
  assert.ok(!plainNotes(obs.doc).includes('EVIL'), 'offline edits of a participant were applied')
  assert.ok(!plainNotes(writer.doc).includes('EVIL'), 'offline edits of a participant were relayed')
  assert.ok(part.provider.wsconnected)
})

test('roles: a rapporteur writes its own group, reads the others; the moderator writes all', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const ra = m.tokens.rapporteurs['wg-a']
  const obsB = await s.provider(server, `${m.id}/wg-b`, m.tokens.moderator)
  const writerB = await s.provider(server, `${m.id}/wg-b`, m.tokens.rapporteurs['wg-b'])
  const aInB = await s.provider(server, `${m.id}/wg-b`, ra)
  addParagraph(writerB.doc, 'b-content')
  await waitFor(() => plainNotes(aInB.doc).includes('b-content'), 10000, 'rapporteur A to read group B')
  addParagraph(aInB.doc, 'EVIL-from-rapporteur-a')
  await waitFor(() => aInB.auth.length >= 1, 10000, 'permission denied for rapporteur A writing group B')
  addParagraph(writerB.doc, 'b-marker')
  await waitFor(() => plainNotes(obsB.doc).includes('b-marker'), 10000, 'marker')
  assert.ok(!plainNotes(obsB.doc).includes('EVIL'), 'rapporteur of another group could write')
  assert.ok(aInB.provider.wsconnected)

  // the moderator writes any group
  const modA = await s.provider(server, `${m.id}/wg-a`, m.tokens.moderator)
  const aInA = await s.provider(server, `${m.id}/wg-a`, ra)
  addParagraph(modA.doc, 'moderator wrote this')
  addParagraph(aInA.doc, 'rapporteur wrote this')
  await waitFor(() => plainNotes(modA.doc).includes('rapporteur wrote this') && plainNotes(aInA.doc).includes('moderator wrote this'), 10000, 'both writers to converge')
  assert.equal(modA.auth.length + aInA.auth.length, 0, 'a writer got permission denied')
})

test('ack=1: the client receives type-100 messages whose state vector covers its own', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const acker = await s.provider(server, room, m.tokens.rapporteurs['wg-a'], { params: { ack: '1' } })
  const plain = await s.provider(server, room, m.tokens.moderator)
  const c = addConclusion(acker.doc, { id: 'ack-1', text: 'saved?' })
  for (let i = 0; i < 20; i++) c.get('text').insert(0, String(i % 10))
  addParagraph(acker.doc, 'notes too')
  const own = Y.decodeStateVector(Y.encodeStateVector(acker.doc))
  assert.ok((own.get(acker.doc.clientID) || 0) > 0)
  await waitFor(() => acker.acks.some((a) => svCovers(a.sv, own)), 10000,
    `an ack covering ${JSON.stringify([...own])} (got ${JSON.stringify(acker.acks.map((a) => [...a.sv]))})`)

  // a client that did not ask for acks never gets a type-100 message, even when it writes
  addParagraph(plain.doc, 'written by the plain client')
  const both = () => Y.decodeStateVector(Y.encodeStateVector(plain.doc))
  await waitFor(() => plainNotes(acker.doc).includes('written by the plain client'), 10000, 'plain edit to reach the acker')
  // the acked vector is the document's durable state vector: once the acker writes again, its
  // next ack covers the other client's (durable) edit as well
  addParagraph(acker.doc, 'acker writes again')
  const sv2 = Y.decodeStateVector(Y.encodeStateVector(acker.doc))
  assert.ok(svCovers(sv2, both()))
  await waitFor(() => acker.acks.some((a) => svCovers(a.sv, sv2)), 10000, 'ack covering the other client\'s edit too (the document\'s durable state vector)')
  assert.equal(plain.acks.length, 0, 'a client without ack=1 received type-100 messages')

  // raw check of the frame: 100, then a var-uint8-array holding a v1 state vector
  const raw = await s.raw(server, room, { token: m.tokens.rapporteurs['wg-a'], ack: '1' })
  const upd = await raw.edit((d) => d.getText('raw').insert(0, 'raw edit'))
  assert.ok(upd)
  const mine = Y.decodeStateVector(Y.encodeStateVector(raw.doc))
  const ack = await raw.waitMessage((msg) => msg.type === 'ack' && svCovers(msg.sv, mine), 10000, 'raw ack covering the raw edit')
  assert.ok(ack.sv.get(raw.doc.clientID) >= mine.get(raw.doc.clientID))
  assert.equal(raw.count((msg) => msg.type === 'undecodable' || msg.type === 'unknown'), 0, 'undecodable frame from the server')
})
