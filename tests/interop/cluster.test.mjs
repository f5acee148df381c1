// Several nodes on one PostgreSQL database (issue 13, the contract's "Several nodes"), with stock
// yjs + y-websocket clients: writers on different nodes converge, a late joiner on a third node has
// everything, read-only refusals hold on every node, what one node does (meetings created, groups
// closed, tokens revoked, meetings deleted) every node shows, awareness and follower counts cross
// nodes. One cluster of three nodes for the file; the tests that hurt nodes are in
// cluster-failover, cluster-plenary and cluster-pgfreeze. Skipped without PLENARY_TEST_PG_URL.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  Y, scope, waitFor, svCovers, addConclusion, findConclusion, addParagraph, notesString, conclusionsJSON, UpgradeRefused, RawClient, SLOW,
  Server, storeFor, uniqueId, openProvider
} from './harness.mjs'
import { Cluster, Balancer, PG, skipWithoutPg, nodeReady, psql } from './lib/cluster.mjs'

const skip = skipWithoutPg
// The meetings of the tests that are not about the directory are made before nodes 1 and 2 start
// (they read them at start), so that those tests do not depend on the directory's change signals.
const PREMADE = ['converge', 'three', 'readonly', 'close', 'revoke', 'aware']
const cluster = skip ? null : await Cluster.shared({ nodes: 3, meetings: PREMADE.map(() => ({})) })
const [n0, n1, n2] = cluster ? cluster.nodes : []
const meeting = (name) => cluster.meetings[PREMADE.indexOf(name)]

const plainNotes = (doc) => notesString(doc).replace(/<[^>]*>/g, '')
const sameDoc = (a, b) => notesString(a) === notesString(b) &&
  JSON.stringify(conclusionsJSON(a)) === JSON.stringify(conclusionsJSON(b))
const sv = (doc) => Y.decodeStateVector(Y.encodeStateVector(doc))

test('two nodes: writers on different nodes converge in notes and conclusions; a late joiner on a third node has everything', { skip }, async (t) => {
  const s = scope(t)
  const m = meeting('converge')
  const room = `${m.id}/wg-a`
  const a = await s.provider(n0, room, m.tokens.rapporteurs['wg-a'])
  const b = await s.provider(n1, room, m.tokens.moderator)
  const obs0 = await s.provider(n0, room, m.tokens.participant)
  const obs1 = await s.provider(n1, room, m.tokens.participant)

  // concurrent: both write in the same tick, each on its own node
  addParagraph(a.doc, 'alpha typed on node 0')
  addParagraph(b.doc, 'beta typed on node 1')
  addConclusion(a.doc, { id: 'c-a', text: 'Alpha conclusion', author: 'ana' })
  addConclusion(b.doc, { id: 'c-b', text: 'Beta conclusion', author: 'bo', status: 'final' })
  const all = [a, b, obs0, obs1]
  await waitFor(() => all.every((p) => p.doc.getXmlFragment('notes').length === 2 && conclusionsJSON(p.doc).length === 2) &&
    all.every((p) => sameDoc(p.doc, a.doc)), 15000, 'both writers\' edits at all four clients on both nodes, in the same order')
    .catch((e) => { e.message += `\n${all.map((p) => notesString(p.doc) + ' ' + JSON.stringify(conclusionsJSON(p.doc))).join('\n')}`; throw e })

  // concurrent edits inside the same conclusion's text from both nodes, one update per keystroke
  const ta = findConclusion(a.doc, 'c-a').get('text')
  const tb = findConclusion(b.doc, 'c-a').get('text')
  ;[...'[0] '].forEach((ch, k) => ta.insert(k, ch))
  for (const ch of ' [1]') tb.insert(tb.length, ch)
  findConclusion(b.doc, 'c-b').set('status', 'draft')
  await waitFor(() => all.every((p) => sameDoc(p.doc, a.doc)) &&
    findConclusion(obs0.doc, 'c-a').get('text').toString().endsWith(' [1]') &&
    findConclusion(obs1.doc, 'c-a').get('text').toString().includes('[0]') &&
    findConclusion(obs0.doc, 'c-b').get('status') === 'draft', 15000, 'concurrent edits of one conclusion to converge on both nodes')
  for (const o of [obs0, obs1]) {
    assert.equal(findConclusion(o.doc, 'c-a').get('text').toString(), '[0] Alpha conclusion [1]', 'conclusion text has duplicated or lost characters')
  }
  for (const frag of ['alpha typed on node 0', 'beta typed on node 1']) {
    assert.ok(plainNotes(obs0.doc).includes(frag) && plainNotes(obs1.doc).includes(frag), `notes lack ${frag}`)
  }
  // every paragraph exactly once
  assert.equal(plainNotes(obs1.doc).split('alpha typed on node 0').length, 2, 'a paragraph appears twice')

  // a late joiner on a third node, which has never loaded the room
  const late = await s.provider(n2, room, m.tokens.participant)
  assert.ok(sameDoc(late.doc, a.doc), `late joiner on node 2 differs:\n${notesString(late.doc)} ${JSON.stringify(conclusionsJSON(late.doc))}\nvs\n${notesString(a.doc)} ${JSON.stringify(conclusionsJSON(a.doc))}`)
  assert.ok(svCovers(sv(late.doc), sv(obs0.doc)) && svCovers(sv(late.doc), sv(obs1.doc)), 'the late joiner lacks updates the observers saw')
  // and writes from the third node reach the first two
  addParagraph(late.doc, 'participant cannot write this') // refused: participants read
  const w2 = await s.provider(n2, room, m.tokens.rapporteurs['wg-a'])
  addParagraph(w2.doc, 'gamma typed on node 2')
  await waitFor(() => plainNotes(obs0.doc).includes('gamma typed on node 2') && plainNotes(obs1.doc).includes('gamma typed on node 2'), 15000, 'a write on node 2 at the observers on nodes 0 and 1')
  await waitFor(() => late.auth.length > 0, 10000, 'the participant on node 2 to be refused')
  assert.ok(!plainNotes(obs0.doc).includes('participant cannot write this'), 'a refused write was relayed to another node')
})

test('three nodes: writers on every node type at once and all converge, each keystroke once', { skip }, async (t) => {
  const s = scope(t)
  const m = meeting('three')
  const room = `${m.id}/wg-b`
  const nodes = [n0, n1, n2]
  const writers = []
  for (let i = 0; i < 3; i++) writers.push(await s.provider(nodes[i], room, i === 0 ? m.tokens.moderator : m.tokens.rapporteurs['wg-b']))
  const observers = []
  for (let i = 0; i < 3; i++) observers.push(await s.provider(nodes[i], room, m.tokens.participant))
  const words = writers.map((_, i) => `w${i}:` + 'abcdefghijklmnopqrstuvwxyz'.repeat(2))
  writers.forEach((w, i) => addConclusion(w.doc, { id: `c${i}`, text: '' }))
  // interleaved keystrokes, each its own update, on three nodes (bounded: 3 × 55 updates)
  for (let k = 0; k < words[0].length; k++) {
    writers.forEach((w, i) => { const tx = findConclusion(w.doc, `c${i}`).get('text'); tx.insert(tx.length, words[i][k]) })
    if (k % 10 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  const want = writers.map((_, i) => ({ id: `c${i}`, text: words[i] }))
  const got = (p) => conclusionsJSON(p.doc).map((c) => ({ id: c.id, text: c.text })).sort((x, y) => x.id.localeCompare(y.id))
  await waitFor(() => [...writers, ...observers].every((p) => JSON.stringify(got(p)) === JSON.stringify(want)), 20000,
    'every node\'s clients to hold all three conclusions, each typed text exactly once')
    .catch((e) => { e.message += `\n${observers.map((p) => JSON.stringify(got(p))).join('\n')}`; throw e })
  // the same order everywhere
  const order = JSON.stringify(conclusionsJSON(observers[0].doc).map((c) => c.id))
  for (const p of [...writers, ...observers]) assert.equal(JSON.stringify(conclusionsJSON(p.doc).map((c) => c.id)), order)
})

test('read-only refusals hold on every node: nothing applied or relayed anywhere, connection kept', { skip }, async (t) => {
  const s = scope(t)
  const m = meeting('readonly')
  const room = `${m.id}/wg-a`
  const nodes = [n0, n1, n2]
  const writer = await s.provider(n0, room, m.tokens.rapporteurs['wg-a'])
  addParagraph(writer.doc, 'the real text')
  const observers = []
  for (const n of nodes) observers.push(await s.provider(n, room, m.tokens.moderator))
  await waitFor(() => observers.every((o) => plainNotes(o.doc).includes('the real text')), 15000, 'the real text at observers on every node')

  for (let i = 0; i < nodes.length; i++) {
    for (const [who, token] of [['participant', m.tokens.participant], ['rapporteur of wg-b', m.tokens.rapporteurs['wg-b']]]) {
      const raw = await s.raw(nodes[i], room, { token })
      const before = raw.authMessages().length
      await raw.edit((d) => addParagraph(d, `forged by ${who} on node ${i}`))
      await raw.waitMessage((msg) => msg.type === 'auth', 10000, `permission denied for the ${who} on node ${i}`)
      assert.ok(raw.authMessages().length > before)
      assert.equal(raw.authMessages().at(-1).sub, 0)
      assert.match(raw.authMessages().at(-1).reason, /permission denied/)
      await raw.barrier() // the connection stays open and keeps being served
      assert.ok(raw.open, `the ${who}'s connection on node ${i} was closed`)
    }
  }
  // a write after the refusals, from node 2, marks the point by which anything relayed has arrived
  const w2 = await s.provider(n2, room, m.tokens.moderator)
  addParagraph(w2.doc, 'marker after the refusals')
  await waitFor(() => observers.every((o) => plainNotes(o.doc).includes('marker after the refusals')), 15000, 'the marker at every node\'s observer')
  for (let i = 0; i < observers.length; i++) {
    assert.ok(!plainNotes(observers[i].doc).includes('forged'), `a refused update was relayed to the observer on node ${i}: ${notesString(observers[i].doc)}`)
  }
  const late = await s.provider(n1, room, m.tokens.participant)
  assert.ok(!plainNotes(late.doc).includes('forged'), 'a refused update was stored')
})

test('a meeting created on one node works on the others: HTTP, tokens, refusals and documents', { skip }, async (t) => {
  const s = scope(t)
  for (const [from, others] of [[n0, [n1, n2]], [n2, [n0, n1]]]) {
    const m = await from.createMeeting({ title: 'Made elsewhere', groups: [{ id: 'wg-x', title: 'X' }, { id: 'wg-y', title: 'Y' }] })
    for (const n of others) {
      // "every node shows within a second": the deadline leaves room for a loaded machine
      const res = await waitFor(async () => {
        const r = await n.request('GET', `/api/meetings/${m.id}`, { token: m.tokens.participant })
        return r.status === 200 && r
      }, 5000, `the new meeting on ${n.base}`)
      assert.equal(res.json.title, 'Made elsewhere')
      assert.deepEqual(res.json.groups.map((g) => g.id), ['wg-x', 'wg-y'])
      for (const token of [m.tokens.moderator, m.tokens.rapporteurs['wg-x'], m.tokens.rapporteurs['wg-y']]) {
        assert.equal((await n.request('GET', `/api/meetings/${m.id}`, { token })).status, 200)
      }
      const wrong = await n.request('GET', `/api/meetings/${m.id}`, { token: 'not-a-token' })
      assert.equal(wrong.status, 401)
      await assert.rejects(RawClient.connect(n.wsUrl(`${m.id}/wg-z`, { token: m.tokens.participant })), (e) => e instanceof UpgradeRefused && e.status === 404)
      await assert.rejects(RawClient.connect(n.wsUrl(`${m.id}/wg-x`, { token: 'nope' })), (e) => e instanceof UpgradeRefused && e.status === 401)
      const dup = await n.request('POST', '/api/meetings', { token: cluster.adminToken, body: { id: m.id, title: 'again', groups: [{ id: 'g', title: 'G' }] } })
      assert.equal(dup.status, 409, `node ${n.base} accepted a meeting id made on another node`)
    }
    // documents: written on one of the other nodes, read from the store by the two remaining
    // (late joiners: this does not need live replication, the other tests cover that)
    const w = await s.provider(others[0], `${m.id}/wg-x`, m.tokens.rapporteurs['wg-x'])
    const o = await s.provider(others[0], `${m.id}/wg-x`, m.tokens.participant)
    addConclusion(w.doc, { id: 'x1', text: 'works everywhere' })
    await waitFor(() => findConclusion(o.doc, 'x1')?.get('text').toString() === 'works everywhere', 15000, 'a write in the new meeting at a client of the same node')
    for (const n of [others[1], from]) {
      const late = await s.provider(n, `${m.id}/wg-x`, m.tokens.participant)
      assert.equal(findConclusion(late.doc, 'x1')?.get('text').toString(), 'works everywhere', `a late joiner on ${n.base} lacks the write`)
    }
  }
  // the meeting list on any node has meetings made on every node
  const list = await n1.request('GET', '/api/meetings', { token: cluster.adminToken })
  assert.equal(list.status, 200)
  assert.ok(list.json.meetings.filter((mm) => mm.title === 'Made elsewhere').length >= 2)
})

/**
 * Sends an update from `raw` every `everyMs` until the server refuses one; returns the time of the
 * first refusal. Bounded by `maxTries`.
 */
async function probeUntilRefused (raw, tag, { everyMs = 25, maxTries = 400 } = {}) {
  const base = raw.authMessages().length
  for (let i = 0; i < maxTries; i++) {
    await raw.edit((d) => d.getText('probe').insert(0, `${tag}${i};`))
    await new Promise((resolve) => setTimeout(resolve, everyMs))
    if (raw.authMessages().length > base) return raw.authMessages()[base].at
    if (raw.closeInfo) throw new Error(`probe closed: ${JSON.stringify(raw.closeInfo)}`)
  }
  throw new Error(`no refusal after ${maxTries} probes`)
}

test('closing a group on one node refuses writes on another node\'s open sockets within a second; reopening accepts them again', { skip }, async (t) => {
  const s = scope(t)
  const m = meeting('close')
  const room = `${m.id}/wg-a`
  const w1 = await s.raw(n1, room, { token: m.tokens.rapporteurs['wg-a'] })
  const w2 = await s.provider(n2, room, m.tokens.moderator) // a stock client on the third node
  // observers on the writers' own nodes: this test is about the directory, not replication
  const obs1 = await s.provider(n1, room, m.tokens.participant)
  const obs2 = await s.provider(n2, room, m.tokens.participant)
  addParagraph(w2.doc, 'before closing')
  await waitFor(() => plainNotes(obs2.doc).includes('before closing'), 15000, 'a write before closing')

  const closed = await n0.request('POST', `/api/meetings/${m.id}/groups/wg-a/close`, { token: m.tokens.moderator })
  assert.equal(closed.status, 200, closed.text)
  const closedAt = Date.now()
  const refusedAt = await probeUntilRefused(w1, 'p')
  const latency = refusedAt - closedAt
  t.diagnostic(`closed on node 0, refused on node 1 after ${latency} ms`)
  assert.ok(latency <= 3000 * SLOW, `writes on another node were refused only ${latency} ms after the close (the contract: within a second)`)
  assert.match(w1.authMessages().at(-1).reason, /permission denied/)

  // once refused, nothing from any node's sockets lands: a stock client and the raw one write
  await waitFor(async () => (await n2.request('GET', `/api/meetings/${m.id}`, { token: m.tokens.participant })).json.groups[0].closed === true, 5000, 'node 2 to show the group closed')
  addParagraph(w2.doc, 'after closing, from node 2')
  await w1.edit((d) => addParagraph(d, 'after closing, from node 1'))
  await waitFor(() => w2.auth.length > 0, 5000, 'the stock client on node 2 to be refused')
  await w1.barrier()
  assert.ok(w1.open, 'closing disconnected a writer')
  const view = await n1.request('GET', `/api/meetings/${m.id}`, { token: m.tokens.participant })
  assert.equal(view.json.groups.find((g) => g.id === 'wg-a').closed, true)

  const reopened = await n2.request('POST', `/api/meetings/${m.id}/groups/wg-a/reopen`, { token: m.tokens.moderator })
  assert.equal(reopened.status, 200, reopened.text)
  // writes from node 1 are accepted again and relayed. Each try is
  // a fresh socket: a client's refused items stay in its own document, and what it writes next
  // builds on them
  let tries = 0
  await waitFor(async () => {
    const fresh = await s.raw(n1, room, { token: m.tokens.rapporteurs['wg-a'] })
    await fresh.edit((d) => addParagraph(d, `after reopening ${++tries}`))
    await fresh.barrier()
    return fresh.authMessages().length === 0
  }, 5000, 'node 1 to accept writes after a reopen on node 2')
  await waitFor(() => plainNotes(obs1.doc).includes('after reopening'), 10000, 'a write after the reopen at an observer on node 1')
  assert.ok(!plainNotes(obs2.doc).includes('after closing'), 'a write refused while closed was relayed')
  // node 0 has not loaded the room: a late joiner there reads the store
  const late = await s.provider(n0, room, m.tokens.moderator)
  for (const refused of ['after closing, from node 2', 'after closing, from node 1']) {
    assert.ok(!plainNotes(late.doc).includes(refused), `a write refused while closed was stored: ${refused}`)
  }
  assert.ok(plainNotes(late.doc).includes('before closing'))
})

test('a token revoked on one node is refused and its sockets closed (1008) on the others; a meeting deleted on one node is gone on all', { skip }, async (t) => {
  const s = scope(t)
  const m = meeting('revoke')
  const room = `${m.id}/wg-b`
  const old = m.tokens.rapporteurs['wg-b']
  const r1 = await s.raw(n1, room, { token: old })
  const r2 = await s.raw(n2, room, { token: old })
  const res = await n0.request('POST', `/api/meetings/${m.id}/tokens`, { token: cluster.adminToken, body: { role: 'rapporteur', group: 'wg-b' } })
  assert.equal(res.status, 200, res.text)
  for (const [i, r] of [[1, r1], [2, r2]]) {
    const info = await waitFor(() => r.closeInfo, 5000, `the revoked token's socket on node ${i} to close`)
    assert.equal(info.code, 1008, `node ${i} closed the revoked token's socket with ${info.code}`)
    assert.match(info.reason, /token revoked/)
  }
  for (const n of [n1, n2]) {
    assert.equal((await n.request('GET', `/api/meetings/${m.id}`, { token: old })).status, 401, `node ${n.base} still takes a revoked token`)
    assert.equal((await n.request('GET', `/api/meetings/${m.id}`, { token: res.json.token })).status, 200, `node ${n.base} refuses the new token`)
  }
  const fresh = await s.provider(n2, room, res.json.token)
  addParagraph(fresh.doc, 'with the new token')
  const obs = await s.provider(n2, room, m.tokens.participant)
  await waitFor(() => plainNotes(obs.doc).includes('with the new token'), 10000, 'a write with the new token')

  // deleted on node 1: node 0's and node 2's sockets close with 1008, requests get 404
  const f0 = await s.provider(n0, room, m.tokens.participant)
  const del = await n1.request('DELETE', `/api/meetings/${m.id}`, { token: cluster.adminToken })
  assert.equal(del.status, 204, del.text)
  await waitFor(() => f0.closes.includes(1008) && fresh.closes.includes(1008), 5000, 'the deleted meeting\'s sockets on nodes 0 and 2 closed with 1008')
  for (const n of [n0, n2]) {
    await waitFor(async () => (await n.request('GET', `/api/meetings/${m.id}`, { token: m.tokens.participant })).status === 404, 5000, `404 on ${n.base}`)
  }
})

test('awareness crosses nodes with the server\'s role stamp; follower counts count every node', { skip }, async (t) => {
  const s = scope(t)
  const m = meeting('aware')
  const room = `${m.id}/wg-a`
  const a = await s.provider(n0, room, m.tokens.rapporteurs['wg-a'], { state: { user: { name: 'Ana on node 0' } } })
  const b = await s.provider(n1, room, m.tokens.moderator, { state: { user: { name: 'Bo on node 1' } } })
  const stateOf = (p, id) => p.awareness.getStates().get(id)
  await waitFor(() => stateOf(b, a.doc.clientID)?.user?.name === 'Ana on node 0' && stateOf(a, b.doc.clientID)?.user?.name === 'Bo on node 1',
    10000, 'each writer to see the other across nodes')
  assert.equal(stateOf(b, a.doc.clientID).role, 'rapporteur')
  assert.equal(stateOf(a, b.doc.clientID).role, 'moderator')
  // a client cannot pose as another role on another node either
  a.awareness.setLocalState({ user: { name: 'Ana posing' }, role: 'moderator' })
  await waitFor(() => stateOf(b, a.doc.clientID)?.user?.name === 'Ana posing', 10000, 'the new state on node 1')
  assert.equal(stateOf(b, a.doc.clientID).role, 'rapporteur', 'a rapporteur posed as a moderator on another node')

  const serverState = (p) => p.awareness.getStates().get(0)?.server
  const f = []
  f.push(await s.provider(n0, room, m.tokens.participant))
  f.push(await s.provider(n1, room, m.tokens.participant))
  f.push(await s.provider(n2, room, m.tokens.participant))
  await waitFor(() => [a, b, ...f].every((p) => serverState(p)?.followers === 3), 15000,
    `followers 3 (one per node) on every node (got ${JSON.stringify([a, b, ...f].map((p) => serverState(p)))})`)
  f[2].destroy()
  await waitFor(() => [a, b].every((p) => serverState(p)?.followers === 2), 15000,
    `followers back to 2 on both writers' nodes (got ${JSON.stringify([a, b].map((p) => serverState(p)))})`)
  // a writer that leaves node 0 disappears on node 1
  a.provider.destroy()
  await waitFor(() => stateOf(b, a.doc.clientID) === undefined, 15000, 'the writer that left node 0 to disappear on node 1')
})

test('a client moved to another node (the balancer drops it) gets its client id and presence back', { skip }, async (t) => {
  const s = scope(t)
  const m = meeting('aware')
  const room = `${m.id}/wg-b`
  const lb = await Balancer.start(cluster.nodes)
  s.add(() => lb.close())
  lb.setDown(1); lb.setDown(2) // first to node 0
  const a = openProvider(lb, room, m.tokens.rapporteurs['wg-b'], { state: { user: { name: 'Mover' } } })
  s.add(() => a.destroy())
  await a.synced()
  assert.equal(lb.openTo(0), 1)
  const watcher = await s.provider(n2, room, m.tokens.moderator, { state: { user: { name: 'Watcher' } } })
  const stateOf = (p, id) => p.awareness.getStates().get(id)
  await waitFor(() => stateOf(watcher, a.doc.clientID)?.user?.name === 'Mover', 10000, 'the mover\'s presence on node 2')
  // node 0 leaves the pool and its connections drop: the same provider reconnects to node 1
  lb.setDown(0); lb.setDown(1, false)
  lb.dropConnectionsTo(0)
  await waitFor(() => lb.openTo(1) === 1 && a.provider.wsconnected && a.provider.synced, 10000, 'the mover to reconnect through the balancer to node 1')
  // its presence is back on node 2 under its old id, stamped, and it keeps the claim: a change arrives
  a.awareness.setLocalStateField('cursor', 'moved')
  await waitFor(() => stateOf(watcher, a.doc.clientID)?.cursor === 'moved', 10000, 'the mover\'s new state (from node 1) at node 2')
  assert.equal(stateOf(watcher, a.doc.clientID).user.name, 'Mover')
  assert.equal(stateOf(watcher, a.doc.clientID).role, 'rapporteur')
  // and no removal from node 0 arriving late takes it away again: a round trip later it is there
  watcher.awareness.setLocalStateField('cursor', 'watching')
  await waitFor(() => stateOf(a, watcher.doc.clientID)?.cursor === 'watching', 10000, 'the watcher\'s change (node 2) at the moved client (node 1)')
  assert.equal(stateOf(watcher, a.doc.clientID)?.cursor, 'moved', 'the moved client\'s presence was removed at node 2')
})

test('nodes started together on an empty database: the demo meeting is seeded once, the generated admin token printed by one node only', { skip }, async (t) => {
  const s = scope(t)
  const url = storeFor(`demo-${uniqueId()}`, PG)
  s.add(() => psql(PG, `DROP DATABASE IF EXISTS ${new URL(url).pathname.slice(1)} WITH (FORCE)`).catch(() => {}))
  const nodes = [0, 1, 2].map(() => new Server({ argv: (srv) => ['serve', '--addr', '127.0.0.1:0', '--data-dir', srv.dataDir, '--store', url] }))
  for (const n of nodes) s.add(() => n.dispose())
  await Promise.all(nodes.map((n) => n._spawn()))
  await Promise.all(nodes.map((n) => nodeReady(n)))
  const tokenLines = nodes.map((n) => n.runStdout.split('\n').find((l) => /admin/i.test(l) && /token/i.test(l) && /[A-Za-z0-9_-]{20,}/.test(l)))
  const printing = tokenLines.filter(Boolean)
  assert.equal(printing.length, 1, `nodes that printed an admin token: ${printing.length}\n${nodes.map((n) => n.runStdout).join('\n----\n')}`)
  const admin = printing[0].match(/[A-Za-z0-9_-]{20,}/g).pop()
  for (const n of nodes) {
    const list = await n.request('GET', '/api/meetings', { token: admin })
    assert.equal(list.status, 200, `the printed admin token does not work on ${n.base}: ${list.text}`)
    assert.equal(list.json.meetings.length, 1, `${n.base} lists ${list.json.meetings.length} meetings, not the one demo meeting`)
    assert.equal(list.json.meetings[0].groups.length, 3)
  }
})
