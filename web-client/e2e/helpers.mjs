// Shared helpers for the browser tests: a real `plenary serve` per test file, a loopback-only
// Chromium that records every page error, and `suite()`, the fixture that brings both.
import { after, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer, request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { chromium } from 'playwright-core'

const here = dirname(fileURLToPath(import.meta.url))
export const REPO = resolve(here, '..', '..')
export const PLENARY_BIN = process.env.PLENARY_BIN || join(REPO, 'target', 'release', 'plenary')
export const SHOTS = join(REPO, 'test-output', 'screenshots')
export const ADMIN = 'e2e-admin-token-0123456789'
const require = createRequire(import.meta.url)
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8')

/** Start `plenary serve` on a free (or given) port; resolves once it prints `listening on http://…`. */
export async function startServer({ dataDir, addr = '127.0.0.1:0', timeoutMs = 20_000, frontPort = 0 } = {}) {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'plenary-e2e-'))
  const child = spawn(PLENARY_BIN, ['serve', '--addr', addr, '--data-dir', dir, '--admin-token', ADMIN, '--no-demo'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  })
  let out = ''
  let err = ''
  child.stderr.on('data', (d) => (err += d))
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not print "listening on" within ${timeoutMs} ms\nstdout:${out}\nstderr:${err}`)), timeoutMs)
    child.stdout.on('data', (d) => {
      out += d
      const m = /listening on (http:\/\/[^\s]+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolveUrl(m[1].replace(/\/$/, ''))
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited early (${code})\nstdout:${out}\nstderr:${err}`))
    })
  })
  // E2E_DIST=1: the pages come from web-client/dist as built now, through a small proxy in this
  // process (API and WebSockets go to the server), so client changes can be tried without
  // rebuilding the server binary. The embed test always checks the binary itself (`directUrl`).
  const front = process.env.E2E_DIST ? await distProxy(url, frontPort) : null
  return {
    url: front?.url ?? url,
    directUrl: url,
    dataDir: dir,
    addr: url.replace(/^http:\/\//, ''),
    child,
    logs: () => ({ out, err }),
    /** SIGTERM this server only, and wait for it to exit */
    async stop() {
      front?.close()
      if (child.exitCode !== null || child.signalCode !== null) return
      const done = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await done
      clearTimeout(t)
    },
    cleanup() {
      try {
        rmSync(dir, { recursive: true, force: true })
      } catch {
        /* ignore */
      }
    },
  }
}

const TYPES = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html; charset=utf-8', '.svg': 'image/svg+xml', '.json': 'application/json' }
async function distProxy(target, port) {
  const dist = join(REPO, 'web-client', 'dist')
  const t = new URL(target)
  const srv = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname)
    if (path.startsWith('/api/') || path === '/healthz' || path === '/metrics') {
      const up = httpRequest({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode, r.headers)
        r.pipe(res)
      })
      up.on('error', () => res.destroy())
      req.pipe(up)
      return
    }
    let file = join(dist, path)
    if (!file.startsWith(dist) || !existsSync(file) || !statSync(file).isFile()) file = join(dist, 'index.html')
    res.writeHead(200, { 'content-type': TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream' })
    res.end(readFileSync(file))
  })
  srv.on('upgrade', (req, socket, head) => {
    const up = connect(Number(t.port), t.hostname, () => {
      up.write(`${req.method} ${req.url} HTTP/1.1\r\n${Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`)
      if (head?.length) up.write(head)
      up.pipe(socket)
      socket.pipe(up)
    })
    up.on('error', () => socket.destroy())
    socket.on('error', () => up.destroy())
  })
  await new Promise((r) => srv.listen(port, '127.0.0.1', r))
  const sockets = new Set()
  srv.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))))
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    close() {
      srv.close()
      for (const s of sockets) s.destroy()
    },
  }
}

export async function createMeeting(baseUrl, body) {
  const res = await fetch(`${baseUrl}/api/meetings`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (res.status !== 201) throw new Error(`create meeting: ${res.status} ${await res.text()}`)
  return res.json()
}

export const demoMeeting = (id = 'skopje-2023') => ({
  id,
  title: 'Regional Meeting of the Border Police and Customs Representatives',
  groups: [
    { id: 'wg-migrants', title: 'Migrants with weapons' },
    { id: 'wg-handbook', title: 'Handbook on Firearms for Border Guards and Customs' },
    { id: 'wg-trends', title: 'New trends and threats in firearms trafficking' },
  ],
})

/** Web links built the way the organizer page builds them: token in the fragment. */
export function links(baseUrl, created) {
  const t = created.tokens
  return {
    moderator: `${baseUrl}/m/${created.id}/console#token=${t.moderator}`,
    projector: `${baseUrl}/m/${created.id}/projector#token=${t.participant}`,
    participant: `${baseUrl}/m/${created.id}#token=${t.participant}`,
    rapporteur: (g) => `${baseUrl}/m/${created.id}/g/${g}#token=${t.rapporteurs[g]}`,
  }
}

/**
 * Chromium, loopback only. Every page of every context it opens is watched: `browser.pageErrors`
 * is a live array of the page errors (uncaught exceptions) so far, `"<url>: <error>"`.
 */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Everything goes to a proxy address that refuses, except loopback. Note: Chromium's
      // `<-loopback>` token would *remove* the implicit loopback bypass (and break these tests),
      // so the loopback hosts are listed explicitly.
      '--proxy-server=127.0.0.1:9',
      '--proxy-bypass-list=127.0.0.1;localhost;[::1]',
    ],
  })
  const pageErrors = []
  const newContext = browser.newContext.bind(browser)
  // browser.newPage() goes through browser.newContext() too
  browser.newContext = async (...args) => {
    const ctx = await newContext(...args)
    ctx.on('weberror', (e) => pageErrors.push(`${e.page()?.url() ?? '?'}: ${String(e.error())}`))
    return ctx
  }
  browser.pageErrors = pageErrors
  return browser
}

/** Fails with the page errors of `browser` since the last check (and forgets them). */
export function assertNoPageErrors(browser, what = 'page errors') {
  assert.deepEqual(browser.pageErrors.splice(0), [], what)
}

/**
 * The fixture of one test file: a server and a browser for all its tests (top-level
 * `const { server, browser } = await suite()`), stopped after the file. Each test ends by
 * asserting that no page of the browser had an error during it (an afterEach hook: its failure
 * is the test's). `startServer` starts another server (a restart on the same data dir) that is
 * stopped with the rest.
 */
export async function suite(serverOptions) {
  const servers = [await startServer(serverOptions)]
  const browser = await launch()
  afterEach(() => assertNoPageErrors(browser))
  after(async () => {
    await browser.close()
    for (const s of servers.reverse()) await s.stop()
    for (const s of servers) s.cleanup()
  })
  return {
    server: servers[0],
    browser,
    async startServer(options) {
      const s = await startServer(options)
      servers.push(s)
      return s
    },
  }
}

export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
export const DESKTOP = { viewport: { width: 1366, height: 900 } }
export const PROJECTOR = { viewport: { width: 1920, height: 1080 } }

/**
 * Collect the page errors of one or more pages into one live array (it grows as errors happen), so
 * that a test can assert at its end that none happened. Do not copy it (`[...watchErrors(p)]`)
 * before the end: the copy would stay empty. (`suite()` checks every page after each test anyway;
 * this names the pages a test cares about.)
 */
export function watchErrors(...pages) {
  const errors = []
  for (const page of pages) page.on('pageerror', (e) => errors.push(`${page.url()}: ${String(e)}`))
  return errors
}

export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true })
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
}

/** Run axe-core in the page; returns serious/critical violations. */
export async function axe(page) {
  await page.evaluate(AXE_SOURCE)
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] })
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary) }))
  })
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical')
}

/** Text of the y-websocket status pill */
export async function waitOnline(page, timeout = 15_000) {
  await page.locator('[data-testid="connection"][data-state="online"]').first().waitFor({ timeout })
}

/**
 * Write with a plain Yjs client (y-websocket in Node): `fn(doc)` runs in one transaction once the
 * document is synced; resolves when the server has acknowledged the edit as durable (`ack=1`).
 */
export async function yjsWrite(baseUrl, room, token, fn, timeoutMs = 15_000) {
  const [{ WebsocketProvider }, Y, WS, decoding] = await Promise.all([import('y-websocket'), import('yjs'), import('ws'), import('lib0/decoding')])
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(`${baseUrl.replace(/^http/, 'ws')}/ws`, room, doc, { params: { token, ack: '1' }, WebSocketPolyfill: WS.default, disableBc: true })
  provider.awareness.setLocalState(null)
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`yjsWrite ${room}: no ack within ${timeoutMs} ms`)), timeoutMs)
      let wrote = false
      provider.messageHandlers[100] = (_e, decoder) => {
        if (!wrote) return
        const acked = Y.decodeStateVector(decoding.readVarUint8Array(decoder))
        const mine = Y.encodeStateVector(doc)
        if ((acked.get(doc.clientID) ?? 0) >= (Y.decodeStateVector(mine).get(doc.clientID) ?? 0)) {
          clearTimeout(timer)
          resolve()
        }
      }
      provider.once('sync', () => {
        doc.transact(() => fn(doc, Y))
        wrote = true
      })
    })
  } finally {
    provider.destroy()
    doc.destroy()
  }
}

/** Add conclusions to a group document as its rapporteur would. */
export function addConclusions(baseUrl, meetingId, group, token, texts) {
  return yjsWrite(baseUrl, `${meetingId}/${group}`, token, (doc, Y) => {
    const arr = doc.getArray('conclusions')
    arr.push(
      texts.map((t, i) => {
        const m = new Y.Map()
        m.set('id', `seed-${group}-${arr.length + i}`)
        m.set('text', new Y.Text(t))
        m.set('status', i % 3 === 0 ? 'final' : 'draft')
        m.set('author', 'seed')
        return m
      }),
    )
  })
}
