// Shared helpers for the browser tests: a real `plenary serve` per test, a loopback-only Chromium.
import { spawn } from 'node:child_process'
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
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
export async function startServer({ dataDir, addr = '127.0.0.1:0', timeoutMs = 20_000 } = {}) {
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
  return {
    url,
    dataDir: dir,
    addr: url.replace(/^http:\/\//, ''),
    child,
    logs: () => ({ out, err }),
    /** SIGTERM this server only, and wait for it to exit */
    async stop() {
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

export async function launch() {
  return chromium.launch({
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
}

export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
export const DESKTOP = { viewport: { width: 1366, height: 900 } }
export const PROJECTOR = { viewport: { width: 1920, height: 1080 } }

/** Collect page errors so a test can assert none happened. */
export function watchErrors(page) {
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))
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
