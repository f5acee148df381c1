// Command line and lifecycle: --version, the demo meeting, a generated admin token kept in the
// data dir, `plenary` without a sub-command, the environment variables, --max-message-bytes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BIN, Y, scope, enc, waitFor, withTimeout, RawClient, randomToken } from './harness.mjs'

const run = promisify(execFile)

test('plenary --version', async () => {
  const { stdout } = await run(BIN, ['--version'], { timeout: 10000 })
  assert.match(stdout, /plenary\s+\d+\.\d+\.\d+/)
})

test('first start seeds the demo meeting, prints its links and a generated admin token; a restart keeps both', async (t) => {
  const s = scope(t)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'plenary-cli-'))
  s.add(() => rmSync(dir, { recursive: true, force: true }))
  const srv = await s.server({ dataDir: dir, argv: ['serve', '--addr', '127.0.0.1:0', '--data-dir', dir] })
  const out = srv.runStdout
  const adminLine = out.split('\n').find((l) => /admin/i.test(l) && /token/i.test(l))
  assert.ok(adminLine, `no admin token line in:\n${out}`)
  const admin = adminLine.match(/[A-Za-z0-9_-]{20,}/g)?.pop()
  assert.ok(admin, `no token on the admin line: ${adminLine}`)
  const links = [...out.matchAll(/https?:\/\/\S+#token=\S+/g)].map((x) => new URL(x[0]))
  assert.ok(links.length >= 5, `expected the demo links (moderator, participants, 3 rapporteurs) in:\n${out}`)
  for (const u of links) assert.equal(u.port, String(srv.port), `link on the wrong port: ${u}`)
  const mod = links.find((u) => /^\/m\/[^/]+\/console$/.test(u.pathname))
  assert.ok(mod, 'no moderator console link')
  const meetingId = mod.pathname.split('/')[2]
  const modToken = mod.hash.slice('#token='.length)
  const info = await srv.request('GET', `/api/meetings/${meetingId}`, { token: modToken })
  assert.equal(info.status, 200, info.text)
  assert.equal(info.json.groups.length, 3, `the demo meeting has ${info.json.groups.length} groups`)
  const rapLinks = links.filter((u) => /^\/m\/[^/]+\/g\/[^/]+$/.test(u.pathname))
  assert.deepEqual(rapLinks.map((u) => u.pathname.split('/')[4]).sort(), info.json.groups.map((g) => g.id).sort())
  for (const u of rapLinks) {
    const c = await RawClient.connect(srv.wsUrl(`${meetingId}/${u.pathname.split('/')[4]}`, { token: u.hash.slice(7) }))
    c.destroy()
  }
  const created = await srv.request('POST', '/api/meetings', { token: admin, body: { title: 'with the generated token', groups: [{ id: 'g', title: 'G' }] } })
  assert.equal(created.status, 201, `the printed admin token does not work: ${created.text}`)

  // restart: `plenary` without a sub-command, configured through the environment
  await srv.stop('SIGTERM', 5000).catch(() => srv.crash()) // graceful shutdown is tested elsewhere
  srv.argv = []
  srv.env = { PLENARY_ADDR: '127.0.0.1:0', PLENARY_DATA_DIR: dir }
  await srv.start()
  assert.ok(!srv.runStdout.includes(admin), 'the generated admin token was printed again')
  const again = await srv.request('POST', '/api/meetings', { token: admin, body: { title: 'after restart', groups: [{ id: 'g', title: 'G' }] } })
  assert.equal(again.status, 201, `the kept admin token does not work after a restart: ${again.text}`)
  const info2 = await srv.request('GET', `/api/meetings/${meetingId}`, { token: modToken })
  assert.equal(info2.status, 200, 'the demo meeting\'s tokens changed across a restart')
  assert.deepEqual(info2.json.groups.map((g) => g.id), info.json.groups.map((g) => g.id))
})

test('environment variables: PLENARY_ADMIN_TOKEN and PLENARY_NO_DEMO', async (t) => {
  const s = scope(t)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'plenary-cli-'))
  s.add(() => rmSync(dir, { recursive: true, force: true }))
  const admin = randomToken()
  const srv = await s.server({ dataDir: dir, argv: ['serve'], env: { PLENARY_ADDR: '127.0.0.1:0', PLENARY_DATA_DIR: dir, PLENARY_ADMIN_TOKEN: admin, PLENARY_NO_DEMO: 'true' } })
  assert.ok(!/#token=/.test(srv.runStdout), `demo links printed despite PLENARY_NO_DEMO:\n${srv.runStdout}`)
  assert.ok(!srv.runStdout.includes(admin), 'the admin token given in the environment was printed')
  const created = await srv.request('POST', '/api/meetings', { token: admin, body: { id: 'env-test', title: 'env', groups: [{ id: 'g', title: 'G' }] } })
  assert.equal(created.status, 201, created.text)
  const demo = await srv.request('GET', '/api/meetings/skopje-2023', { token: created.json.tokens.moderator })
  assert.equal(demo.status, 404, 'the demo meeting was seeded despite PLENARY_NO_DEMO')
})

test('--max-message-bytes sets the size limit', async (t) => {
  const s = scope(t)
  const srv = await s.server({ args: ['--max-message-bytes', '4096'] })
  const m = await srv.createMeeting()
  const room = `${m.id}/wg-a`
  const obs = await s.provider(srv, room, m.tokens.participant)
  const msg = (n, marker) => {
    const d = new Y.Doc()
    d.getText(marker).insert(0, 'z'.repeat(n))
    return enc.update(Y.encodeStateAsUpdate(d))
  }
  const ok = await s.raw(srv, room, { token: m.tokens.rapporteurs['wg-a'] })
  await ok.send(msg(3000, 'small'))
  await waitFor(() => obs.doc.getText('small').length === 3000, 10000, 'a 3 kB update under a 4 KiB limit')
  const big = await s.raw(srv, room, { token: m.tokens.rapporteurs['wg-a'] })
  big.send(msg(5000, 'big')).catch(() => {})
  const info = await withTimeout(big.closed, 10000, 'close after a 5 kB message')
  assert.equal(info.code, 1009)
  await ok.barrier()
  assert.equal(obs.doc.getText('big').length, 0)
})
