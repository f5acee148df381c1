// HTTP side of the contract: meetings API, refusals at the WebSocket upgrade, /healthz, /metrics,
// and tokens kept out of the logs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  sharedServer, RawClient, UpgradeRefused, scope, waitFor, uniqueId, randomToken, assertErrorBody, assertErrorJson, addParagraph
} from './harness.mjs'

const server = await sharedServer()

const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/

test('GET /healthz answers 200 ok', async () => {
  const res = await server.request('GET', '/healthz')
  assert.equal(res.status, 200)
  assert.equal(res.text.trim(), 'ok')
})

test('POST /api/meetings: 201 with tokens and links', async () => {
  const id = uniqueId('skopje')
  const groups = [{ id: 'wg-migrants', title: 'Migrants with weapons' }, { id: 'wg-handbook', title: 'Handbook – «frontière» ✓' }, { id: 'wg-trends', title: 'New trends' }]
  const res = await server.request('POST', '/api/meetings', { token: server.adminToken, body: { id, title: 'Skopje 2023 — ünïcødé', groups } })
  assert.equal(res.status, 201, res.text)
  assert.match(res.headers.get('content-type') || '', /application\/json/)
  const b = res.json
  assert.equal(b.id, id)
  assert.equal(b.title, 'Skopje 2023 — ünïcødé')
  assert.deepEqual(b.groups.map((g) => ({ id: g.id, title: g.title })), groups)
  const t = b.tokens
  assert.ok(t && typeof t.moderator === 'string' && typeof t.participant === 'string', `tokens: ${JSON.stringify(t)}`)
  assert.deepEqual(Object.keys(t.rapporteurs).sort(), groups.map((g) => g.id).sort())
  const all = [t.moderator, t.participant, ...Object.values(t.rapporteurs)]
  for (const tok of all) assert.ok(typeof tok === 'string' && tok.length >= 16, `weak or missing token ${tok}`)
  assert.equal(new Set(all).size, all.length, 'tokens are not distinct')

  // links: full web-client URLs, capability in the fragment (never in path or query)
  const l = b.links
  assert.ok(l && typeof l === 'object', `links: ${JSON.stringify(l)}`)
  const check = (link, pathname, token, what) => {
    assert.equal(typeof link, 'string', `${what} link missing`)
    const u = new URL(link)
    assert.match(u.protocol, /^https?:$/, `${what}: not a full URL: ${link}`)
    assert.equal(u.pathname, pathname, `${what}: ${link}`)
    assert.equal(u.search, '', `${what}: query string in ${link}`)
    assert.equal(u.hash, `#token=${token}`, `${what}: ${link}`)
  }
  check(l.moderator, `/m/${id}/console`, t.moderator, 'moderator')
  check(l.participant, `/m/${id}`, t.participant, 'participant')
  check(l.projector, `/m/${id}/projector`, t.participant, 'projector')
  assert.deepEqual(Object.keys(l.rapporteurs).sort(), groups.map((g) => g.id).sort())
  for (const g of groups) check(l.rapporteurs[g.id], `/m/${id}/g/${g.id}`, t.rapporteurs[g.id], `rapporteur ${g.id}`)

  // the meeting exists, and its rooms accept these tokens
  const get = await server.request('GET', `/api/meetings/${id}`, { token: t.participant })
  assert.equal(get.status, 200)
  const raw = await RawClient.connect(server.wsUrl(`${id}/wg-trends`, { token: t.rapporteurs['wg-trends'] }))
  raw.destroy()
})

test('POST /api/meetings without id generates a valid one; ids of 63 chars are accepted', async () => {
  const res = await server.request('POST', '/api/meetings', { token: server.adminToken, body: { title: 'No id', groups: [{ id: 'g1', title: 'G1' }] } })
  assert.equal(res.status, 201, res.text)
  assert.match(res.json.id, ID_RE)
  const get = await server.request('GET', `/api/meetings/${res.json.id}`, { token: res.json.tokens.moderator })
  assert.equal(get.status, 200)
  assert.equal(get.json.title, 'No id')
  const res2 = await server.request('POST', '/api/meetings', { token: server.adminToken, body: { title: 'No id', groups: [{ id: 'g1', title: 'G1' }] } })
  assert.equal(res2.status, 201, res2.text)
  assert.notEqual(res2.json.id, res.json.id)

  const long = ('x' + uniqueId('').replace(/-/g, '') + 'a'.repeat(70)).slice(0, 63)
  const gid = 'g' + '1'.repeat(62)
  const res3 = await server.request('POST', '/api/meetings', { token: server.adminToken, body: { id: long, title: 'Long', groups: [{ id: gid, title: 'long group' }] } })
  assert.equal(res3.status, 201, `63-char ids: ${res3.text}`)
  assert.equal(res3.json.id, long)
  assert.deepEqual(Object.keys(res3.json.tokens.rapporteurs), [gid])
})

test('POST /api/meetings: 401 without or with a wrong admin token', async () => {
  const body = { id: uniqueId(), title: 'x', groups: [{ id: 'g1', title: 'G1' }] }
  assertErrorBody(await server.request('POST', '/api/meetings', { body }), 401, 'no Authorization')
  assertErrorBody(await server.request('POST', '/api/meetings', { body, token: randomToken() }), 401, 'wrong admin token')
  assertErrorBody(await server.request('POST', '/api/meetings', { body, token: '' }), 401, 'empty bearer')
  assertErrorBody(await server.request('POST', '/api/meetings', { body, headers: { authorization: `Basic ${Buffer.from('admin:' + server.adminToken).toString('base64')}` } }), 401, 'Basic scheme')
  assertErrorBody(await server.request('POST', '/api/meetings', { body, token: server.adminToken + 'x' }), 401, 'admin token with a suffix')
  const m = await server.createMeeting()
  assertErrorBody(await server.request('POST', '/api/meetings', { body, token: m.tokens.moderator }), 401, 'a meeting moderator token is not the admin token')
  // none of these created the meeting
  assert.equal((await server.request('POST', '/api/meetings', { body, token: server.adminToken })).status, 201)
})

test('POST /api/meetings: 409 for an existing id', async () => {
  const id = uniqueId()
  const first = await server.request('POST', '/api/meetings', { token: server.adminToken, body: { id, title: 'first', groups: [{ id: 'g', title: 'G' }] } })
  assert.equal(first.status, 201)
  const again = await server.request('POST', '/api/meetings', { token: server.adminToken, body: { id, title: 'second', groups: [{ id: 'g1', title: 'G1' }] } })
  assertErrorBody(again, 409, 'duplicate id')
  // the first one is unchanged, its tokens still valid
  const get = await server.request('GET', `/api/meetings/${id}`, { token: first.json.tokens.participant })
  assert.equal(get.status, 200)
  assert.equal(get.json.title, 'first')
})

test('POST /api/meetings: 400 for a bad body', async () => {
  const g = [{ id: 'wg-a', title: 'A' }]
  const cases = {
    'invalid JSON': { rawBody: '{"title": "x", ' },
    'not an object': { rawBody: '[1,2,3]' },
    'uppercase id': { body: { id: 'Bad-Id', title: 'x', groups: g } },
    'underscore in id': { body: { id: 'bad_id', title: 'x', groups: g } },
    'id starting with a hyphen': { body: { id: '-bad', title: 'x', groups: g } },
    'id of 64 chars': { body: { id: 'a'.repeat(64), title: 'x', groups: g } },
    'empty id': { body: { id: '', title: 'x', groups: g } },
    'id with a slash': { body: { id: 'a/b', title: 'x', groups: g } },
    'group id "plenary"': { body: { id: uniqueId(), title: 'x', groups: [{ id: 'plenary', title: 'P' }] } },
    'invalid group id': { body: { id: uniqueId(), title: 'x', groups: [{ id: 'WG A', title: 'A' }] } },
    'group id of 64 chars': { body: { id: uniqueId(), title: 'x', groups: [{ id: 'g'.repeat(64), title: 'A' }] } },
    'duplicate group ids': { body: { id: uniqueId(), title: 'x', groups: [{ id: 'wg-a', title: 'A' }, { id: 'wg-a', title: 'A again' }] } },
    'groups not an array': { body: { id: uniqueId(), title: 'x', groups: 'wg-a' } },
    'title not a string': { body: { id: uniqueId(), title: 42, groups: g } },
    'group without id': { body: { id: uniqueId(), title: 'x', groups: [{ title: 'A' }] } }
  }
  for (const [name, c] of Object.entries(cases)) {
    const res = await server.request('POST', '/api/meetings', { token: server.adminToken, ...c })
    assertErrorBody(res, 400, name)
    const id = c.body?.id
    if (typeof id === 'string' && ID_RE.test(id)) {
      const get = await server.request('GET', `/api/meetings/${id}`, { token: randomToken() })
      assert.equal(get.status, 404, `${name}: the refused meeting was created anyway`)
    }
  }
})

test('GET /api/meetings/{m}: any token of the meeting, as Bearer or ?token=', async () => {
  const m = await server.createMeeting({ title: 'Get me', groups: [{ id: 'wg-x', title: 'X' }, { id: 'wg-y', title: 'Y' }] })
  const tokens = { moderator: m.tokens.moderator, participant: m.tokens.participant, rapporteur: m.tokens.rapporteurs['wg-y'] }
  for (const [role, token] of Object.entries(tokens)) {
    for (const how of ['bearer', 'query']) {
      const res = how === 'bearer'
        ? await server.request('GET', `/api/meetings/${m.id}`, { token })
        : await server.request('GET', `/api/meetings/${m.id}?token=${encodeURIComponent(token)}`)
      assert.equal(res.status, 200, `${role} via ${how}: ${res.status} ${res.text}`)
      assert.equal(res.json.id, m.id)
      assert.equal(res.json.title, 'Get me')
      assert.deepEqual(res.json.groups.map((g) => ({ id: g.id, title: g.title })), [{ id: 'wg-x', title: 'X' }, { id: 'wg-y', title: 'Y' }])
      assert.ok(!JSON.stringify(res.json).includes(token), 'the response echoes a token')
      // project extension (docs/PLENARY_LAYOUT.md)
      assert.equal(res.json.role, role)
      if (role === 'rapporteur') assert.equal(res.json.group, 'wg-y')
    }
  }
})

test('GET /api/meetings/{m}: 404 unknown, 401 missing/invalid token, 403 token of another meeting', async () => {
  const m = await server.createMeeting()
  const other = await server.createMeeting()
  assertErrorBody(await server.request('GET', `/api/meetings/${uniqueId('nope')}`, { token: m.tokens.moderator }), 404, 'unknown meeting')
  assertErrorBody(await server.request('GET', `/api/meetings/${m.id}`), 401, 'no token')
  assertErrorBody(await server.request('GET', `/api/meetings/${m.id}`, { token: randomToken() }), 401, 'invalid token')
  assertErrorBody(await server.request('GET', `/api/meetings/${m.id}?token=${randomToken()}`), 401, 'invalid ?token=')
  assertErrorBody(await server.request('GET', `/api/meetings/${m.id}`, { token: other.tokens.moderator }), 403, 'token of another meeting')
  assertErrorBody(await server.request('GET', `/api/meetings/${m.id}?token=${other.tokens.rapporteurs['wg-a']}`), 403, 'rapporteur token of another meeting')
})

test('WebSocket upgrade refusals, in order: 404 meeting, 404 group, 401 token, 403 other meeting', async () => {
  const m = await server.createMeeting()
  const other = await server.createMeeting()
  const expectRefusal = async (room, params, status, what) => {
    let err
    try {
      const c = await RawClient.connect(server.wsUrl(room, params))
      c.destroy()
    } catch (e) { err = e }
    assert.ok(err instanceof UpgradeRefused, `${what}: expected HTTP ${status}, got ${err ? err.message : 'an open WebSocket'}`)
    assert.equal(err.status, status, `${what}: expected HTTP ${status}, got ${err.status}: ${err.body}`)
    assertErrorJson(err.json, err.body, what)
  }
  const unknownM = uniqueId('nope')
  await expectRefusal(`${unknownM}/wg-a`, {}, 404, 'unknown meeting, no token')
  await expectRefusal(`${unknownM}/wg-a`, { token: m.tokens.moderator }, 404, 'unknown meeting, token of another meeting')
  await expectRefusal(`${unknownM}/wg-a`, { token: randomToken() }, 404, 'unknown meeting, invalid token')
  await expectRefusal(`${m.id}/wg-nope`, {}, 404, 'unknown group, no token')
  await expectRefusal(`${m.id}/wg-nope`, { token: m.tokens.moderator }, 404, 'unknown group, valid token')
  await expectRefusal(`${m.id}/wg-nope`, { token: other.tokens.moderator }, 404, 'unknown group, token of another meeting')
  await expectRefusal(`${m.id}/wg-a`, {}, 401, 'missing token')
  await expectRefusal(`${m.id}/wg-a`, { token: '' }, 401, 'empty token')
  await expectRefusal(`${m.id}/wg-a`, { token: randomToken() }, 401, 'invalid token')
  await expectRefusal(`${m.id}/wg-a`, { token: server.adminToken }, 401, 'the admin token is no meeting token')
  await expectRefusal(`${m.id}/wg-a`, { token: other.tokens.moderator }, 403, 'moderator token of another meeting')
  await expectRefusal(`${m.id}/wg-a`, { token: other.tokens.participant }, 403, 'participant token of another meeting')
  await expectRefusal(`${m.id}/wg-a`, { token: other.tokens.rapporteurs['wg-a'] }, 403, 'rapporteur token (same group id) of another meeting')
  // and every token of the meeting is let in
  for (const token of [m.tokens.moderator, m.tokens.participant, m.tokens.rapporteurs['wg-a'], m.tokens.rapporteurs['wg-b']]) {
    const c = await RawClient.connect(server.wsUrl(`${m.id}/wg-a`, { token }))
    assert.ok(c.open)
    c.destroy()
  }
})

test('GET /metrics: Prometheus text with the contract\'s families, counting traffic', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting()
  const w = await s.provider(server, `${m.id}/wg-a`, m.tokens.rapporteurs['wg-a'])
  const o = await s.provider(server, `${m.id}/wg-a`, m.tokens.participant)
  addParagraph(w.doc, 'metrics traffic')
  addParagraph(o.doc, 'refused')
  await waitFor(() => o.auth.length > 0, 10000, 'a rejected message')
  const res = await server.request('GET', '/metrics')
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') || '', /^(text\/plain|application\/openmetrics-text)/)
  const text = res.text
  assert.match(text, /^# (TYPE|HELP) /m, 'no # TYPE/# HELP lines')
  const samples = text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => {
    const mm = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(l)
    return mm ? { name: mm[1], labels: mm[2] || '', value: Number(mm[3]) } : null
  }).filter(Boolean)
  assert.ok(samples.length > 0, 'no samples')
  const families = {
    connections: /connection/i,
    'loaded rooms': /room/i,
    messages: /message/i,
    bytes: /byte/i,
    'updates persisted': /persist|durable|stored|update/i,
    'persistence latency': /(persist|store|durab|flush|commit|write).*(second|latency|duration)|(latency|duration).*(persist|store|flush|commit|write)/i,
    'rejected messages': /reject|denied|refus/i
  }
  for (const [what, re] of Object.entries(families)) {
    assert.ok(samples.some((x) => re.test(x.name)), `no metric for ${what} (${re}) in:\n${text.slice(0, 3000)}`)
  }
  assert.ok(samples.some((x) => /connection/i.test(x.name) && x.value >= 2), 'no connection metric counts the two open connections')
  assert.ok(samples.some((x) => /message/i.test(x.name) && x.value > 0), 'no message counter moved')
  assert.ok(samples.some((x) => /reject|denied|refus/i.test(x.name) && x.value > 0), 'the rejected message was not counted')
  for (const tok of [m.tokens.moderator, m.tokens.participant, m.tokens.rapporteurs['wg-a'], server.adminToken]) {
    assert.ok(!text.includes(tok), 'a token appears in /metrics')
  }
})

test('tokens never appear in the logs (request lines, spans, errors)', async (t) => {
  const s = scope(t)
  const env = { RUST_LOG: 'debug,hyper=info,h2=info,tungstenite=info,tokio_tungstenite=info', RUST_BACKTRACE: '0' }
  const srv = await s.server({ env })
  const m = await srv.createMeeting()
  const secrets = [srv.adminToken, m.tokens.moderator, m.tokens.participant, ...Object.values(m.tokens.rapporteurs)]
  const bogus = [randomToken(), randomToken(), randomToken(), randomToken(), randomToken()]
  // tokens pasted into paths: a web-client path and an API path
  await srv.request('GET', `/m/${m.id}/console/${bogus[3]}`)
  await srv.request('GET', `/api/meetings/${m.id}/${bogus[4]}`)
  await srv.request('GET', `/api/meetings/${m.id}?token=${m.tokens.participant}`)
  await srv.request('GET', `/api/meetings/${m.id}`, { token: m.tokens.moderator })
  await srv.request('GET', `/api/meetings/${m.id}?token=${bogus[0]}`)
  await srv.request('POST', '/api/meetings', { token: bogus[1], body: { title: 'x', groups: [{ id: 'g1', title: 'G1' }] } })
  await srv.request('GET', `/api/meetings/${m.id}/summary.json?token=${m.tokens.participant}`)
  const w = await s.provider(srv, `${m.id}/wg-a`, m.tokens.rapporteurs['wg-a'])
  const p = await s.provider(srv, `${m.id}/wg-a`, m.tokens.participant)
  addParagraph(p.doc, 'refused')
  await waitFor(() => p.auth.length > 0, 10000, 'permission denied')
  try { (await RawClient.connect(srv.wsUrl(`${m.id}/wg-a`, { token: bogus[2] }))).destroy() } catch {}
  try { (await RawClient.connect(srv.wsUrl(`${m.id}/wg-nope`, { token: m.tokens.moderator }))).destroy() } catch {}
  const raw = await RawClient.connect(srv.wsUrl(`${m.id}/wg-a`, { token: m.tokens.rapporteurs['wg-b'] }))
  await raw.send(Uint8Array.from([0, 2, 0x7f])) // an error path
  await raw.closed
  w.destroy(); p.destroy()
  // graceful shutdown has its own test (durability); here only the logs matter
  await srv.stop('SIGTERM', 10000).catch(() => srv.crash())
  assert.ok(srv.logs.length > 0, 'the server printed nothing at all')
  for (const tok of [...secrets, ...bogus]) {
    const at = srv.logs.indexOf(tok)
    assert.equal(at, -1, `a token appears in the logs: …${srv.logs.slice(Math.max(0, at - 200), at + 80)}…`)
  }
})
