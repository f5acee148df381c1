// Replication between nodes (contract "Several nodes", issue 13 design point 2): two and three
// `plenary serve --store URL` processes on one PostgreSQL database, stock y-websocket clients on
// each. Every node keeps a replica of the rooms its clients use and accepts writes; another
// node's committed batch reaches this node's clients through the doorbell (or the log). Runs on
// the test cluster that PLENARY_TEST_STORE or PLENARY_TEST_PG_URL names; skipped without one,
// and a failure when PLENARY_REQUIRE_PG=1.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  TEST_STORE, storeFor, scope, waitFor, uniqueId, addParagraph, notesString, addConclusion, conclusionsJSON
} from './harness.mjs'

const PG = TEST_STORE || process.env.PLENARY_TEST_PG_URL || ''
if (!PG && process.env.PLENARY_REQUIRE_PG === '1') {
  throw new Error('PLENARY_REQUIRE_PG=1 but neither PLENARY_TEST_STORE nor PLENARY_TEST_PG_URL is set')
}
const skip = PG ? false : 'no PostgreSQL test cluster (PLENARY_TEST_PG_URL; scripts/pg.sh start DIR makes one)'

const sameDoc = (a, b) => notesString(a) === notesString(b) &&
  JSON.stringify(conclusionsJSON(a)) === JSON.stringify(conclusionsJSON(b))

/** Nodes on one fresh database; the meeting is created on the first before the others start. */
async function cluster (s, n) {
  const url = storeFor(`repl-${uniqueId()}`, PG)
  const first = await s.server({ args: ['--store', url] })
  const m = await first.createMeeting({ title: 'Replication', groups: [{ id: 'wg-a', title: 'A' }] })
  const nodes = [first]
  for (let i = 1; i < n; i++) nodes.push(await s.server({ args: ['--store', url], adminToken: first.adminToken }))
  return { url, m, nodes }
}

/** A counter of `/metrics` (0 when absent). */
async function metric (server, name) {
  const res = await server.request('GET', '/metrics')
  const line = res.text.split('\n').find((l) => l.startsWith(name + ' '))
  return line ? Number(line.split(' ')[1]) : 0
}

test('writers on two nodes converge, and each node relays the other\'s writes to its clients', { skip }, async (t) => {
  const s = scope(t)
  const { m, nodes: [a, b] } = await cluster(s, 2)
  const room = `${m.id}/wg-a`
  const onA = await s.provider(a, room, m.tokens.rapporteurs['wg-a'])
  const onB = await s.provider(b, room, m.tokens.moderator)
  const readerA = await s.provider(a, room, m.tokens.participant)
  const readerB = await s.provider(b, room, m.tokens.participant)
  const all = [onA, onB, readerA, readerB]

  addParagraph(onA.doc, 'written on A')
  await waitFor(() => notesString(readerB.doc).includes('written on A'), 10000, 'A\'s write at a reader on B')
  addParagraph(onB.doc, 'written on B')
  await waitFor(() => notesString(readerA.doc).includes('written on B'), 10000, 'B\'s write at a reader on A')

  // Concurrent writes on both nodes, in notes and conclusions.
  for (let i = 0; i < 10; i++) {
    addParagraph(onA.doc, `A${i}`)
    addParagraph(onB.doc, `B${i}`)
  }
  addConclusion(onA.doc, { id: 'ca', text: 'from A' })
  addConclusion(onB.doc, { id: 'cb', text: 'from B' })
  await waitFor(() => all.every((p) => p.doc.getXmlFragment('notes').length === 22 && p.doc.getArray('conclusions').length === 2) &&
    all.every((p) => sameDoc(p.doc, onA.doc)), 15000, 'every client on both nodes to converge')
  const notes = notesString(readerB.doc)
  for (let i = 0; i < 10; i++) {
    assert.ok(notes.includes(`A${i}`) && notes.includes(`B${i}`), `a write is missing: ${notes}`)
  }
  // No client was closed on the way.
  for (const p of all) assert.deepEqual(p.closes, [], 'a client was closed')
  assert.ok(await metric(b, 'plenary_cluster_remote_updates_total') > 0, 'B applied none of A\'s updates')
  assert.ok(await metric(a, 'plenary_cluster_remote_updates_total') > 0, 'A applied none of B\'s updates')
})

test('a third node started late has everything, and its writes reach the other two', { skip }, async (t) => {
  const s = scope(t)
  const { url, m, nodes: [a, b] } = await cluster(s, 2)
  const room = `${m.id}/wg-a`
  const onA = await s.provider(a, room, m.tokens.rapporteurs['wg-a'])
  const onB = await s.provider(b, room, m.tokens.moderator)
  for (let i = 0; i < 5; i++) {
    addParagraph(onA.doc, `early A${i}`)
    addParagraph(onB.doc, `early B${i}`)
  }
  await waitFor(() => sameDoc(onA.doc, onB.doc) && onA.doc.getXmlFragment('notes').length === 10, 10000, 'A and B to converge')
  const c = await s.server({ args: ['--store', url], adminToken: a.adminToken })
  const onC = await s.provider(c, room, m.tokens.participant)
  await waitFor(() => sameDoc(onC.doc, onA.doc), 10000, 'the late node\'s client to hold everything')
  const writerC = await s.provider(c, room, m.tokens.rapporteurs['wg-a'])
  addParagraph(writerC.doc, 'written on C')
  await waitFor(() => [onA, onB, onC].every((p) => notesString(p.doc).includes('written on C')), 10000, 'C\'s write on A and B')
  await waitFor(() => sameDoc(onA.doc, onB.doc) && sameDoc(onB.doc, onC.doc), 10000, 'all three to converge')
})

test('a client that moves to another node carries on where it was', { skip }, async (t) => {
  const s = scope(t)
  const { m, nodes: [a, b] } = await cluster(s, 2)
  const room = `${m.id}/wg-a`
  const writer = await s.provider(a, room, m.tokens.rapporteurs['wg-a'])
  const readerB = await s.provider(b, room, m.tokens.participant)
  addParagraph(writer.doc, 'before the move')
  await waitFor(() => notesString(readerB.doc).includes('before the move'), 10000, 'the first write on B')
  // The same document reconnects through B (as a balancer would send it) and keeps writing.
  writer.destroy()
  const moved = await s.provider(b, room, m.tokens.rapporteurs['wg-a'])
  await waitFor(() => notesString(moved.doc).includes('before the move'), 10000, 'the moved client to sync')
  addParagraph(moved.doc, 'after the move')
  const readerA = await s.provider(a, room, m.tokens.participant)
  await waitFor(() => notesString(readerA.doc).includes('after the move') && sameDoc(readerA.doc, moved.doc), 10000, 'the moved client\'s write on A')
  assert.equal(notesString(readerA.doc).split('before the move').length, 2, 'a write was duplicated')
})
