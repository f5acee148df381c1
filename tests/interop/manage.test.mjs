// Meeting management seen by stock clients (yjs + y-websocket): a rename, an added group and a
// deletion reach an open plenary follower and open sockets at once.
// Run on its own with `bash tests/interop/run.sh tests/interop/manage.test.mjs`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { sharedServer, Y, scope, waitFor, addConclusion, assertErrorBody } from './harness.mjs'

const server = await sharedServer()

async function follow (s, m) {
  const doc = new Y.Doc()
  doc.getMap('meta')
  doc.getArray('groups')
  doc.getMap('curation')
  return s.provider(server, `${m.id}/plenary`, m.tokens.participant, { doc })
}

test('a rename and an added group show at once in a stock client\'s plenary document', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const f = await follow(s, m)
  const meta = f.doc.getMap('meta')
  const groups = f.doc.getArray('groups')
  assert.equal(meta.get('title'), 'Test meeting')

  let res = await server.request('PATCH', `/api/meetings/${m.id}`, { token: m.tokens.moderator, body: { title: 'Skopje 2023', short_title: 'Skopje' } })
  assert.equal(res.status, 200, res.text)
  await waitFor(() => meta.get('title') === 'Skopje 2023' && meta.get('short_title') === 'Skopje', 5000, 'meta follows the rename')

  res = await server.request('PATCH', `/api/meetings/${m.id}/groups/wg-b`, { token: server.adminToken, body: { title: 'Beta renamed', short_title: 'Beta' } })
  assert.equal(res.status, 200, res.text)
  await waitFor(() => groups.get(1)?.get('title') === 'Beta renamed' && groups.get(1)?.get('short_title') === 'Beta', 5000, 'the group section follows')
  assert.equal(groups.get(0).get('short_title'), undefined, 'other groups keep no short title')

  res = await server.request('POST', `/api/meetings/${m.id}/groups`, { token: m.tokens.moderator, body: { title: 'Gamma' } })
  assert.equal(res.status, 201, res.text)
  const added = res.json
  assert.equal(added.id, 'gamma')
  await waitFor(() => groups.length === 3 && groups.get(2).get('id') === 'gamma', 5000, 'the new section')
  const r = await s.provider(server, `${m.id}/gamma`, added.token)
  addConclusion(r.doc, { id: 'g1', text: 'Written by the new rapporteur' })
  await waitFor(() => groups.get(2).get('conclusions').toJSON()[0]?.text === 'Written by the new rapporteur', 5000, 'its conclusion in the plenary')
  assert.equal(r.auth.length, 0, 'the new rapporteur may write its group')

  // the JSON view of the plenary holds it all (what a plain client finds in doc.toJSON())
  const json = f.doc.toJSON()
  assert.equal(json.meta.short_title, 'Skopje')
  assert.deepEqual(json.groups.map((g) => g.title), ['Group A', 'Beta renamed', 'Gamma'])
})

test('a deleted meeting closes its stock clients with 1008 and answers 404', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const f = await follow(s, m)
  const r = await s.provider(server, `${m.id}/wg-a`, m.tokens.rapporteurs['wg-a'])
  addConclusion(r.doc, { id: 'c1', text: 'soon gone' })
  await waitFor(() => f.doc.getArray('groups').get(0)?.get('conclusions').length === 1, 5000, 'merged')
  let res = await server.request('GET', '/api/meetings', { token: 'wrong' })
  assertErrorBody(res, 401, 'GET /api/meetings with a wrong token')
  res = await server.request('DELETE', `/api/meetings/${m.id}`, { token: server.adminToken })
  assert.equal(res.status, 204, res.text)
  await waitFor(() => f.closes.includes(1008) && r.closes.includes(1008), 5000, 'both sockets closed with 1008')
  // the providers try again and are refused before the upgrade; nothing is served any more
  res = await server.request('GET', `/api/meetings/${m.id}`, { token: m.tokens.moderator })
  assertErrorBody(res, 404, 'GET a deleted meeting')
  res = await server.request('GET', `/api/meetings/${m.id}/summary.md`, { token: m.tokens.participant })
  assertErrorBody(res, 404, 'summary of a deleted meeting')
  res = await server.request('GET', '/api/meetings', { token: server.adminToken })
  assert.ok(!res.json.meetings.some((x) => x.id === m.id))
})
