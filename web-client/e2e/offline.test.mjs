// A rapporteur loses the connection (the server stops), keeps typing, reconnects when the server is
// back on the same data dir and port, and the other rapporteur receives every edit.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { suite, createMeeting, demoMeeting, links, DESKTOP, waitOnline, watchErrors, screenshot } from './helpers.mjs'

const fixture = await suite()
const browser = fixture.browser
let server = fixture.server

const notesText = () => {
  const c = document.querySelector('[data-testid="notes-editor"]').cloneNode(true)
  c.querySelectorAll('.collaboration-carets__caret').forEach((x) => x.remove())
  return c.textContent
}

test('offline edits are kept and delivered after reconnecting', { timeout: 180_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('offline'))
  const L = links(server.url, created)
  const ctxA = await browser.newContext(DESKTOP)
  const ctxB = await browser.newContext(DESKTOP)
  const a = await ctxA.newPage()
  const b = await ctxB.newPage()
  const errs = watchErrors(a, b)
  await a.goto(L.rapporteur('wg-handbook'))
  await b.goto(L.rapporteur('wg-handbook'))
  await waitOnline(a)
  await waitOnline(b)

  await a.getByTestId('notes-editor').click()
  await a.keyboard.type('Online line.')
  await a.getByTestId('add-conclusion').click()
  await a.keyboard.type('Integrate the Handbook into training curricula.')
  await b.waitForFunction(() => document.querySelector('[data-testid="conclusion-text"]')?.value === 'Integrate the Handbook into training curricula.', null, { timeout: 15_000 })
  await a.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 15_000 })

  // the server goes away
  const addr = server.addr
  const dataDir = server.dataDir
  const frontPort = Number(new URL(server.url).port) // same page origin when E2E_DIST proxies the pages
  await server.stop()
  await a.locator('[data-testid="connection"][data-state="disconnected"]').waitFor({ timeout: 15_000 })
  await b.locator('[data-testid="connection"][data-state="disconnected"]').waitFor({ timeout: 15_000 })

  // A keeps working offline: notes, a new conclusion, an edit, a status change
  await a.getByTestId('notes-editor').click()
  await a.keyboard.press('ControlOrMeta+End')
  await a.keyboard.press('Enter')
  await a.keyboard.type('Typed while offline.')
  await a.getByTestId('add-conclusion').click()
  await a.keyboard.type('Standard Operating Procedures need a regional review.')
  const first = a.getByTestId('conclusion-text').first()
  await first.focus()
  await first.press('End')
  await a.keyboard.type(' (all six jurisdictions)')
  await a.getByTestId('conclusion-final').first().check()
  // nothing is marked saved while the server cannot confirm it
  await a.locator('[data-testid="saved"][data-state="unsaved"]').waitFor({ timeout: 5_000 })
  await screenshot(a, 'rapporteur-desktop-offline')

  // the server comes back on the same data dir and port
  server = await fixture.startServer({ dataDir, addr, frontPort })
  await waitOnline(a, 30_000)
  await waitOnline(b, 30_000)

  await b.waitForFunction(() => {
    const c = document.querySelector('[data-testid="notes-editor"]').cloneNode(true)
    c.querySelectorAll('.collaboration-carets__caret').forEach((x) => x.remove())
    return c.textContent.includes('Online line.') && c.textContent.includes('Typed while offline.')
  }, null, { timeout: 20_000 })
  await b.waitForFunction(() => {
    const v = [...document.querySelectorAll('[data-testid="conclusion-text"]')].map((t) => t.value)
    const f = [...document.querySelectorAll('[data-testid="conclusion-final"]')].map((c) => c.checked)
    return v.length === 2 && v[0] === 'Integrate the Handbook into training curricula. (all six jurisdictions)' && v[1] === 'Standard Operating Procedures need a regional review.' && f[0] === true && f[1] === false
  }, null, { timeout: 20_000 })
  // A's saved mark turns back on once the restarted server has stored the offline edits
  await a.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 20_000 })

  // and the edits are durable: a fresh browser sees them
  const ctxC = await browser.newContext(DESKTOP)
  const c = await ctxC.newPage()
  await c.goto(L.rapporteur('wg-handbook'))
  await waitOnline(c)
  await c.waitForFunction(() => document.querySelectorAll('[data-testid="conclusion-text"]').length === 2, null, { timeout: 15_000 })
  assert.equal((await c.evaluate(notesText)).includes('Typed while offline.'), true)
  assert.deepEqual(errs, [])
  for (const x of [ctxA, ctxB, ctxC]) await x.close()
})
