// Issue 3: the plenary summary (live merge of every group's conclusions), moderator curation,
// exports, adopted versions, closing groups, and crash consistency.
// Run on its own with `bash tests/interop/run.sh --plenary`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  sharedServer, Y, RawClient, UpgradeRefused, scope, waitFor, randomToken, addConclusion, findConclusion, assertErrorBody, assertErrorJson
} from './harness.mjs'

const server = await sharedServer()

const GROUPS = [
  { id: 'wg-a', title: 'Alpha group' },
  { id: 'wg-b', title: 'Beta – «group» ✓' },
  { id: 'wg-c', title: 'Quiet group' }
]

/** A plenary follower: a plain Yjs client declaring the documented root types. */
async function followPlenary (s, srv, m, token) {
  const doc = new Y.Doc()
  doc.getMap('meta')
  doc.getArray('groups')
  doc.getMap('curation')
  return s.provider(srv, `${m.id}/plenary`, token, { doc })
}

/** groups of the plenary as [{id, title, conclusions: [{id, text, status}]}] */
const plenaryView = (doc) => doc.getArray('groups').toJSON().map((g) => ({
  id: g.id,
  title: g.title,
  conclusions: (g.conclusions || []).map((c) => ({ id: c.id, text: c.text, status: c.status }))
}))
/** the same view computed from the group docs (the expectation) */
const expectedView = (groups, docs) => groups.map((g) => ({
  id: g.id,
  title: g.title,
  conclusions: docs[g.id] ? docs[g.id].getArray('conclusions').toJSON().map((c) => ({ id: c.id, text: c.text, status: c.status })) : []
}))
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)
/** an export's groups without the `number` extension of each conclusion (the contract's fields) */
const contractGroups = (groups) => groups.map((g) => ({ ...g, conclusions: g.conclusions.map(({ number, ...c }) => c) }))

function typeInto (ytext, str) {
  for (const ch of str) ytext.insert(ytext.length, ch) // one update per keystroke
}

async function typedMeeting (s, srv = server) {
  const m = await srv.createMeeting({ title: 'Plenary test meeting', groups: GROUPS })
  const a = await s.provider(srv, `${m.id}/wg-a`, m.tokens.rapporteurs['wg-a'])
  const b = await s.provider(srv, `${m.id}/wg-b`, m.tokens.rapporteurs['wg-b'])
  typeInto(addConclusion(a.doc, { id: 'a1', text: '' }).get('text'), 'Train border guards')
  addConclusion(a.doc, { id: 'a2', text: 'Share <data> & "intelligence"' })
  addConclusion(a.doc, { id: 'a3', text: '   ' }) // whitespace only: in the plenary, not in exports
  typeInto(addConclusion(b.doc, { id: 'b1', text: '' }).get('text'), 'Harmonise the Handbook')
  addConclusion(b.doc, { id: 'b2', text: 'Second line\nof a conclusion', status: 'final' })
  return { m, a, b, docs: { 'wg-a': a.doc, 'wg-b': b.doc } }
}

test('plenary: rapporteurs of two groups type, a participant following the plenary sees every conclusion\'s current text', async (t) => {
  const s = scope(t)
  const { m, a, b, docs } = await typedMeeting(s)
  const p = await followPlenary(s, server, m, m.tokens.participant)
  await waitFor(() => same(plenaryView(p.doc), expectedView(GROUPS, docs)), 15000, 'plenary to match the groups')
    .catch((e) => { e.message += `\nplenary: ${JSON.stringify(plenaryView(p.doc))}\nexpected: ${JSON.stringify(expectedView(GROUPS, docs))}`; throw e })
  const json = JSON.stringify(p.doc.toJSON())
  for (const text of ['Train border guards', 'Share <data> & \\"intelligence\\"', 'Harmonise the Handbook', 'Second line\\nof a conclusion']) {
    assert.ok(json.includes(text), `doc.toJSON() lacks ${text}`)
  }
  assert.equal(p.doc.getMap('meta').get('meeting_id'), m.id)
  assert.equal(p.doc.getMap('meta').get('title'), 'Plenary test meeting')
  assert.deepEqual(plenaryView(p.doc)[2], { id: 'wg-c', title: 'Quiet group', conclusions: [] }, 'a group without conclusions has its section')
  assert.ok(p.doc.getArray('groups').get(0).get('conclusions').get(0).get('text') instanceof Y.Text, 'plenary conclusion text is not a Y.Text')

  // live: edit in the middle, status change, delete, reorder, new item; all reflected
  findConclusion(a.doc, 'a1').get('text').insert(6, 'all ')
  findConclusion(b.doc, 'b1').set('status', 'final')
  const arrA = a.doc.getArray('conclusions')
  arrA.delete(arrA.toArray().findIndex((c) => c.get('id') === 'a2'), 1)
  const arrB = b.doc.getArray('conclusions')
  b.doc.transact(() => { // move b2 before b1
    const idx = arrB.toArray().findIndex((c) => c.get('id') === 'b2')
    const c = arrB.get(idx).toJSON()
    arrB.delete(idx, 1)
    addConclusion(b.doc, { id: c.id, text: c.text, status: c.status, author: c.author }, 0)
  })
  typeInto(addConclusion(a.doc, { id: 'a4', text: '' }).get('text'), 'Late addition')
  await waitFor(() => same(plenaryView(p.doc), expectedView(GROUPS, docs)), 15000, 'plenary to follow edits, deletes and reorders')
    .catch((e) => { e.message += `\nplenary: ${JSON.stringify(plenaryView(p.doc))}\nexpected: ${JSON.stringify(expectedView(GROUPS, docs))}`; throw e })
  assert.equal(plenaryView(p.doc)[0].conclusions[0].text, 'Train all border guards')
  assert.deepEqual(plenaryView(p.doc)[1].conclusions.map((c) => c.id), ['b2', 'b1'])

  // a late follower gets the same
  const late = await followPlenary(s, server, m, m.tokens.moderator)
  assert.deepEqual(plenaryView(late.doc), expectedView(GROUPS, docs))
})

test('plenary: a one-character edit in a group reaches a plenary follower as a small update', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting({ title: 'Sizes', groups: GROUPS })
  const a = await s.provider(server, `${m.id}/wg-a`, m.tokens.rapporteurs['wg-a'])
  for (let i = 0; i < 40; i++) addConclusion(a.doc, { id: `big-${i}`, text: `Conclusion ${i}: ` + 'lorem ipsum dolor sit amet '.repeat(40) })
  const raw = await RawClient.connect(server.wsUrl(`${m.id}/plenary`, { token: m.tokens.participant }))
  s.add(() => raw.destroy())
  await waitFor(() => raw.doc.getArray('groups').toJSON()[0]?.conclusions?.length === 40, 15000, 'the big summary at the follower')
  const summaryBytes = Y.encodeStateAsUpdate(raw.doc).length
  const n = raw.messages.length
  findConclusion(a.doc, 'big-20').get('text').insert(3, 'Z')
  await waitFor(() => raw.doc.getArray('groups').toJSON()[0].conclusions[20].text.startsWith('ConZ'), 15000, 'the keystroke at the follower')
  const bytes = raw.messages.slice(n).filter((x) => x.type === 'sync').reduce((acc, x) => acc + x.update.length, 0)
  assert.ok(bytes < 1000, `a one-character edit cost a plenary follower ${bytes} bytes of updates (summary is ${summaryBytes} bytes)`)
})

test('plenary: curation by a moderator is visible to all and refused from a rapporteur or participant', async (t) => {
  const s = scope(t)
  const { m } = await typedMeeting(s)
  const mod = await followPlenary(s, server, m, m.tokens.moderator)
  const part = await followPlenary(s, server, m, m.tokens.participant)
  const rap = await followPlenary(s, server, m, m.tokens.rapporteurs['wg-a'])
  const cur = (p) => p.doc.getMap('curation')
  await waitFor(() => cur(mod).get('intro') instanceof Y.Text && cur(mod).get('closing') instanceof Y.Text && cur(mod).get('hidden') instanceof Y.Map,
    10000, 'server-created intro, closing and hidden')

  mod.doc.transact(() => {
    cur(mod).set('order', ['wg-b', 'wg-c', 'wg-a'])
    cur(mod).get('hidden').set('wg-a/a2', true)
    cur(mod).set('presenting', 'wg-b/b1')
    cur(mod).get('intro').insert(0, 'Welcome to the plenary')
    cur(mod).get('closing').insert(0, 'Thank you')
  })
  const want = { order: ['wg-b', 'wg-c', 'wg-a'], hidden: { 'wg-a/a2': true }, presenting: 'wg-b/b1', intro: 'Welcome to the plenary', closing: 'Thank you' }
  const curJSON = (p) => {
    const c = cur(p).toJSON()
    return { order: c.order, hidden: c.hidden, presenting: c.presenting, intro: c.intro, closing: c.closing }
  }
  await waitFor(() => same(curJSON(part), want) && same(curJSON(rap), want), 10000, 'curation at the participant and the rapporteur')
  assert.equal(mod.auth.length, 0, 'the moderator got permission denied')

  // a rapporteur and a participant try to curate
  cur(rap).set('presenting', 'wg-a/a1')
  cur(rap).get('intro').insert(0, 'HACK-R ')
  cur(rap).get('hidden').delete('wg-a/a2')
  await waitFor(() => rap.auth.length >= 1, 10000, 'permission denied for the rapporteur')
  cur(part).set('order', ['wg-a'])
  cur(part).get('closing').insert(0, 'HACK-P ')
  await waitFor(() => part.auth.length >= 1, 10000, 'permission denied for the participant')
  // nor can they write the server-kept part
  rap.doc.getArray('groups').get(0).get('conclusions').get(0).get('text').insert(0, 'HACK-G ')
  await waitFor(() => rap.auth.length >= 2, 10000, 'permission denied for writing the groups part')

  // barrier: a later moderator edit reaches everyone; the refused ones never do
  cur(mod).get('intro').insert(cur(mod).get('intro').length, '!')
  const check = await followPlenary(s, server, m, m.tokens.participant)
  await waitFor(() => cur(check).get('intro')?.toString() === 'Welcome to the plenary!', 10000, 'moderator barrier edit')
  for (const [who, p] of [['moderator', mod], ['late participant', check]]) {
    const j = JSON.stringify(p.doc.toJSON())
    assert.ok(!j.includes('HACK'), `refused curation reached ${who}: ${j}`)
    assert.equal(cur(p).get('presenting'), 'wg-b/b1')
    assert.deepEqual(cur(p).get('order'), ['wg-b', 'wg-c', 'wg-a'])
    assert.equal(cur(p).get('hidden').get('wg-a/a2'), true)
  }
  assert.ok(rap.provider.wsconnected && part.provider.wsconnected, 'a refused client was disconnected')

  // un-presenting: null or absent
  cur(mod).set('presenting', null)
  await waitFor(() => cur(check).get('presenting') == null, 10000, 'presenting cleared')
})

async function getExport (srv, m, what, token) {
  return srv.request('GET', `/api/meetings/${m.id}/${what}`, { token })
}

const exportFrom = (groups, docs, { hidden = {}, order } = {}) => {
  const gs = order ? order.map((id) => groups.find((g) => g.id === id)) : groups
  return gs.map((g) => ({
    id: g.id,
    title: g.title,
    conclusions: (docs[g.id] ? docs[g.id].getArray('conclusions').toJSON() : [])
      .filter((c) => c.text.trim() !== '' && !hidden[`${g.id}/${c.id}`])
      .map((c) => ({ id: c.id, text: c.text, status: c.status }))
  }))
}

function checkMarkdown (md, title, groups) {
  const lines = md.split('\n')
  const h1 = lines.filter((l) => l.startsWith('# '))
  assert.deepEqual(h1, [`# ${title}`], `markdown title lines: ${JSON.stringify(h1)}`)
  const h2 = lines.filter((l) => l.startsWith('## ')).map((l) => l.slice(3).trim())
  assert.deepEqual(h2, groups.map((g) => g.title), 'markdown group headings')
  // each conclusion is one list item, under its group's heading
  let current = -1
  const items = groups.map(() => [])
  for (const l of lines) {
    if (l.startsWith('## ')) current++
    else if (l.startsWith('- ')) items[current].push(l)
  }
  groups.forEach((g, i) => {
    assert.equal(items[i].length, g.conclusions.length, `markdown items of ${g.id}: ${JSON.stringify(items[i])}`)
    g.conclusions.forEach((c, k) => {
      const word = /[A-Za-z0-9]{4,}/.exec(c.text)[0]
      assert.ok(items[i][k].includes(word), `markdown item ${k} of ${g.id}: ${items[i][k]} vs ${c.text}`)
    })
  })
}

test('exports: summary.json, .md and .html match what was typed, honour curation, for any token', async (t) => {
  const s = scope(t)
  const { m, a, docs } = await typedMeeting(s)
  addConclusion(a.doc, { id: 'a5', text: '<script>alert(1)</script> & more' })
  const expected = exportFrom(GROUPS, docs)
  let last
  await waitFor(async () => {
    last = await getExport(server, m, 'summary.json', m.tokens.participant)
    return last.status === 200 && same(contractGroups(last.json.groups), expected)
  }, 15000, 'summary.json to match the typed conclusions')
    .catch((e) => { e.message += `\ngot: ${last?.text}\nexpected groups: ${JSON.stringify(expected)}`; throw e })
  const j = last.json
  assert.match(last.headers.get('content-type') || '', /application\/json/)
  assert.deepEqual(Object.keys(j).sort(), ['generated_at', 'groups', 'meeting'])
  assert.deepEqual(j.meeting, { id: m.id, title: 'Plenary test meeting' })
  assert.match(j.generated_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/, 'generated_at is not RFC 3339')
  assert.ok(Math.abs(Date.parse(j.generated_at) - Date.now()) < 120000, 'generated_at is not now')
  assert.deepEqual(j.groups[2], { id: 'wg-c', title: 'Quiet group', conclusions: [] })
  assert.ok(!j.groups[0].conclusions.some((c) => c.id === 'a3'), 'whitespace-only conclusion exported')

  for (const token of [m.tokens.moderator, m.tokens.rapporteurs['wg-b']]) {
    const r = await getExport(server, m, 'summary.json', token)
    assert.equal(r.status, 200)
    assert.deepEqual(contractGroups(r.json.groups), expected)
  }
  const viaQuery = await server.request('GET', `/api/meetings/${m.id}/summary.json?token=${m.tokens.participant}`)
  assert.equal(viaQuery.status, 200)

  const md = await getExport(server, m, 'summary.md', m.tokens.participant)
  assert.equal(md.status, 200)
  checkMarkdown(md.text, 'Plenary test meeting', expected)

  const html = await getExport(server, m, 'summary.html', m.tokens.participant)
  assert.equal(html.status, 200)
  assert.match(html.headers.get('content-type') || '', /text\/html/)
  assert.match(html.text, /<html[\s>]/i)
  assert.match(html.text, /<\/html>\s*$/i)
  assert.ok(!html.text.includes('<script>alert(1)</script>'), 'conclusion text not HTML-escaped')
  assert.ok(html.text.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'escaped conclusion missing')
  for (const g of expected) assert.ok(html.text.includes(g.title.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')) || html.text.includes(g.title), `html lacks ${g.title}`)
  assert.ok(html.text.includes('Train border guards') && html.text.includes('Harmonise the Handbook'))
  assert.ok(!/<script\b/i.test(html.text) || !/src=["']https?:/i.test(html.text), 'html is not standalone')

  // refusals
  assertErrorBody(await getExport(server, m, 'summary.json'), 401, 'summary without token')
  assertErrorBody(await getExport(server, m, 'summary.json', randomToken()), 401, 'summary with an invalid token')
  const other = await server.createMeeting()
  assertErrorBody(await getExport(server, m, 'summary.md', other.tokens.moderator), 403, 'summary with another meeting\'s token')
  assertErrorBody(await server.request('GET', `/api/meetings/${other.id}x/summary.json`, { token: other.tokens.moderator }), 404, 'summary of an unknown meeting')

  // curation: moderator order, hidden item left out; hidden stays hidden when its text changes
  const mod = await followPlenary(s, server, m, m.tokens.moderator)
  await waitFor(() => mod.doc.getMap('curation').get('hidden') instanceof Y.Map, 10000, 'curation.hidden')
  mod.doc.transact(() => {
    mod.doc.getMap('curation').set('order', ['wg-b', 'wg-c', 'wg-a'])
    mod.doc.getMap('curation').get('hidden').set('wg-a/a1', true)
  })
  findConclusion(a.doc, 'a1').get('text').insert(0, 'Edited: ')
  const curated = () => exportFrom(GROUPS, docs, { order: ['wg-b', 'wg-c', 'wg-a'], hidden: { 'wg-a/a1': true } })
  await waitFor(async () => {
    last = await getExport(server, m, 'summary.json', m.tokens.participant)
    return last.status === 200 && same(contractGroups(last.json.groups), curated())
  }, 15000, 'summary.json to follow curation').catch((e) => { e.message += `\ngot: ${last?.text}`; throw e })
  const md2 = await getExport(server, m, 'summary.md', m.tokens.participant)
  checkMarkdown(md2.text, 'Plenary test meeting', curated())
  const html2 = await getExport(server, m, 'summary.html', m.tokens.participant)
  assert.ok(!html2.text.includes('Train border guards'), 'hidden conclusion in the HTML export')
  assert.ok(html2.text.indexOf('Harmonise the Handbook') < html2.text.indexOf('Share &lt;data&gt;'), 'HTML export ignores the moderator\'s order')

  // un-hide: it comes back with its current text
  mod.doc.getMap('curation').get('hidden').delete('wg-a/a1')
  const unhidden = () => exportFrom(GROUPS, docs, { order: ['wg-b', 'wg-c', 'wg-a'] })
  await waitFor(async () => {
    last = await getExport(server, m, 'summary.json', m.tokens.participant)
    return last.status === 200 && same(contractGroups(last.json.groups), unhidden())
  }, 15000, 'un-hidden conclusion back in summary.json').catch((e) => { e.message += `\ngot: ${last?.text}`; throw e })
  assert.ok(JSON.stringify(last.json).includes('Edited: Train border guards'))
})

test('versions: a moderator adopts frozen versions; listed and exported unchanged later; others refused', async (t) => {
  const s = scope(t)
  const { m, a, docs } = await typedMeeting(s)
  const expected = exportFrom(GROUPS, docs)
  await waitFor(async () => same(contractGroups((await getExport(server, m, 'summary.json', m.tokens.moderator)).json?.groups ?? []), expected), 15000, 'current summary')
  const cur = await getExport(server, m, 'summary.json', m.tokens.moderator)
  const curMd = await getExport(server, m, 'summary.md', m.tokens.moderator)

  const post = await server.request('POST', `/api/meetings/${m.id}/versions`, { token: m.tokens.moderator, body: { label: 'Adopted – final ✓' } })
  assert.equal(post.status, 201, post.text)
  const v = post.json
  assert.ok(v.id !== undefined && v.id !== null && String(v.id).length > 0)
  assert.equal(v.label, 'Adopted – final ✓')
  assert.ok(!Number.isNaN(Date.parse(v.created_at)), `created_at ${v.created_at}`)

  for (const token of [m.tokens.rapporteurs['wg-a'], m.tokens.participant]) {
    assertErrorBody(await server.request('POST', `/api/meetings/${m.id}/versions`, { token, body: { label: 'nope' } }), 403, 'version by a non-moderator')
  }
  assertErrorBody(await server.request('POST', `/api/meetings/${m.id}/versions`, { body: { label: 'nope' } }), 401, 'version without token')

  // typed after adoption: the version does not change
  findConclusion(a.doc, 'a1').get('text').insert(0, 'CHANGED ')
  await waitFor(async () => JSON.stringify((await getExport(server, m, 'summary.json', m.tokens.moderator)).json).includes('CHANGED'), 15000, 'current summary to change')

  const list = await server.request('GET', `/api/meetings/${m.id}/versions`, { token: m.tokens.participant })
  assert.equal(list.status, 200)
  assert.deepEqual(list.json.versions.map((x) => [String(x.id), x.label]), [[String(v.id), 'Adopted – final ✓']])
  const vj = await getExport(server, m, `versions/${v.id}/summary.json`, m.tokens.participant)
  assert.equal(vj.status, 200)
  assert.deepEqual(vj.json.meeting, cur.json.meeting)
  assert.deepEqual(vj.json.groups, cur.json.groups, 'adopted version differs from the summary at adoption time')
  assert.ok(!JSON.stringify(vj.json).includes('CHANGED'), 'adopted version changed after adoption')
  const vmd = await getExport(server, m, `versions/${v.id}/summary.md`, m.tokens.rapporteurs['wg-b'])
  assert.equal(vmd.status, 200)
  // an adopted version's file says so under its title (label and adoption time), else it is the same
  assert.match(vmd.text, /^# Plenary test meeting\n\n\*Adopted version «Adopted – final ✓», \d+ \w+ \d{4} \d\d:\d\d UTC\*\n/)
  assert.equal(vmd.text.replace(/\n\*Adopted version [^\n]*\*\n/, ''), curMd.text, 'adopted markdown differs from the markdown at adoption time')
  const vhtml = await getExport(server, m, `versions/${v.id}/summary.html`, m.tokens.moderator)
  assert.equal(vhtml.status, 200)
  assert.ok(vhtml.text.includes('Train border guards') && !vhtml.text.includes('CHANGED'))
  assertErrorBody(await getExport(server, m, 'versions/999999999/summary.json', m.tokens.moderator), 404, 'unknown version')

  // a second version, listed after the first
  const post2 = await server.request('POST', `/api/meetings/${m.id}/versions`, { token: m.tokens.moderator, body: { label: 'second' } })
  assert.equal(post2.status, 201)
  const list2 = await server.request('GET', `/api/meetings/${m.id}/versions`, { token: m.tokens.moderator })
  assert.deepEqual(list2.json.versions.map((x) => x.label), ['Adopted – final ✓', 'second'])
  const v2 = await getExport(server, m, `versions/${post2.json.id}/summary.json`, m.tokens.moderator)
  assert.ok(JSON.stringify(v2.json).includes('CHANGED Train border guards'))
})

test('closing a group turns it read-only for everyone at once; reopening restores writes', async (t) => {
  const s = scope(t)
  const { m, a } = await typedMeeting(s)
  const obs = await s.provider(server, `${m.id}/wg-a`, m.tokens.participant)
  const modA = await s.provider(server, `${m.id}/wg-a`, m.tokens.moderator)
  const p = await followPlenary(s, server, m, m.tokens.participant)
  assertErrorBody(await server.request('POST', `/api/meetings/${m.id}/groups/wg-a/close`, { token: m.tokens.rapporteurs['wg-a'] }), 403, 'close by a rapporteur')
  const close = await server.request('POST', `/api/meetings/${m.id}/groups/wg-a/close`, { token: m.tokens.moderator })
  assert.equal(close.status, 200, close.text)
  await waitFor(() => p.doc.getArray('groups').get(0)?.get('closed') === true, 10000, 'plenary to show wg-a closed')
  const info = await server.request('GET', `/api/meetings/${m.id}`, { token: m.tokens.participant })
  assert.equal(info.json.groups.find((g) => g.id === 'wg-a').closed, true)

  findConclusion(a.doc, 'a1').get('text').insert(0, 'AFTER-CLOSE ')
  await waitFor(() => a.auth.length >= 1, 10000, 'permission denied for the rapporteur of a closed group')
  addConclusion(modA.doc, { id: 'mod-after-close', text: 'AFTER-CLOSE-MOD' })
  await waitFor(() => modA.auth.length >= 1, 10000, 'permission denied for the moderator in a closed group')
  assert.ok(a.provider.wsconnected && modA.provider.wsconnected, 'closing disconnected a writer')

  const reopen = await server.request('POST', `/api/meetings/${m.id}/groups/wg-a/reopen`, { token: m.tokens.moderator })
  assert.equal(reopen.status, 200, reopen.text)
  // (a client whose edits were refused holds updates the server never applied; Yjs makes every
  // later edit of that client id depend on them, so the rapporteur reloads with a fresh doc)
  const a2 = await s.provider(server, `${m.id}/wg-a`, m.tokens.rapporteurs['wg-a'])
  addConclusion(a2.doc, { id: 'after-reopen', text: 'AFTER-REOPEN' })
  await waitFor(() => findConclusion(obs.doc, 'after-reopen'), 10000, 'a write after reopening')
  const late = await s.provider(server, `${m.id}/wg-a`, m.tokens.participant)
  assert.ok(!JSON.stringify(late.doc.getArray('conclusions').toJSON()).includes('AFTER-CLOSE'), 'a write to a closed group was applied')

  // the whole meeting
  const closeAll = await server.request('POST', `/api/meetings/${m.id}/close`, { token: m.tokens.moderator })
  assert.equal(closeAll.status, 200, closeAll.text)
  await waitFor(() => p.doc.getArray('groups').toJSON().every((g) => g.closed === true), 10000, 'every group closed in the plenary')
  const reopenAll = await server.request('POST', `/api/meetings/${m.id}/reopen`, { token: m.tokens.moderator })
  assert.equal(reopenAll.status, 200, reopenAll.text)
  await waitFor(() => p.doc.getArray('groups').toJSON().every((g) => g.closed === false), 10000, 'every group reopened in the plenary')

  // response bodies per docs/PLENARY_LAYOUT.md: the group, {id, title, closed}
  assert.deepEqual(close.json, { id: 'wg-a', title: 'Alpha group', closed: true }, `close response: ${close.text}`)
  assert.deepEqual(reopen.json, { id: 'wg-a', title: 'Alpha group', closed: false }, `reopen response: ${reopen.text}`)
})

test('plenary room upgrade: any token of the meeting; 401 and 403 otherwise', async () => {
  const m = await server.createMeeting({ groups: GROUPS })
  const other = await server.createMeeting()
  for (const token of [m.tokens.participant, m.tokens.moderator, m.tokens.rapporteurs['wg-c']]) {
    const c = await RawClient.connect(server.wsUrl(`${m.id}/plenary`, { token }))
    c.destroy()
  }
  for (const [params, status] of [[{}, 401], [{ token: randomToken() }, 401], [{ token: other.tokens.moderator }, 403]]) {
    let err
    try { (await RawClient.connect(server.wsUrl(`${m.id}/plenary`, params))).destroy() } catch (e) { err = e }
    assert.ok(err instanceof UpgradeRefused, `expected ${status}, got ${err?.message || 'open'}`)
    assert.equal(err.status, status)
    assertErrorJson(err.json, err.body, `plenary ${status}`)
  }
})

test('kill -9 right after a group write: the plenary is consistent after restart; versions survive', async (t) => {
  const s = scope(t)
  const srv = await s.server()
  const { m, a, b } = await typedMeeting(s, srv)
  const p = await followPlenary(s, srv, m, m.tokens.participant)
  await waitFor(() => JSON.stringify(p.doc.toJSON()).includes('Harmonise the Handbook'), 15000, 'initial merge')
  const v = await srv.request('POST', `/api/meetings/${m.id}/versions`, { token: m.tokens.moderator, body: { label: 'before crash' } })
  assert.equal(v.status, 201)
  const vBefore = await srv.request('GET', `/api/meetings/${m.id}/versions/${v.json.id}/summary.json`, { token: m.tokens.moderator })

  // group writes seen by another client of the group, then kill -9 at once (the merge may not have run)
  const obsA = await s.provider(srv, `${m.id}/wg-a`, m.tokens.moderator)
  findConclusion(a.doc, 'a1').get('text').insert(0, 'JUST-BEFORE-CRASH ')
  const arrB = b.doc.getArray('conclusions')
  arrB.delete(arrB.toArray().findIndex((c) => c.get('id') === 'b1'), 1)
  addConclusion(a.doc, { id: 'a-crash', text: 'NEW-BEFORE-CRASH' })
  const obsB = await s.provider(srv, `${m.id}/wg-b`, m.tokens.moderator)
  await waitFor(() => findConclusion(obsA.doc, 'a-crash') && findConclusion(obsA.doc, 'a1').get('text').toString().startsWith('JUST-BEFORE-CRASH') &&
    !findConclusion(obsB.doc, 'b1'), 10000, 'another client to see the group writes')
  await srv.crash()
  const expectA = obsA.doc.getArray('conclusions').toJSON()
  const expectB = obsB.doc.getArray('conclusions').toJSON()
  for (const x of [a, b, p, obsA, obsB]) x.destroy()

  await srv.start()
  const p2 = await followPlenary(s, srv, m, m.tokens.participant)
  const docsAfter = {
    'wg-a': (await s.provider(srv, `${m.id}/wg-a`, m.tokens.participant)).doc,
    'wg-b': (await s.provider(srv, `${m.id}/wg-b`, m.tokens.participant)).doc
  }
  assert.deepEqual(docsAfter['wg-a'].getArray('conclusions').toJSON(), expectA, 'group a lost writes')
  assert.deepEqual(docsAfter['wg-b'].getArray('conclusions').toJSON(), expectB, 'group b lost writes')
  await waitFor(() => same(plenaryView(p2.doc), expectedView(GROUPS, docsAfter)), 15000, 'plenary consistent with the groups after restart')
    .catch((e) => { e.message += `\nplenary: ${JSON.stringify(plenaryView(p2.doc))}\nexpected: ${JSON.stringify(expectedView(GROUPS, docsAfter))}`; throw e })
  const json = await srv.request('GET', `/api/meetings/${m.id}/summary.json`, { token: m.tokens.participant })
  assert.ok(json.text.includes('NEW-BEFORE-CRASH') && json.text.includes('JUST-BEFORE-CRASH'))
  assert.ok(!json.json.groups.find((g) => g.id === 'wg-b').conclusions.some((c) => c.id === 'b1'), 'deleted conclusion back after restart')
  const vAfter = await srv.request('GET', `/api/meetings/${m.id}/versions/${v.json.id}/summary.json`, { token: m.tokens.moderator })
  assert.equal(vAfter.status, 200)
  assert.deepEqual(vAfter.json, vBefore.json, 'adopted version changed across kill -9 and restart')
})
