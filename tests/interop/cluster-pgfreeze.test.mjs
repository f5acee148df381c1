// PostgreSQL frozen (issue 13, the contract's "Several nodes": no client on any node receives an
// update before it is committed in PostgreSQL): two nodes on a PostgreSQL cluster of this test
// alone (scripts/pg.sh in a temp folder); every process of that cluster is SIGSTOPped for a few
// seconds while a rapporteur types. Nothing typed during the freeze reaches any other client, on
// either node; after SIGCONT everything does, once, and it is all in the store.
// Skipped without PLENARY_TEST_PG_URL (the sign that the machine runs PostgreSQL tests) or without
// PostgreSQL's binaries.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Y, scope, waitFor, svCovers, addConclusion, findConclusion, openProvider, SLOW } from './harness.mjs'
import { Cluster, OwnPostgres, skipWithoutPg } from './lib/cluster.mjs'

const skip = skipWithoutPg || (OwnPostgres.available() ? false : 'PostgreSQL binaries (/usr/lib/postgresql/*/bin) or scripts/pg.sh absent')
const FREEZE_MS = 3000

test('PostgreSQL frozen (SIGSTOP of every process) for a few seconds: nothing is relayed during the freeze, everything after it, nothing lost', { skip }, async (t) => {
  const s = scope(t)
  const pg = await OwnPostgres.start()
  s.add(() => pg.stop())
  const cluster = await Cluster.start({ nodes: 2, pg: pg.url, meetings: [{ title: 'Frozen', groups: [{ id: 'wg-a', title: 'A' }] }] })
  s.add(() => cluster.dispose())
  const [a, b] = cluster.nodes
  const [m] = cluster.meetings
  const room = `${m.id}/wg-a`
  const open = async (node, token) => {
    const p = openProvider(node, room, token)
    s.add(() => p.destroy())
    await p.synced()
    return p
  }
  const w = await open(a, m.tokens.rapporteurs['wg-a'])
  const obsA = await open(a, m.tokens.participant) // the writer's own node
  const obsB = await open(b, m.tokens.participant)
  const wText = addConclusion(w.doc, { id: 'typed', text: '' }).get('text')
  const textAt = (p) => findConclusion(p.doc, 'typed')?.get('text').toString() ?? ''
  const typeInto = (str) => { for (const ch of str) wText.insert(wText.length, ch) }
  typeInto('before the freeze;')
  await waitFor(() => textAt(obsA) === 'before the freeze;' && textAt(obsB) === 'before the freeze;', 15000, 'the text typed before the freeze at both observers')
  const before = textAt(w)

  const frozen = pg.freeze()
  t.diagnostic(`froze PostgreSQL: ${frozen.length} processes`)
  let thawed = false
  try {
    const frozenAt = Date.now()
    // keystrokes during the freeze, each its own update (bounded: 30)
    const during = ' typed while PostgreSQL was frozen;'
    for (const ch of during) { typeInto(ch); await new Promise((resolve) => setTimeout(resolve, 10)) }
    // for the rest of the freeze, no observer gets any of it: a bounded watch of FREEZE_MS
    let health = null
    while (Date.now() - frozenAt < FREEZE_MS * SLOW) {
      for (const [name, o] of [['the observer on the writer\'s node', obsA], ['the observer on the other node', obsB]]) {
        assert.equal(textAt(o), before, `${name} received text typed while PostgreSQL was frozen (not yet committed): ${JSON.stringify(textAt(o))}`)
      }
      if (health === null) {
        // /healthz answers while frozen (503 once the node notices; it may say 200 before)
        b.request('GET', '/healthz').then((r) => { health = r.status }, () => { health = 'no answer' })
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    t.diagnostic(`/healthz on the other node during the freeze: ${health}`)
    pg.thaw()
    thawed = true
    const all = before + during
    await waitFor(() => textAt(obsA) === all && textAt(obsB) === all, 30000, 'everything typed during the freeze at both observers after the thaw')
      .catch((e) => { e.message += `\nobserver a: ${JSON.stringify(textAt(obsA))}\nobserver b: ${JSON.stringify(textAt(obsB))}`; throw e })
    // and typing carries on
    typeInto(' after the thaw.')
    const final = all + ' after the thaw.'
    await waitFor(() => textAt(obsA) === final && textAt(obsB) === final, 15000, 'text typed after the thaw at both observers')
    // nothing lost, nothing doubled: a late joiner on the other node reads it from the store
    const late = await open(b, m.tokens.moderator)
    assert.equal(textAt(late), final)
    assert.ok(svCovers(Y.decodeStateVector(Y.encodeStateVector(late.doc)), Y.decodeStateVector(Y.encodeStateVector(w.doc))), 'the late joiner lacks some of the writer\'s updates')
    assert.equal(late.doc.getArray('conclusions').length, 1)
    // both nodes healthy again
    for (const n of [a, b]) await waitFor(async () => (await n.request('GET', '/healthz')).status === 200, 15000, `${n.base} /healthz 200 after the thaw`)
  } finally {
    if (!thawed) pg.thaw()
  }
})
