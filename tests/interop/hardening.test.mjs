// HTTP hardening: security headers on every response, 405 for methods that make no sense, the
// admin-guess budget (429), escaped exports, and the limits on connections that have not
// upgraded (pending cap, header-read and idle timeouts, the open-files limit).
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import http from 'node:http'
import { execFileSync } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import {
  sharedServer, scope, waitFor, withTimeout, assertErrorBody, addConclusion, RawClient
} from './harness.mjs'

const APP_CSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

const server = await sharedServer()
let meeting
before(async () => {
  meeting = await server.createMeeting()
})

/** The first asset the app's index.html loads. */
async function anAsset () {
  const html = (await server.request('GET', '/')).text
  const m = /src="(\/assets\/[^"]+\.js)"/.exec(html)
  assert.ok(m, `no script asset in index.html: ${html}`)
  return m[1]
}

function assertCommonHeaders (res, what) {
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff', `${what}: nosniff`)
  assert.equal(res.headers.get('x-frame-options'), 'DENY', `${what}: X-Frame-Options`)
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer', `${what}: Referrer-Policy`)
  const csp = res.headers.get('content-security-policy')
  assert.ok(csp, `${what}: no Content-Security-Policy`)
  assert.match(csp, /frame-ancestors 'none'/, `${what}: CSP ${csp}`)
  return csp
}

test('every response carries nosniff, X-Frame-Options, Referrer-Policy and a CSP', async () => {
  const m = meeting
  const tok = m.tokens.participant
  const asset = await anAsset()
  const cases = [
    ['GET', '/', 200, 'app'], ['GET', '/organize', 200, 'app'], ['GET', `/m/${m.id}/wg-a`, 200, 'app'],
    ['GET', asset, 200, 'app'], ['HEAD', '/', 200, 'app'],
    ['GET', '/healthz', 200, 'default'], ['GET', '/metrics', 200, 'default'],
    ['GET', `/api/meetings/${m.id}?token=${tok}`, 200, 'default'],
    ['GET', `/api/meetings/${m.id}`, 401, 'default'], ['GET', '/api/nothing', 404, 'default'],
    ['GET', '/no/such/page', 404, 'default'], ['POST', '/', 405, 'default'],
    ['GET', `/api/meetings/${m.id}/summary.json?token=${tok}`, 200, 'default'],
    ['GET', `/api/meetings/${m.id}/summary.md?token=${tok}`, 200, 'default'],
    ['GET', `/api/meetings/${m.id}/summary.html?token=${tok}`, 200, 'export'],
    ['GET', `/api/meetings/${m.id}/versions?token=${tok}`, 200, 'default'],
    ['GET', `/ws/${m.id}/wg-a?token=nope`, 401, 'default']
  ]
  for (const [method, path, status, kind] of cases) {
    const what = `${method} ${path.replace(/token=[^&]*/, 'token=…')}`
    const res = await server.request(method, path)
    assert.equal(res.status, status, `${what}: ${res.text.slice(0, 200)}`)
    const csp = assertCommonHeaders(res, what)
    if (kind === 'app') assert.equal(csp, APP_CSP, `${what}: app CSP`)
    if (kind === 'default') assert.match(csp, /^default-src 'none'/, `${what}: CSP ${csp}`)
    if (kind === 'export') {
      assert.match(csp, /^default-src 'none'/, `${what}: CSP ${csp}`)
      assert.doesNotMatch(csp, /script-src|'self'/, `${what}: exports run nothing: ${csp}`)
    }
  }
  // the WebSocket upgrade answer too
  const raw = await RawClient.connect(server.wsUrl(`${m.id}/wg-a`, { token: tok }))
  raw.destroy()
})

test('405 with the JSON error body for methods that make no sense, on every route', async () => {
  const m = meeting
  const tok = m.tokens.moderator
  const asset = await anAsset()
  const cases = [
    ['POST', '/'], ['PUT', '/'], ['DELETE', '/'], ['PATCH', '/'], ['OPTIONS', '/'],
    ['POST', '/organize'], ['PUT', `/m/${m.id}/wg-a`], ['DELETE', asset], ['POST', '/no/such/page'],
    ['POST', '/healthz'], ['PUT', '/metrics'],
    ['PUT', '/api/meetings'],
    ['POST', `/api/meetings/${m.id}`], ['PUT', `/api/meetings/${m.id}`],
    ['GET', `/api/meetings/${m.id}/close`], ['GET', `/api/meetings/${m.id}/reopen`],
    ['GET', `/api/meetings/${m.id}/groups/wg-a/close`], ['PUT', `/api/meetings/${m.id}/groups/wg-a/reopen`],
    ['PUT', `/api/meetings/${m.id}/versions`],
    ['POST', `/api/meetings/${m.id}/summary.json`], ['DELETE', `/api/meetings/${m.id}/summary.md`],
    ['POST', `/api/meetings/${m.id}/versions/v1/summary.html`],
    ['POST', `/ws/${m.id}/wg-a`]
  ]
  for (const [method, path] of cases) {
    const res = await server.request(method, path, { token: tok })
    assertErrorBody(res, 405, `${method} ${path}`)
    assert.equal(res.json.error.code, 'method_not_allowed')
    assert.ok(res.headers.get('allow'), `${method} ${path}: no Allow header`)
  }
  // and what makes sense still works
  assert.equal((await server.request('HEAD', '/organize')).status, 200)
  assert.equal((await server.request('GET', asset)).status, 200)
})

test('wrong admin tokens: a burst of 401, then 429 with the JSON body; the right token gets through', async (t) => {
  const s = scope(t)
  const srv = await s.server() // its own budget
  // guesses, one after the other, until the first 429
  const codes = []
  const t0 = performance.now()
  for (let i = 0; i < 500 && !codes.includes(429); i++) {
    const res = await srv.request('POST', '/api/meetings', { token: `guess-${i}`, body: { title: 'x', groups: [] } })
    codes.push(res.status)
    if (res.status === 429) {
      assertErrorBody(res, 429, 'throttled guess')
      assert.equal(res.json.error.code, 'too_many_attempts')
      assert.ok(Number(res.headers.get('retry-after')) >= 1, 'Retry-After')
    }
  }
  const elapsedS = (performance.now() - t0) / 1000
  const n401 = codes.filter((c) => c === 401).length
  t.diagnostic(`${n401} guesses answered 401 in ${elapsedS.toFixed(2)} s before the first 429`)
  assert.ok(codes.includes(429), `no 429 after ${codes.length} guesses`)
  assert.ok(n401 >= 20, `the burst of 20 is answered: ${codes}`)
  assert.ok(n401 <= 20 + 10 * elapsedS + 2, `at most the burst plus 10/s are checked: ${n401} in ${elapsedS} s`)
  assert.deepEqual([...new Set(codes)].sort(), [401, 429])
  // right after, a volley of requests without any bearer (a guess too): mostly 429, never accepted
  const volley = await Promise.all(Array.from({ length: 10 }, () => srv.request('POST', '/api/meetings', { body: { title: 'x', groups: [] } })))
  assert.ok(volley.every((r) => r.status === 401 || r.status === 429), volley.map((r) => r.status).join())
  assert.ok(volley.filter((r) => r.status === 429).length >= 5, volley.map((r) => r.status).join())

  // while a guesser keeps going, the admin still gets through within a few budget refills
  let stop = false
  let guesses = 0
  const guesser = (async () => {
    const deadline = Date.now() + 5000
    while (!stop && Date.now() < deadline) {
      await srv.request('POST', '/api/meetings', { token: 'wrong', body: { title: 'x', groups: [] } })
      guesses++
    }
  })()
  let tries = 0
  const created = await waitFor(async () => {
    tries++
    const res = await srv.request('POST', '/api/meetings', { token: srv.adminToken, body: { title: 'admin', groups: [{ id: 'g', title: 'G' }] } })
    return res.status === 201 ? res : null
  }, 5000, 'the admin to get through a guessing attack')
  stop = true
  await guesser
  t.diagnostic(`admin got through after ${tries} tries while ${guesses} guesses were made`)
  assert.equal(created.status, 201)
  // successes take nothing from the budget: many in a row once it refilled
  const good = (title) => srv.request('POST', '/api/meetings', { token: srv.adminToken, body: { title, groups: [{ id: 'g', title: 'G' }] } })
  await waitFor(async () => (await good('refilled')).status === 201, 5000, 'budget refilled')
  for (let i = 0; i < 30; i++) {
    const res = await good(`ok ${i}`)
    assert.equal(res.status, 201, `success ${i}: ${res.text}`)
  }
})

test('summary.md and summary.html never pass raw HTML through from titles or conclusions', async (t) => {
  const s = scope(t)
  const m = await server.createMeeting({
    title: '<script>alert("title")</script>',
    groups: [{ id: 'wg-x', title: '<img src=x onerror=alert(1)>' }]
  })
  const w = await s.provider(server, `${m.id}/wg-x`, m.tokens.rapporteurs['wg-x'])
  const texts = ['<script>alert(1)</script>', '<img src=x onerror=alert(2)>', '[click](javascript:alert(3))', 'two\n# lines <b>bold</b>']
  texts.forEach((text, i) => addConclusion(w.doc, { id: `c${i}`, text, status: 'final' }))
  const tok = m.tokens.participant
  let md
  await waitFor(async () => {
    md = await server.request('GET', `/api/meetings/${m.id}/summary.md?token=${tok}`)
    return md.text.split('\n').filter((l) => l.startsWith('- ')).length === texts.length
  }, 15000, 'all conclusions in summary.md')
  assert.ok(!md.text.includes('<') && !md.text.includes('>'), `raw HTML in summary.md:\n${md.text}`)
  const lines = md.text.split('\n')
  assert.equal(lines.filter((l) => l.startsWith('# ')).length, 1, md.text)
  assert.equal(lines.filter((l) => l.startsWith('## ')).length, 1, md.text)
  assert.ok(lines[0].startsWith('# ') && lines[0].includes('alert("title")'), `title kept readable: ${lines[0]}`)
  assert.ok(md.text.includes('\\[click\\](javascript:alert(3))'), `no live link: ${md.text}`)
  assert.ok(!/^\s*#/m.test(lines.slice(1).filter((l) => !l.startsWith('## ')).join('\n')), `a conclusion line opened a heading:\n${md.text}`)
  const html = await server.request('GET', `/api/meetings/${m.id}/summary.html?token=${tok}`)
  for (const bad of ['<script', '<img', '<b>']) assert.ok(!html.text.includes(bad), `${bad} in summary.html`)
  assert.ok(html.text.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'escaped text in summary.html')
})

// ------------------------------------------------------------------ before the upgrade

/** Opens a bare TCP socket; resolves once connected. `st.closedByServer` flips if the server closes it. */
function bare (srv) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, srv.host)
    const st = { sock, closedByServer: false, mine: false }
    sock.on('error', () => {})
    sock.once('close', () => { if (!st.mine) st.closedByServer = true })
    sock.once('connect', () => resolve(st))
    sock.once('error', reject)
  })
}
const closeMine = (st) => { st.mine = true; st.sock.destroy() }

/** POST /api/meetings over a connection that is closed after the answer (no keep-alive pool). */
function createMeetingOnce (srv) {
  return withTimeout(new Promise((resolve, reject) => {
    const body = JSON.stringify({ title: 'cap', groups: [{ id: 'wg-a', title: 'A' }] })
    const req = http.request({
      host: srv.host, port: srv.port, path: '/api/meetings', method: 'POST', agent: false,
      headers: { authorization: `Bearer ${srv.adminToken}`, 'content-type': 'application/json', connection: 'close' }
    }, (res) => {
      let text = ''
      res.on('data', (d) => { text += d })
      res.on('end', () => res.statusCode === 201 ? resolve(JSON.parse(text)) : reject(new Error(`${res.statusCode} ${text}`)))
    })
    req.on('error', reject)
    req.end(body)
  }), 10000, 'create a meeting')
}

async function healthzOk (srv) {
  try { return (await srv.request('GET', '/healthz')).status === 200 } catch { return false }
}

test('beyond --max-pending-connections new TCP connections are closed at once; upgraded ones do not count', async (t) => {
  const s = scope(t)
  const srv = await s.server({ args: ['--max-pending-connections', '20', '--http-idle-secs', '60', '--header-read-timeout-secs', '60'] })
  // (created over a connection that closes after the answer, so that it holds no slot)
  const m = await createMeetingOnce(srv)
  // five upgraded WebSockets first: they hold no pending slot
  const wss = []
  for (let i = 0; i < 5; i++) wss.push(await s.raw(srv, `${m.id}/wg-a`, { token: m.tokens.participant }))
  const held = []
  for (let i = 0; i < 20; i++) held.push(await bare(srv))
  s.add(() => held.forEach(closeMine))
  // wait until the server accepted all 20 (then the next one is refused at once)
  const extra = []
  await waitFor(async () => {
    const st = await bare(srv)
    extra.push(st)
    await waitFor(() => st.closedByServer, 300, 'closed').catch(() => {})
    return st.closedByServer
  }, 10000, 'a connection beyond the cap to be closed')
  for (let i = 0; i < 10; i++) extra.push(await bare(srv))
  s.add(() => extra.forEach(closeMine))
  await waitFor(() => extra.slice(-10).every((st) => st.closedByServer), 5000, 'every connection beyond the cap closed by the server')
  assert.equal(held.filter((st) => st.closedByServer).length, 0, 'the 20 admitted connections stay open')
  assert.ok(wss.every((c) => c.open), 'upgraded sockets untouched')
  assert.equal(await healthzOk(srv), false, 'a request beyond the cap is refused')
  // freeing the slots lets requests in again
  held.forEach(closeMine)
  await waitFor(() => healthzOk(srv), 10000, '/healthz once the slots are free')
})

test('a connect storm beyond --max-pending-connections waits in the accept queue and is admitted, not reset', async (t) => {
  const s = scope(t)
  const srv = await s.server({ args: ['--max-pending-connections', '4'] })
  const m = await createMeetingOnce(srv)
  // 80 stock WebSocket clients at once: far more than 4 are pending at a time, but each
  // upgrades within milliseconds, so the accept loop waits for a slot instead of closing them
  const results = await Promise.allSettled(Array.from({ length: 80 }, () =>
    RawClient.connect(srv.wsUrl(`${m.id}/wg-a`, { token: m.tokens.participant }), { timeoutMs: 30000 })))
  for (const r of results) if (r.status === 'fulfilled') s.add(() => r.value.destroy())
  const failed = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason?.message || r.reason))
  assert.deepEqual(failed, [], 'every client of the storm connected and synced')
  assert.equal(await healthzOk(srv), true, 'plain requests are served afterwards')
})

test('silent, idle and trickling connections are closed; a slow but complete request is served', async (t) => {
  const s = scope(t)
  // idle 1 s, header timeout 6 s: the silent and the idle keep-alive connections go long before
  // the trickler (compared as ratios of times measured in this run, not against a clock)
  const srv = await s.server({ args: ['--header-read-timeout-secs', '6', '--http-idle-secs', '1'] })
  const t0 = performance.now()
  const closedAt = {}
  const silent = await bare(srv)
  silent.sock.once('close', () => { closedAt.silent = performance.now() - t0 })
  const trickle = await bare(srv)
  trickle.sock.once('close', () => { closedAt.trickle = performance.now() - t0 })
  const head = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(2000)}\r\n\r\n`
  let pos = 0
  const timer = setInterval(() => { if (!trickle.sock.destroyed && pos < head.length) trickle.sock.write(head[pos++]) }, 100)
  s.add(() => clearInterval(timer))
  // a slow request that completes within the header timeout: served
  const slow = await bare(srv)
  let slowReply = ''
  let answeredAt = 0
  slow.sock.on('data', (d) => { slowReply += d.toString(); answeredAt = performance.now() - t0 })
  slow.sock.once('close', () => { closedAt.keepAlive = performance.now() - t0 })
  const shortHead = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
  for (const ch of shortHead) {
    slow.sock.write(ch)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  await waitFor(() => /\r\n\r\nok$/.test(slowReply), 5000, 'the slow request answered')
  assert.match(slowReply, /^HTTP\/1\.1 200/)
  // then, as a keep-alive connection with nothing to do, it is closed
  await waitFor(() => slow.closedByServer, 15000, 'the idle keep-alive connection closed')
  await waitFor(() => silent.closedByServer && trickle.closedByServer, 20000, 'silent and trickling connections closed')
  assert.ok(pos < head.length, 'the trickler was cut before finishing its request')
  const keepAliveIdle = closedAt.keepAlive - answeredAt
  t.diagnostic(`closed after: silent ${Math.round(closedAt.silent)} ms, keep-alive ${Math.round(keepAliveIdle)} ms after its answer, trickler ${Math.round(closedAt.trickle)} ms`)
  assert.ok(closedAt.trickle / closedAt.silent > 2.5, 'a silent connection goes at the idle timeout, well before the header timeout')
  assert.ok(closedAt.trickle / keepAliveIdle > 2.5, 'an idle keep-alive connection goes at the idle timeout')
})

const hardNofile = Number(execFileSync('bash', ['-c', 'ulimit -Hn']).toString().trim().replace('unlimited', 'Infinity'))
test('with a soft open-files limit of 1024 the server raises it and stays reachable past 1,100 bare sockets', { skip: hardNofile < 2048 && `hard open-files limit ${hardNofile}` }, async (t) => {
  const s = scope(t)
  const srv = await s.server({
    wrapper: ['bash', '-c', 'ulimit -Sn 1024 && exec "$@"', 'plenary'],
    args: ['--max-pending-connections', '4000', '--http-idle-secs', '60', '--header-read-timeout-secs', '60']
  })
  const limit = Number(await waitFor(() => /open files limit limit=(\d+)/.exec(srv.logs)?.[1], 5000, 'the open-files limit in the log').catch(() => NaN))
  t.diagnostic(`server logged an open-files limit of ${limit}`)
  const socks = []
  s.add(() => socks.forEach(closeMine))
  for (let i = 0; i < 1100; i++) socks.push(await bare(srv))
  const m = await withTimeout(srv.createMeeting(), 10000, 'create a meeting past 1,100 sockets')
  await waitFor(() => healthzOk(srv), 10000, '/healthz past 1,100 bare sockets')
  const ws = await s.raw(srv, `${m.id}/wg-a`, { token: m.tokens.participant })
  assert.ok(ws.open)
  assert.equal(socks.filter((st) => st.closedByServer).length, 0, 'no bare socket was dropped')
  assert.ok(limit > 1024, `the soft limit was raised (logged ${limit})`)
})
