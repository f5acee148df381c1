// Node loss (issue 13, the contract's "Several nodes"): stock y-websocket clients type through a
// loopback TCP balancer (no sticky sessions) in front of three nodes on one PostgreSQL database;
// `kill -9` of the node that serves some of them: they reconnect through the balancer to another
// node, every update any client had received is there, no text is duplicated, typing continues.
// Skipped without PLENARY_TEST_PG_URL.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Y, scope, waitFor, svCovers, addConclusion, findConclusion, openProvider } from './harness.mjs'
import { Cluster, Balancer, skipWithoutPg } from './lib/cluster.mjs'

const skip = skipWithoutPg
const sv = (doc) => Y.decodeStateVector(Y.encodeStateVector(doc))
const tick = () => new Promise((resolve) => setTimeout(resolve, 5))

/** The text writer `i` types, keystroke `k` (deterministic, so the final text can be checked exactly). */
const charOf = (i, k) => String.fromCharCode(97 + ((i * 7 + k) % 26))
const typed = (i, n) => Array.from({ length: n }, (_, k) => charOf(i, k)).join('')

test('kill -9 of a node while its clients type through the balancer: they carry on through another node, nothing seen is lost, nothing doubled', { skip }, async (t) => {
  const s = scope(t)
  const cluster = await Cluster.start({ nodes: 3, meetings: [{ title: 'Failover', groups: [{ id: 'wg-a', title: 'A' }] }] })
  s.add(() => cluster.dispose())
  const lb = await Balancer.start(cluster.nodes)
  s.add(() => lb.close())
  const [m] = cluster.meetings
  const room = `${m.id}/wg-a`

  // 3 writers and 3 observers through the balancer: round-robin puts two clients on each node
  const openVia = async (token) => {
    const before = lb.connections.length
    const p = openProvider(lb, room, token, { maxBackoffTime: 200 })
    s.add(() => p.destroy())
    await p.synced()
    // the node this client landed on: the balancer's newest connection made for it
    p.firstNode = lb.connections[before]?.node
    return p
  }
  const writers = []
  const observers = []
  for (let i = 0; i < 3; i++) {
    writers.push(await openVia(i === 0 ? m.tokens.moderator : m.tokens.rapporteurs['wg-a']))
    observers.push(await openVia(m.tokens.participant))
  }
  const victim = writers[0].firstNode
  assert.ok(victim !== undefined, 'no balancer connection recorded for the first writer')
  const onVictim = [...writers, ...observers].filter((p) => p.firstNode === victim)
  assert.ok(onVictim.length >= 2, `the victim node serves ${onVictim.length} clients`)
  const observersElsewhere = observers.filter((p) => p.firstNode !== victim)
  assert.ok(observersElsewhere.length >= 1, 'no observer on a surviving node')
  t.diagnostic(`clients per node: ${[0, 1, 2].map((i) => lb.openTo(i)).join(', ')}; killing node ${victim}`)

  writers.forEach((w, i) => addConclusion(w.doc, { id: `c${i}`, text: '' }))
  const counts = [0, 0, 0]
  const typeSome = (n) => {
    for (let k = 0; k < n; k++) {
      writers.forEach((w, i) => { const tx = findConclusion(w.doc, `c${i}`).get('text'); tx.insert(tx.length, charOf(i, counts[i]++)) })
    }
  }
  const textAt = (p, i) => findConclusion(p.doc, `c${i}`)?.get('text').toString() ?? ''

  // typing: a keystroke per writer every few ms, through the kill and the reconnection
  // (bounded: at most 2000 per writer)
  let typing = true
  const loop = (async () => {
    while (typing && counts[0] < 2000) { typeSome(1); await tick() }
  })()
  try {
    await waitFor(() => observers.every((o) => [0, 1, 2].every((i) => textAt(o, i).length >= 60)), 20000, '60 keystrokes of every writer at every observer')
    // what each client had received when the node died
    const seen = [...writers, ...observers].map((p) => ({ sv: sv(p.doc), texts: [0, 1, 2].map((i) => textAt(p, i)) }))
    await cluster.node(victim).crash() // kill -9, while the writers keep typing
    const seenAfter = [...writers, ...observers].map((p) => ({ sv: sv(p.doc), texts: [0, 1, 2].map((i) => textAt(p, i)) }))
    // the victim's clients see the drop and come back through the balancer, to another node
    await waitFor(() => onVictim.every((p) => p.closes.length > 0), 10000, 'the victim\'s clients to see the drop')
    await waitFor(() => onVictim.every((p) => p.provider.wsconnected && p.provider.synced), 20000, 'the victim\'s clients to reconnect and sync through the balancer')
    assert.equal(lb.openTo(victim), 0, 'connections still open to the dead node')
    typing = false
    await loop
    t.diagnostic(`${counts[0]} keystrokes per writer up to the reconnection`)
    // typing continues after the reconnection, and reaches observers on every surviving node
    const mark = counts.slice()
    for (let k = 0; k < 40; k++) { typeSome(1); await tick() }
    await waitFor(() => observers.every((o) => [0, 1, 2].every((i) => textAt(o, i).length >= mark[i] + 40)), 20000, '40 more keystrokes of every writer at every observer after the reconnection')
    // converged: every client has exactly what each writer typed, once
    const want = [0, 1, 2].map((i) => typed(i, counts[i]))
    await waitFor(() => [...writers, ...observers].every((p) => [0, 1, 2].every((i) => textAt(p, i) === want[i])), 20000, 'every client to hold exactly the typed texts')
      .catch((e) => { e.message += `\n${observers.map((o) => [0, 1, 2].map((i) => `${textAt(o, i).length}/${want[i].length}`).join(' ')).join('\n')}`; throw e })
    // a late joiner on a surviving node: every update any client had seen is durable
    const survivor = cluster.nodes.find((n, i) => i !== victim)
    const late = openProvider(survivor, room, m.tokens.participant)
    s.add(() => late.destroy())
    await late.synced()
    for (const snap of [...seen, ...seenAfter]) {
      assert.ok(svCovers(sv(late.doc), snap.sv), 'an update a client had received before the kill is missing')
      snap.texts.forEach((txt, i) => assert.ok(want[i].startsWith(txt), `client text ${JSON.stringify(txt.slice(-20))} is not a prefix of what was typed`))
    }
    for (let i = 0; i < 3; i++) assert.equal(textAt(late, i), want[i], `writer ${i}'s text is lost or doubled in the store`)
    assert.equal(late.doc.getArray('conclusions').length, 3, 'a conclusion was doubled')
    t.diagnostic(`typed ${counts.join('/')} keystrokes; ${lb.connections.length} balancer connections in all`)
  } finally {
    typing = false
    await loop
  }
})

test('a restarted node (same data dir) joins again and serves what the others wrote while it was dead', { skip }, async (t) => {
  const s = scope(t)
  const cluster = await Cluster.start({ nodes: 2, meetings: [{ title: 'Comeback', groups: [{ id: 'wg-a', title: 'A' }] }] })
  s.add(() => cluster.dispose())
  const [a, b] = cluster.nodes
  const [m] = cluster.meetings
  const room = `${m.id}/wg-a`
  const w = openProvider(b, room, m.tokens.rapporteurs['wg-a'])
  s.add(() => w.destroy())
  await w.synced()
  const obsA = openProvider(a, room, m.tokens.participant)
  s.add(() => obsA.destroy())
  await obsA.synced()
  addConclusion(w.doc, { id: 'before', text: 'before the kill' })
  await waitFor(() => findConclusion(obsA.doc, 'before'), 15000, 'a conclusion at node a')
  obsA.provider.destroy()
  await a.crash()
  addConclusion(w.doc, { id: 'during', text: 'while node a was dead' })
  const obsB = openProvider(b, room, m.tokens.participant)
  s.add(() => obsB.destroy())
  await obsB.synced()
  await waitFor(() => findConclusion(obsB.doc, 'during'), 15000, 'the write during the outage at node b')
  await a.start()
  const back = openProvider(a, room, m.tokens.participant)
  s.add(() => back.destroy())
  await back.synced()
  assert.deepEqual(back.doc.getArray('conclusions').toJSON().map((c) => c.id), ['before', 'during'])
  addConclusion(w.doc, { id: 'after', text: 'after the restart' })
  await waitFor(() => findConclusion(back.doc, 'after')?.get('text').toString() === 'after the restart', 15000, 'a write on node b at the restarted node a')
})
