// The web client under the server's Content-Security-Policy: every view loads, goes online and
// works with no CSP violation (reported by the page's `securitypolicyviolation` events and by
// Chromium's console), and the exported summary.html renders under its stricter policy.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { suite, createMeeting, demoMeeting, links, DESKTOP, PHONE, ADMIN, waitOnline, watchErrors } from './helpers.mjs'

const { server, browser } = await suite()
let L, created
before(async () => {
  created = await createMeeting(server.url, demoMeeting('csp'))
  L = links(server.url, created)
})

/** Opens a page that records CSP violations from the start. */
async function watchedPage(viewport) {
  const ctx = await browser.newContext(viewport)
  await ctx.addInitScript(() => {
    window.__cspViolations = []
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`)
    })
  })
  const page = await ctx.newPage()
  const console = []
  page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) console.push(m.text()) })
  const errors = watchErrors(page)
  return { ctx, page, console, errors }
}

async function violations(w) {
  const inPage = await w.page.evaluate(() => window.__cspViolations).catch(() => [])
  return [...inPage, ...w.console]
}

test('every view runs under the app CSP with no violation', async () => {
  const views = [
    ['organizer', `${server.url}/organize`, DESKTOP, false],
    ['moderator console', L.moderator, DESKTOP, true],
    ['projector', L.projector, { viewport: { width: 1920, height: 1080 } }, true],
    ['rapporteur', L.rapporteur('wg-migrants'), DESKTOP, true],
    ['participant', L.participant, PHONE, true],
  ]
  for (const [name, url, viewport, online] of views) {
    const w = await watchedPage(viewport)
    const res = await w.page.goto(url)
    assert.match(res.headers()['content-security-policy'] ?? '', /^default-src 'self'/, `${name}: CSP header`)
    if (online) await waitOnline(w.page)
    if (name === 'rapporteur') {
      // typing, formatting and a conclusion: Tiptap's inline styles and the sync over ws:
      await w.page.getByTestId('notes-editor').click()
      await w.page.keyboard.type('Written under the CSP.')
      await w.page.getByTestId('add-conclusion').click()
      await w.page.keyboard.type('A conclusion under the CSP.')
      await w.page.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 15_000 })
    }
    if (name === 'organizer') {
      // the organizer page with its QR codes (data: images)
      await w.page.getByLabel('Admin token').fill(ADMIN)
      await w.page.getByLabel('Meeting title').fill('CSP meeting')
      await w.page.getByLabel('Group 1 title').fill('Group under CSP')
      await w.page.getByTestId('create').click()
      await w.page.getByTestId('result').waitFor({ timeout: 15_000 })
      await w.page.locator('[data-testid="handout"] img.qr').first().waitFor({ timeout: 15_000 })
      assert.ok(await w.page.locator('[data-testid="handout"] img.qr').first().evaluate((img) => img.complete && img.naturalWidth > 0), 'QR code rendered')
    }
    const v = await violations(w)
    assert.deepEqual(v, [], `${name}: CSP violations`)
    assert.deepEqual(w.errors, [], `${name}: page errors`)
    await w.ctx.close()
  }
})

test('the exported summary.html renders under its stricter CSP with no violation', async () => {
  const w = await watchedPage(DESKTOP)
  const res = await w.page.goto(`${server.url}/api/meetings/${created.id}/summary.html?token=${created.tokens.participant}`)
  assert.equal(res.status(), 200)
  assert.match(res.headers()['content-security-policy'] ?? '', /^default-src 'none'; style-src 'unsafe-inline'/)
  await w.page.locator('h1').waitFor()
  // its inline style sheet applies (the CSP allows it)
  const family = await w.page.evaluate(() => getComputedStyle(document.body).fontFamily)
  assert.match(family, /Georgia/)
  assert.deepEqual(await violations(w), [], 'summary.html: CSP violations')
  await w.ctx.close()
})
