// Awareness across nodes (contract "Several nodes": awareness is relayed between nodes, not
// stored; follower counts count every node): two real nodes on one PostgreSQL database, stock
// y-websocket providers. A client whose node is killed (kill -9) reconnects through a loopback
// TCP balancer to the other node and gets its client id and presence back, without a flicker or
// a duplicate. Runs on the test cluster that PLENARY_TEST_STORE or PLENARY_TEST_PG_URL names;
// skipped without one, and a failure when PLENARY_REQUIRE_PG=1.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { TEST_STORE, storeFor, scope, waitFor, uniqueId, randomToken, enc } from './harness.mjs'

const PG = TEST_STORE || process.env.PLENARY_TEST_PG_URL || ''
if (!PG && process.env.PLENARY_REQUIRE_PG === '1') {
  throw new Error('PLENARY_REQUIRE_PG=1 but neither PLENARY_TEST_STORE nor PLENARY_TEST_PG_URL is set')
}
const skip = PG ? false : 'no PostgreSQL test cluster (PLENARY_TEST_PG_URL; scripts/pg.sh start DIR makes one)'

const stateOf = (p, id) => p.awareness.getStates().get(id)
const serverState = (p) => p.awareness.getStates().get(0)?.server
let nextRawId = 3100000000 + (process.pid % 100000) * 10
const rawId = () => ++nextRawId

/** Two nodes on one fresh database, and a meeting created before the second starts. */
async function twoNodes (s) {
  const url = storeFor(`aware-${uniqueId()}`, PG)
  const adminToken = randomToken()
  const a = await s.server({ adminToken, args: ['--store', url] })
  const m = await a.createMeeting({ title: 'Cluster awareness', groups: [{ id: 'wg-a', title: 'A' }, { id: 'wg-b', title: 'B' }] })
  const b = await s.server({ adminToken, args: ['--store', url] })
  return { a, b, m }
}

/**
 * A loopback TCP balancer: each new connection goes to the first backend that accepts it (a
 * dead node refuses, the next one takes it), as a load balancer's health check would do.
 */
async function balancer (backends) {
  const sockets = new Set()
  const server = net.createServer((client) => {
    sockets.add(client)
    client.pause()
    const tryAt = (i) => {
      if (i >= backends.length) { client.destroy(); return }
      const up = net.connect(backends[i].port, '127.0.0.1')
      up.once('error', () => { up.destroy(); tryAt(i + 1) })
      up.once('connect', () => {
        sockets.add(up)
        up.removeAllListeners('error')
        const drop = () => { client.destroy(); up.destroy(); sockets.delete(client); sockets.delete(up) }
        client.on('error', drop); up.on('error', drop); client.on('close', drop); up.on('close', drop)
        client.pipe(up); up.pipe(client)
        client.resume()
      })
    }
    tryAt(0)
  })
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve) })
  const port = server.address().port
  return {
    wsBase: `ws://127.0.0.1:${port}/ws`,
    async close () { for (const x of sockets) x.destroy(); await new Promise((resolve) => server.close(() => resolve())) }
  }
}

test('presence set on one node appears on the other, stamped, both ways; a client leaving vanishes on the other node', { skip }, async (t) => {
  const s = scope(t)
  const { a, b, m } = await twoNodes(s)
  const room = `${m.id}/wg-a`
  const ana = await s.provider(a, room, m.tokens.rapporteurs['wg-a'], { state: { user: { name: 'Ana' } } })
  const bo = await s.provider(b, room, m.tokens.moderator, { state: { user: { name: 'Bo' } } })
  const watchB = await s.provider(b, room, m.tokens.participant)
  const watchA = await s.provider(a, room, m.tokens.participant)
  const aid = ana.doc.clientID
  const bid = bo.doc.clientID

  await waitFor(() => stateOf(bo, aid)?.user?.name === 'Ana' && stateOf(watchB, aid)?.user?.name === 'Ana' &&
    stateOf(ana, bid)?.user?.name === 'Bo' && stateOf(watchA, bid)?.user?.name === 'Bo', 15000,
  'Ana (node A) and Bo (node B) to see each other, and the watchers on both nodes to see both')
  assert.equal(stateOf(watchB, aid).role, 'rapporteur', 'stamped by the node that accepted it')
  assert.equal(stateOf(watchA, bid).role, 'moderator')

  // changes travel too
  ana.awareness.setLocalStateField('cursor', { anchor: 2, head: 5 })
  await waitFor(() => stateOf(watchB, aid)?.cursor?.head === 5 && stateOf(bo, aid)?.cursor?.head === 5, 15000, 'the cursor change on node B')

  // a late joiner on B gets Ana's presence in its greeting
  const late = await s.provider(b, room, m.tokens.participant)
  await waitFor(() => stateOf(late, aid)?.user?.name === 'Ana', 15000, 'a late joiner on B to see Ana')

  // a stock provider leaving A
  ana.destroy()
  await waitFor(() => !watchB.awareness.getStates().has(aid) && !bo.awareness.getStates().has(aid) &&
    !late.awareness.getStates().has(aid), 15000, 'Ana to vanish on node B')

  // a connection on A that drops without a goodbye
  const raw = await s.raw(a, room, { token: m.tokens.rapporteurs['wg-a'] })
  const rid = rawId()
  await raw.send(enc.awareness([{ clientID: rid, clock: 1, state: { user: { name: 'raw' } } }]))
  await waitFor(() => stateOf(watchB, rid)?.user?.name === 'raw', 15000, 'the raw client on node B')
  raw.terminate()
  await waitFor(() => !watchB.awareness.getStates().has(rid) && !bo.awareness.getStates().has(rid), 15000, 'the dropped raw client to vanish on node B')

  // and from B to A
  bo.destroy()
  await waitFor(() => !watchA.awareness.getStates().has(bid), 15000, 'Bo to vanish on node A')
  // read-only connections' awareness is relayed by no node
  watchB.awareness.setLocalState({ user: { name: 'silent' } })
  const marker = await s.provider(b, room, m.tokens.rapporteurs['wg-a'], { state: { marker: 1 } })
  await waitFor(() => stateOf(watchA, marker.doc.clientID)?.marker === 1, 15000, 'a later writer on B to reach node A')
  assert.equal(stateOf(watchA, watchB.doc.clientID), undefined, 'a read-only state reached the other node')
})

test('follower counts count every node', { skip }, async (t) => {
  const s = scope(t)
  const { a, b, m } = await twoNodes(s)
  const room = `${m.id}/wg-a`
  const wa = await s.provider(a, room, m.tokens.rapporteurs['wg-a'], { state: { user: { name: 'WA' } } })
  const p1 = await s.provider(a, room, m.tokens.participant)
  const p2 = await s.provider(a, room, m.tokens.participant)
  const p3 = await s.provider(b, room, m.tokens.participant)
  const wb = await s.provider(b, room, m.tokens.moderator)
  const counts = (p) => `${serverState(p)?.followers}/${serverState(p)?.writers}`
  const all = [wa, p1, p2, p3, wb]
  await waitFor(() => all.every((p) => counts(p) === '3/2'), 15000,
    `3 followers and 2 writers on both nodes (got ${all.map(counts)})`)
  // counts per room, on both nodes
  const other = await s.provider(b, `${m.id}/wg-b`, m.tokens.participant)
  await waitFor(() => counts(other) === '1/0', 15000, `wg-b counts its own (got ${counts(other)})`)
  p1.destroy()
  p3.destroy()
  await waitFor(() => [wa, p2, wb].every((p) => counts(p) === '1/2'), 15000,
    `1 follower and 2 writers after two left (got ${[wa, p2, wb].map(counts)})`)
})

test('a client whose node is killed reconnects through the balancer to the other node with its client id and presence, without a flicker or a duplicate', { skip }, async (t) => {
  const s = scope(t)
  const { a, b, m } = await twoNodes(s)
  const lb = await balancer([a, b])
  s.add(() => lb.close())
  const room = `${m.id}/wg-a`
  // Cat reaches node A through the balancer; Obs watches on node B directly
  const cat = await s.provider(lb, room, m.tokens.rapporteurs['wg-a'], { state: { user: { name: 'Cat' } } })
  const obs = await s.provider(b, room, m.tokens.participant)
  const cid = cat.doc.clientID
  await waitFor(() => stateOf(obs, cid)?.user?.name === 'Cat', 15000, 'Cat (node A) at the watcher on node B')
  await waitFor(() => serverState(obs)?.writers === 1 && serverState(obs)?.followers === 1, 15000,
    `counts 1/1 on B (got ${JSON.stringify(serverState(obs))})`)
  const removed = []
  obs.awareness.on('change', ({ removed: r }) => removed.push(...r))
  let closes = 0
  cat.provider.on('connection-close', () => { closes++ })

  await a.crash()
  await waitFor(() => closes > 0 && cat.provider.wsconnected, 15000, 'Cat to reconnect through the balancer')
  // The dead node's counts and entries expire after its silence: Cat's presence must outlive
  // it. Until then B counts Cat twice (here, and in A's last counts); 2 followers and 1 writer
  // show that A's counts are gone.
  const late = await s.provider(b, room, m.tokens.participant)
  await waitFor(() => serverState(late)?.followers === 2 && serverState(late)?.writers === 1, 30000,
    `the dead node's counts to expire (got ${JSON.stringify(serverState(late))})`)
  assert.equal(cat.doc.clientID, cid, 'same client id')
  assert.equal(stateOf(obs, cid)?.user?.name, 'Cat', 'Cat\'s presence outlived the dead node')
  assert.equal(stateOf(late, cid)?.user?.name, 'Cat', 'a joiner on node B sees Cat')
  assert.deepEqual(removed.filter((id) => id === cid), [], 'Cat\'s presence flickered at the watcher')
  const cats = [...obs.awareness.getStates().values()].filter((st) => st?.user?.name === 'Cat')
  assert.equal(cats.length, 1, `exactly one Cat: ${JSON.stringify([...obs.awareness.getStates()])}`)
  assert.equal(stateOf(obs, cid).role, 'rapporteur')

  // Cat's presence is node B's now: changes travel, and leaving removes it
  cat.awareness.setLocalStateField('cursor', { anchor: 1, head: 1 })
  await waitFor(() => stateOf(obs, cid)?.cursor?.head === 1, 15000, 'Cat\'s change after the move')
  cat.destroy()
  await waitFor(() => !obs.awareness.getStates().has(cid) && !late.awareness.getStates().has(cid), 15000, 'Cat to leave')
})
