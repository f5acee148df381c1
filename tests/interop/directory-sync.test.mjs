// Several nodes (contract "Several nodes"): what one node does to the directory, every node
// shows — groups closed or reopened (writes refused on every node's sockets), tokens revoked,
// meetings deleted, meetings created (usable on another node at once). Two `plenary serve`
// processes on one PostgreSQL database, stock y-websocket clients and raw sockets on node B,
// management requests on node A. How long each change took to show on B is reported as a
// `#` diagnostic (the contract says within a second; the tests do not time the machine).
// Runs on the test cluster PLENARY_TEST_STORE or PLENARY_TEST_PG_URL names; skipped without one,
// a failure when PLENARY_REQUIRE_PG=1.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  TEST_STORE, storeFor, scope, waitFor, withTimeout, uniqueId, randomToken, UpgradeRefused,
  addParagraph, notesString
} from './harness.mjs'

const PG = TEST_STORE || process.env.PLENARY_TEST_PG_URL || ''
if (!PG && process.env.PLENARY_REQUIRE_PG === '1') {
  throw new Error('PLENARY_REQUIRE_PG=1 but neither PLENARY_TEST_STORE nor PLENARY_TEST_PG_URL is set')
}
const skip = PG ? false : 'no PostgreSQL test cluster (PLENARY_TEST_PG_URL; scripts/pg.sh start DIR makes one)'

/** Two nodes on one fresh database, with one admin token. */
async function twoNodes (s) {
  const store = storeFor(`dirsync-${uniqueId()}`, PG)
  const adminToken = randomToken()
  const a = await s.server({ adminToken, args: ['--store', store] })
  const b = await s.server({ adminToken, args: ['--store', store] })
  return { a, b }
}

/** The server's own awareness state (client id 0) as a provider sees it. */
const serverState = (p) => p.awareness.getStates().get(0)?.server

/** The node's `rooms_loaded` gauge. */
async function roomsLoaded (server) {
  const text = (await server.request('GET', '/metrics')).text
  const line = text.split('\n').find((l) => /^(plenary_)?rooms_loaded /.test(l))
  assert.ok(line, 'a rooms_loaded gauge in /metrics')
  return Number(line.split(' ')[1])
}

const upgradeStatus = async (s, server, room, token) => {
  try {
    const c = await s.raw(server, room, { token })
    c.destroy()
    return 101
  } catch (e) {
    if (e instanceof UpgradeRefused) return e.status
    throw e
  }
}

test('a meeting created on one node is usable on another at once (HTTP and WebSocket)', { skip }, async (t) => {
  const s = scope(t)
  const { a, b } = await twoNodes(s)
  for (let i = 0; i < 3; i++) {
    const m = await a.createMeeting({ title: `Made on A ${i}` })
    // no wait: B is asked straight away
    const got = await b.request('GET', `/api/meetings/${m.id}`, { token: m.tokens.participant })
    assert.equal(got.status, 200, got.text)
    assert.equal(got.json.title, `Made on A ${i}`)
    const room = `${m.id}/wg-a`
    const w = await s.provider(b, room, m.tokens.rapporteurs['wg-a'])
    const o = await s.provider(b, room, m.tokens.participant)
    addParagraph(w.doc, `typed on B ${i}`)
    await waitFor(() => notesString(o.doc).includes(`typed on B ${i}`), 10000, 'an edit on B to reach B\'s follower')
  }
  // a group added on A: its rapporteur joins on B at once
  const m = await a.createMeeting()
  const added = await a.request('POST', `/api/meetings/${m.id}/groups`, { token: m.tokens.moderator, body: { id: 'wg-new', title: 'New' } })
  assert.equal(added.status, 201, added.text)
  await s.provider(b, `${m.id}/wg-new`, added.json.token)
  // and an id nobody made is still unknown
  const none = await b.request('GET', `/api/meetings/${uniqueId()}`, { token: m.tokens.participant })
  assert.equal(none.status, 404, none.text)
})

test('a group closed on one node refuses writes on another node\'s sockets; reopened, they write again', { skip }, async (t) => {
  const s = scope(t)
  const { a, b } = await twoNodes(s)
  const m = await a.createMeeting()
  const room = `${m.id}/wg-a`
  const w = await s.provider(b, room, m.tokens.rapporteurs['wg-a'])
  const o = await s.provider(b, room, m.tokens.participant)
  addParagraph(w.doc, 'before closing')
  await waitFor(() => notesString(o.doc).includes('before closing'), 10000, 'the first edit on B')

  let started = Date.now()
  const closed = await a.request('POST', `/api/meetings/${m.id}/groups/wg-a/close`, { token: m.tokens.moderator })
  assert.equal(closed.status, 200, closed.text)
  await waitFor(() => serverState(w)?.closed === true, 10000, 'B\'s room to say the group is closed')
  t.diagnostic(`closed on A, shown on B after ${Date.now() - started} ms`)
  const denied = w.auth.length
  addParagraph(w.doc, 'after closing')
  await waitFor(() => w.auth.length > denied, 10000, 'B to refuse the write with an auth message')
  assert.equal(w.auth.at(-1).reason, 'permission denied')
  // nothing of the refused write reached anyone, and nobody was disconnected
  const late = await s.provider(b, room, m.tokens.participant)
  assert.ok(!notesString(late.doc).includes('after closing'), notesString(late.doc))
  assert.ok(!notesString(o.doc).includes('after closing'))
  assert.deepEqual(w.closes, [])
  // B's HTTP answers show it too
  const got = await b.request('GET', `/api/meetings/${m.id}`, { token: m.tokens.participant })
  assert.deepEqual(got.json.groups.map((g) => [g.id, g.closed]), [['wg-a', true], ['wg-b', false]])

  started = Date.now()
  const reopened = await a.request('POST', `/api/meetings/${m.id}/groups/wg-a/reopen`, { token: m.tokens.moderator })
  assert.equal(reopened.status, 200, reopened.text)
  await waitFor(() => serverState(w)?.closed === false, 10000, 'B\'s room to say the group is open')
  t.diagnostic(`reopened on A, shown on B after ${Date.now() - started} ms`)
  const w2 = await s.provider(b, room, m.tokens.rapporteurs['wg-a'])
  addParagraph(w2.doc, 'after reopening')
  await waitFor(() => notesString(o.doc).includes('after reopening'), 10000, 'a write on B after reopening')
})

test('a token revoked on one node closes its sockets on another, which refuses it from then on', { skip }, async (t) => {
  const s = scope(t)
  const { a, b } = await twoNodes(s)
  const m = await a.createMeeting()
  const old = m.tokens.rapporteurs['wg-a']
  const c = await s.raw(b, `${m.id}/wg-a`, { token: old })
  const other = await s.raw(b, `${m.id}/wg-a`, { token: m.tokens.participant })
  const started = Date.now()
  const res = await a.request('POST', `/api/meetings/${m.id}/tokens`, { token: a.adminToken, body: { role: 'rapporteur', group: 'wg-a' } })
  assert.equal(res.status, 200, res.text)
  const info = await withTimeout(c.closed, 10000, 'B to close the revoked token\'s socket')
  t.diagnostic(`revoked on A, socket on B closed after ${Date.now() - started} ms`)
  assert.deepEqual(info, { code: 1008, reason: 'token revoked' })
  assert.ok(other.open, 'another token\'s socket stays open')
  assert.equal(await upgradeStatus(s, b, `${m.id}/wg-a`, old), 401)
  const refused = await b.request('GET', `/api/meetings/${m.id}`, { token: old })
  assert.equal(refused.status, 401, refused.text)
  // the new token works on B
  const w = await s.provider(b, `${m.id}/wg-a`, res.json.token)
  addParagraph(w.doc, 'with the new token')
  await waitFor(() => { other.check(); return other.doc.getXmlFragment('notes').toString().includes('with the new token') }, 10000, 'a write with the new token on B')
})

test('a meeting deleted on one node closes its sockets on another, whose rooms unload and refuse it', { skip }, async (t) => {
  const s = scope(t)
  const { a, b } = await twoNodes(s)
  // One group each, and every room of both meetings opened on B: the node that takes a
  // meeting's plenary lease keeps all its group rooms loaded and loads its plenary, so with
  // more groups, or a plenary left closed, B's gauge would also move with the leases.
  const groups = [{ id: 'wg-a', title: 'Group A' }]
  const m = await a.createMeeting({ groups })
  const keep = await a.createMeeting({ groups })
  const group = await s.raw(b, `${m.id}/wg-a`, { token: m.tokens.rapporteurs['wg-a'] })
  const plenary = await s.raw(b, `${m.id}/plenary`, { token: m.tokens.participant })
  const bystander = await s.raw(b, `${keep.id}/wg-a`, { token: keep.tokens.participant })
  const bystanderPlenary = await s.raw(b, `${keep.id}/plenary`, { token: keep.tokens.participant })
  const loadedBefore = await roomsLoaded(b)
  assert.ok(loadedBefore >= 4, `rooms loaded on B: ${loadedBefore}`)
  const started = Date.now()
  const del = await a.request('DELETE', `/api/meetings/${m.id}`, { token: a.adminToken })
  assert.equal(del.status, 204, del.text)
  for (const c of [group, plenary]) {
    assert.deepEqual(await withTimeout(c.closed, 10000, 'B to close the deleted meeting\'s socket'), { code: 1008, reason: 'meeting deleted' })
  }
  t.diagnostic(`deleted on A, sockets on B closed after ${Date.now() - started} ms`)
  assert.ok(bystander.open && bystanderPlenary.open, 'another meeting\'s sockets stay open')
  const got = await b.request('GET', `/api/meetings/${m.id}`, { token: m.tokens.participant })
  assert.equal(got.status, 404, got.text)
  assert.equal(await upgradeStatus(s, b, `${m.id}/wg-a`, m.tokens.rapporteurs['wg-a']), 404)
  // B's rooms of the meeting are gone: its gauge drops by two (the group and the plenary)
  await waitFor(async () => (await roomsLoaded(b)) === loadedBefore - 2, 10000, 'B to unload the deleted meeting\'s rooms')
})
