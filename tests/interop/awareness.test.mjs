// Awareness: relayed from writers only, stamped with the server-side role, claims by client id,
// cleared on close, answered on query-awareness, and the server's own follower-count state.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { sharedServer, scope, waitFor, enc } from './harness.mjs'

const server = await sharedServer()

const stateOf = (p, id) => p.awareness.getStates().get(id)
const serverState = (p) => p.awareness.getStates().get(0)?.server
let nextRawId = 3000000000 + (process.pid % 100000) * 10
const rawId = () => ++nextRawId

test('awareness appears with a server-stamped role and disappears when the client leaves', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const a = await s.provider(server, room, m.tokens.rapporteurs['wg-a'], { state: { user: { name: 'Ana' } } })
  const b = await s.provider(server, room, m.tokens.moderator, { state: { user: { name: 'Bo' } } })
  const c = await s.provider(server, room, m.tokens.participant)
  const aid = a.doc.clientID
  const bid = b.doc.clientID

  await waitFor(() => stateOf(b, aid)?.user?.name === 'Ana' && stateOf(c, aid)?.user?.name === 'Ana' &&
    stateOf(a, bid)?.user?.name === 'Bo' && stateOf(c, bid)?.user?.name === 'Bo', 10000, 'A and B to see each other, C to see both')
  assert.equal(stateOf(b, aid).role, 'rapporteur')
  assert.equal(stateOf(c, aid).role, 'rapporteur')
  assert.equal(stateOf(a, bid).role, 'moderator')
  assert.equal(stateOf(c, bid).role, 'moderator')

  // changes are relayed, still stamped
  a.awareness.setLocalStateField('cursor', { anchor: 1, head: 4 })
  await waitFor(() => stateOf(b, aid)?.cursor?.head === 4 && stateOf(c, aid)?.cursor?.head === 4, 10000, 'cursor change')
  assert.equal(stateOf(b, aid).role, 'rapporteur')

  // a stock provider leaving (destroy sends a null state, then closes)
  a.destroy()
  await waitFor(() => !b.awareness.getStates().has(aid) && !c.awareness.getStates().has(aid), 10000, 'A to disappear at B and C')

  // a connection that drops without saying goodbye is cleared by the server
  const raw = await s.raw(server, room, { token: m.tokens.rapporteurs['wg-a'] })
  const rid = rawId()
  await raw.send(enc.awareness([{ clientID: rid, clock: 1, state: { user: { name: 'raw' } } }]))
  await waitFor(() => stateOf(b, rid)?.user?.name === 'raw' && stateOf(c, rid)?.user?.name === 'raw', 10000, 'raw client state at B and C')
  assert.equal(stateOf(b, rid).role, 'rapporteur')
  raw.terminate()
  await waitFor(() => !b.awareness.getStates().has(rid) && !c.awareness.getStates().has(rid), 10000, 'dropped raw client to disappear')
})

test('a client cannot overwrite or remove another client\'s awareness', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const a = await s.provider(server, room, m.tokens.rapporteurs['wg-a'], { state: { user: { name: 'Ana' } } })
  const obs = await s.provider(server, room, m.tokens.participant)
  const mod = await s.provider(server, room, m.tokens.moderator, { state: { user: { name: 'Mo' } } })
  const aid = a.doc.clientID
  await waitFor(() => stateOf(obs, aid)?.user?.name === 'Ana' && stateOf(mod, aid)?.user?.name === 'Ana', 10000, 'A visible')
  const aClock = a.awareness.meta.get(aid).clock

  // a moderator connection (a writer) forges A's state with a much newer clock
  const mallory = await s.raw(server, room, { token: m.tokens.moderator })
  const mid = rawId()
  await mallory.send(enc.awareness([{ clientID: aid, clock: aClock + 50, state: { user: { name: 'Mallory' } } }]))
  // barrier: Mallory's own later message, once seen, proves the forged one was handled
  await mallory.send(enc.awareness([{ clientID: mid, clock: 1, state: { marker: 1 } }]))
  await waitFor(() => stateOf(obs, mid)?.marker === 1 && stateOf(mod, mid)?.marker === 1, 10000, 'marker 1')
  assert.equal(stateOf(obs, aid)?.user?.name, 'Ana', 'forged state reached a participant')
  assert.equal(stateOf(mod, aid)?.user?.name, 'Ana', 'forged state reached the moderator')
  assert.equal(a.awareness.getLocalState()?.user?.name, 'Ana', 'forged state reached its victim')

  // ...and tries to remove it
  await mallory.send(enc.awareness([{ clientID: aid, clock: aClock + 60, state: null }]))
  await mallory.send(enc.awareness([{ clientID: mid, clock: 2, state: { marker: 2 } }]))
  await waitFor(() => stateOf(obs, mid)?.marker === 2, 10000, 'marker 2')
  assert.equal(stateOf(obs, aid)?.user?.name, 'Ana', 'forged removal reached a participant')
  assert.equal(stateOf(mod, aid)?.user?.name, 'Ana', 'forged removal reached the moderator')

  // the forged clocks were not recorded: A's next (smaller) clock still gets through
  a.awareness.setLocalStateField('user', { name: 'Ana 2' })
  await waitFor(() => stateOf(obs, aid)?.user?.name === 'Ana 2' && stateOf(mod, aid)?.user?.name === 'Ana 2', 10000, 'A\'s own update after the forgery attempts')
  assert.equal(stateOf(obs, aid).role, 'rapporteur')

  // Mallory cannot take over Mo's id either
  const moid = mod.doc.clientID
  await mallory.send(enc.awareness([{ clientID: moid, clock: 1000, state: { user: { name: 'Mallory-as-Mo' } } }]))
  await mallory.send(enc.awareness([{ clientID: mid, clock: 3, state: { marker: 3 } }]))
  await waitFor(() => stateOf(obs, mid)?.marker === 3, 10000, 'marker 3')
  assert.equal(stateOf(obs, moid)?.user?.name, 'Mo')
})

test('a client cannot claim another role: the server overwrites a forged `role`', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-b`
  const obs = await s.provider(server, room, m.tokens.participant)
  const a = await s.provider(server, room, m.tokens.rapporteurs['wg-b'], { state: { user: { name: 'Rita' }, role: 'moderator' } })
  const mod = await s.provider(server, room, m.tokens.moderator, { state: { user: { name: 'Mo' }, role: 'participant' } })
  await waitFor(() => stateOf(obs, a.doc.clientID)?.user?.name === 'Rita' && stateOf(obs, mod.doc.clientID)?.user?.name === 'Mo', 10000, 'both states')
  assert.equal(stateOf(obs, a.doc.clientID).role, 'rapporteur', 'a rapporteur posed as a moderator')
  assert.equal(stateOf(obs, mod.doc.clientID).role, 'moderator')
  assert.equal(stateOf(mod, a.doc.clientID).role, 'rapporteur')

  const raw = await s.raw(server, room, { token: m.tokens.rapporteurs['wg-b'] })
  const rid = rawId()
  await raw.send(enc.awareness([{ clientID: rid, clock: 1, state: { user: { name: 'raw' }, role: 'moderator' } }]))
  await waitFor(() => stateOf(obs, rid)?.user?.name === 'raw', 10000, 'raw state')
  assert.equal(stateOf(obs, rid).role, 'rapporteur')
  // changing only the role later does not help either
  a.awareness.setLocalStateField('role', 'moderator')
  a.awareness.setLocalStateField('user', { name: 'Rita 2' })
  await waitFor(() => stateOf(obs, a.doc.clientID)?.user?.name === 'Rita 2', 10000, 'second state')
  assert.equal(stateOf(obs, a.doc.clientID).role, 'rapporteur')
  // a rapporteur of ANOTHER group is read-only here: its state is not relayed at all (see below),
  // and certainly not as a writer
})

test('awareness from read-only connections is not relayed (participant, rapporteur of another group)', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const writer = await s.provider(server, room, m.tokens.rapporteurs['wg-a'], { state: { user: { name: 'W' }, tick: 0 } })
  const mod = await s.provider(server, room, m.tokens.moderator, { state: { user: { name: 'Mo' } } })
  const part = await s.provider(server, room, m.tokens.participant, { state: { user: { name: 'Pat' } } })
  const other = await s.provider(server, room, m.tokens.rapporteurs['wg-b'], { state: { user: { name: 'Other group' } } })
  const raw = await s.raw(server, room, { token: m.tokens.participant })
  const rid = rawId()
  await raw.send(enc.awareness([{ clientID: rid, clock: 1, state: { user: { name: 'raw participant' } } }]))
  await raw.barrier()
  part.awareness.setLocalStateField('user', { name: 'Pat 2' })

  // read-only clients still receive writers' awareness
  await waitFor(() => stateOf(part, writer.doc.clientID)?.user?.name === 'W' && stateOf(other, mod.doc.clientID)?.user?.name === 'Mo', 10000, 'read-only clients to see the writers')
  // barrier: a later change by the writer reaches the moderator
  writer.awareness.setLocalStateField('tick', 1)
  await waitFor(() => stateOf(mod, writer.doc.clientID)?.tick === 1 && stateOf(part, writer.doc.clientID)?.tick === 1, 10000, 'writer tick')
  for (const [who, p] of [['moderator', mod], ['writer', writer], ['other participant view', other]]) {
    const ids = [...p.awareness.getStates().keys()]
    assert.ok(!ids.includes(part.doc.clientID), `participant awareness relayed to ${who}`)
    assert.ok(!ids.includes(other.doc.clientID) || p === other, `read-only rapporteur awareness relayed to ${who}`)
    assert.ok(!ids.includes(rid), `raw participant awareness relayed to ${who}`)
  }
  // query-awareness answers do not include them either
  const q = await s.raw(server, room, { token: m.tokens.moderator })
  const n = q.messages.length
  await q.send(enc.queryAwareness())
  await q.waitMessage((msg, i) => i >= n && msg.type === 'awareness' && msg.entries.some((e) => e.clientID === writer.doc.clientID), 10000, 'query-awareness answer')
  const view = q.awarenessView()
  assert.ok(!view.has(part.doc.clientID) || view.get(part.doc.clientID).state === null)
  assert.ok(!view.has(rid) || view.get(rid).state === null)
})

test('query-awareness is answered with the current (stamped) states', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const a = await s.provider(server, room, m.tokens.rapporteurs['wg-a'], { state: { user: { name: 'Ana' } } })
  const obs = await s.provider(server, room, m.tokens.moderator)
  await waitFor(() => stateOf(obs, a.doc.clientID)?.user?.name === 'Ana', 10000, 'A visible')
  const q = await s.raw(server, room, { token: m.tokens.participant })
  const n = q.messages.length
  await q.send(enc.queryAwareness())
  const msg = await q.waitMessage((mm, i) => i >= n && mm.type === 'awareness', 10000, 'awareness answer to query-awareness')
  const e = msg.entries.find((x) => x.clientID === a.doc.clientID)
  assert.ok(e, `A's state missing from the answer: ${JSON.stringify(msg.entries)}`)
  assert.equal(e.state.user.name, 'Ana')
  assert.equal(e.state.role, 'rapporteur')
  assert.equal(q.closeInfo, null)
})

test('a client that reconnects with its old id gets its awareness back', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const obs = await s.provider(server, room, m.tokens.participant)
  const echo = await s.provider(server, room, m.tokens.moderator, { state: { user: { name: 'Echo' } } }) // stock: echoes every change
  const a = await s.provider(server, room, m.tokens.rapporteurs['wg-a'], { state: { user: { name: 'Ana' } } })
  const aid = a.doc.clientID
  await waitFor(() => stateOf(obs, aid)?.user?.name === 'Ana' && stateOf(echo, aid)?.user?.name === 'Ana', 10000, 'A visible')

  a.provider.disconnect()
  await waitFor(() => !obs.awareness.getStates().has(aid), 10000, 'A gone after disconnect')
  a.provider.connect()
  await a.synced()
  await waitFor(() => stateOf(obs, aid)?.user?.name === 'Ana' && stateOf(echo, aid)?.user?.name === 'Ana', 10000, 'A back after reconnecting with its old id and clock')

  // a raw client that drops and comes back with the same id and the same clock
  const rid = rawId()
  const r1 = await s.raw(server, room, { token: m.tokens.rapporteurs['wg-a'] })
  await r1.send(enc.awareness([{ clientID: rid, clock: 5, state: { user: { name: 'R' } } }]))
  await waitFor(() => stateOf(obs, rid)?.user?.name === 'R', 10000, 'R visible')
  r1.terminate()
  await waitFor(() => !obs.awareness.getStates().has(rid), 10000, 'R gone')
  const r2 = await s.raw(server, room, { token: m.tokens.rapporteurs['wg-a'] })
  await r2.send(enc.awareness([{ clientID: rid, clock: 5, state: { user: { name: 'R' } } }]))
  await waitFor(() => stateOf(obs, rid)?.user?.name === 'R' && stateOf(echo, rid)?.user?.name === 'R', 10000, 'R back with its old id')
  assert.equal(stateOf(obs, rid).role, 'rapporteur')
})

test('the server publishes follower counts as its own awareness state (client id 0)', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const room = `${m.id}/wg-a`
  const w = await s.provider(server, room, m.tokens.rapporteurs['wg-a'], { state: { user: { name: 'W' } } })
  await waitFor(() => serverState(w)?.followers === 0 && serverState(w)?.writers === 1, 10000,
    `server state {followers:0, writers:1} (got ${JSON.stringify(w.awareness.getStates().get(0))})`)

  const p1 = await s.provider(server, room, m.tokens.participant)
  const p2 = await s.provider(server, room, m.tokens.participant)
  const other = await s.provider(server, room, m.tokens.rapporteurs['wg-b']) // read-only here
  await waitFor(() => serverState(w)?.followers === 3 && serverState(w)?.writers === 1, 10000,
    `followers 3 (got ${JSON.stringify(w.awareness.getStates().get(0))})`)
  await waitFor(() => serverState(p1)?.followers === 3 && serverState(other)?.followers === 3, 10000, 'read-only clients to see the server state too')
  const mod = await s.provider(server, room, m.tokens.moderator)
  await waitFor(() => serverState(p2)?.writers === 2 && serverState(p2)?.followers === 3, 10000,
    `writers 2 (got ${JSON.stringify(p2.awareness.getStates().get(0))})`)

  p1.destroy(); other.destroy()
  await waitFor(() => serverState(w)?.followers === 1 && serverState(mod)?.followers === 1, 10000,
    `followers back to 1 (got ${JSON.stringify(w.awareness.getStates().get(0))})`)
  // counts are per room
  const wb = await s.provider(server, `${m.id}/wg-b`, m.tokens.rapporteurs['wg-b'])
  await waitFor(() => serverState(wb)?.followers === 0 && serverState(wb)?.writers === 1, 10000, 'per-room counts in wg-b')
  // a late joiner gets the current server state on connect
  const late = await s.provider(server, room, m.tokens.participant)
  await waitFor(() => serverState(late)?.followers === 2 && serverState(late)?.writers === 2, 10000,
    `late joiner sees current counts (got ${JSON.stringify(late.awareness.getStates().get(0))})`)
})
