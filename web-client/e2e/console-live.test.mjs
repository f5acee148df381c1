// The console under live load: a rapporteur's page types continuously into a conclusion while the
// moderator clicks buttons of the same group (every click lands, the buttons are updated in place);
// the closed flag follows the server, also against what the page saw when it loaded; the group's
// "last edit" is a real time from the start (the plenary's `edited_at`), before any live edit.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, createMeeting, demoMeeting, links, launch, DESKTOP, waitOnline, watchErrors, screenshot, addConclusions } from './helpers.mjs'

let server, browser, created, L, wroteFrom, wroteTo
const A = ['Create a joint contact point for firearms cases.', 'Publish the handbook in all regional languages.', 'Train officers on converted weapons.']
before(async () => {
  server = await startServer()
  browser = await launch()
  created = await createMeeting(server.url, demoMeeting('console-live'))
  L = links(server.url, created)
  wroteFrom = Date.now()
  await addConclusions(server.url, created.id, 'wg-migrants', created.tokens.rapporteurs['wg-migrants'], A)
  wroteTo = Date.now()
})
after(async () => {
  await browser?.close()
  await server?.stop()
  server?.cleanup()
})

const api = (path, method = 'POST') => fetch(`${server.url}/api/meetings/${created.id}${path}`, { method, headers: { Authorization: `Bearer ${created.tokens.moderator}` } })

test('console: "last edit" is a real time from the start, "no edit yet" for a group without one', { timeout: 60_000 }, async () => {
  const mod = await (await browser.newContext(DESKTOP)).newPage()
  const errs = watchErrors(mod)
  await mod.goto(L.moderator)
  await waitOnline(mod)
  const status = (g) => mod.locator(`section.cgroup[data-group="${g}"]`).getByTestId('group-status')
  await status('wg-migrants').getByText(/last edit \d\d:\d\d/).waitFor({ timeout: 10_000 })
  // the time is the server's stamp of the write made before the page opened (to the second)
  const at = Date.parse(await status('wg-migrants').locator('time').getAttribute('datetime'))
  assert.ok(at >= Math.floor(wroteFrom / 1000) * 1000 && at <= wroteTo + 2000, `edited_at ${new Date(at).toISOString()} within the write (${new Date(wroteFrom).toISOString()}…${new Date(wroteTo).toISOString()})`)
  assert.match(await status('wg-handbook').textContent(), /no edit yet/)
  assert.equal(await status('wg-handbook').locator('time').count(), 0)
  assert.deepEqual(errs, [])
  await mod.context().close()
})

test('console: clicks on a group\'s buttons land while its rapporteur types continuously in that group', { timeout: 120_000 }, async () => {
  const rap = await (await browser.newContext(DESKTOP)).newPage()
  const mod = await (await browser.newContext(DESKTOP)).newPage()
  const errs = watchErrors(rap, mod)
  await rap.goto(L.rapporteur('wg-migrants'))
  await mod.goto(L.moderator)
  await Promise.all([waitOnline(rap), waitOnline(mod)])
  const typedKey = 'wg-migrants/seed-wg-migrants-0'
  const key = 'wg-migrants/seed-wg-migrants-1'
  const present = mod.locator(`li[data-key="${key}"] button[data-action="present"]`)
  const hide = mod.locator(`li[data-key="${key}"] button[data-action="hide"]`)
  await present.waitFor({ timeout: 15_000 })
  await present.evaluate((b) => (b.__probe = 'same'))
  await hide.evaluate((b) => (b.__probe = 'same'))
  // the rapporteur types into conclusion 1 of the same group, one key every 15 ms, throughout
  const rta = rap.locator('li[data-id="seed-wg-migrants-0"] textarea')
  await rta.click()
  await rta.press('End')
  let typing = true
  let typed = 0
  const typist = (async () => {
    while (typing && typed < 2000) {
      await rap.keyboard.type(typed % 10 === 9 ? ' ' : 'y', { delay: 0 })
      typed++
      await new Promise((r) => setTimeout(r, 15))
    }
  })()
  try {
    await mod.waitForFunction((k) => /y{5}/.test(document.querySelector(`li[data-key="${k}"] .ctext`)?.textContent ?? ''), typedKey, { timeout: 10_000 })
    // Present on and off, Hide on and off (a hidden item cannot be presented)
    for (let i = 0; i < 4; i++) {
      for (const b of [present, present, hide, hide]) {
        const was = await b.getAttribute('aria-pressed')
        await b.click()
        await mod.waitForFunction(
          ([k, act, w]) => document.querySelector(`li[data-key="${k}"] button[data-action="${act}"]`)?.getAttribute('aria-pressed') !== w,
          [key, await b.getAttribute('data-action'), was],
          { timeout: 5_000 },
        )
      }
    }
    const seenBefore = typed
    // the console still follows the typing (the text of the typed item grows)
    await mod.waitForFunction(([k, n]) => ((document.querySelector(`li[data-key="${k}"] .ctext`)?.textContent ?? '').match(/y/g) ?? []).length >= n, [typedKey, Math.min(seenBefore, 40)], { timeout: 10_000 })
  } finally {
    typing = false
    await typist
  }
  assert.ok(typed > 40, `the rapporteur kept typing during the clicks (${typed} keys)`)
  assert.equal(await present.evaluate((b) => b.__probe), 'same', 'Present was updated in place, not rebuilt')
  assert.equal(await hide.evaluate((b) => b.__probe), 'same', 'Hide was updated in place, not rebuilt')
  // 8 clicks each: back where they started
  assert.equal(await present.getAttribute('aria-pressed'), 'false')
  assert.equal(await hide.getAttribute('aria-pressed'), 'false')
  // the last edit is the live one now
  const st = mod.locator('section.cgroup[data-group="wg-migrants"]').getByTestId('group-status')
  await st.getByText(/Rapporteur online/).waitFor({ timeout: 10_000 })
  await st.getByText(/last edit \d\d:\d\d/).waitFor({ timeout: 10_000 })
  assert.deepEqual(errs, [])
  for (const p of [rap, mod]) await p.context().close()
})

test('console: the closed flag follows the server, not the state the page loaded with', { timeout: 90_000 }, async () => {
  // closed before the console opens: the page-load answer says closed
  assert.equal((await api('/groups/wg-trends/close')).status, 200)
  const mod = await (await browser.newContext(DESKTOP)).newPage()
  const other = await (await browser.newContext(DESKTOP)).newPage()
  const errs = watchErrors(mod, other)
  await mod.goto(L.moderator)
  await waitOnline(mod)
  const trends = mod.locator('section.cgroup[data-group="wg-trends"]')
  await trends.getByTestId('closed-badge').waitFor({ timeout: 10_000 })
  // reopened through the API: the open console shows it open, without a reload
  assert.equal((await api('/groups/wg-trends/reopen')).status, 200)
  await trends.getByTestId('closed-badge').waitFor({ state: 'detached', timeout: 5_000 })
  assert.match(await trends.getByTestId('close-group').textContent(), /Close group/)
  // and it stays open when anything else of the page is drawn again (no snapshot comes back)
  await trends.getByTestId('collapse').click()
  await trends.getByTestId('collapse').click()
  assert.equal(await trends.getByTestId('closed-badge').count(), 0)
  // closed from another console: shown here at once
  await other.goto(L.moderator)
  await waitOnline(other)
  await other.locator('section.cgroup[data-group="wg-trends"]').getByRole('button', { name: /Close group/ }).click()
  await trends.getByTestId('closed-badge').waitFor({ timeout: 5_000 })
  await screenshot(mod, 'console-1366x900-closed-elsewhere')
  // "Close all" / "Reopen all" through the API: every group follows
  assert.equal((await api('/close')).status, 200)
  for (const g of ['wg-migrants', 'wg-handbook', 'wg-trends']) await mod.locator(`section.cgroup[data-group="${g}"]`).getByTestId('closed-badge').waitFor({ timeout: 5_000 })
  assert.equal((await api('/reopen')).status, 200)
  for (const g of ['wg-migrants', 'wg-handbook', 'wg-trends']) await mod.locator(`section.cgroup[data-group="${g}"]`).getByTestId('closed-badge').waitFor({ state: 'detached', timeout: 5_000 })
  assert.deepEqual(errs, [])
  for (const p of [mod, other]) await p.context().close()
})
