// Moderator console: keyboard shortcuts step through the items (not while typing), and "Open
// projector" opens the projector with the moderator's token (never shown on the big screen; no
// organizer note there either).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { suite, createMeeting, demoMeeting, links, DESKTOP, PROJECTOR, waitOnline, watchErrors, screenshot, axe, addConclusions } from './helpers.mjs'

const { server, browser } = await suite()

const A1 = 'Create a joint contact point for firearms cases.'
const A2 = 'Publish the handbook in all regional languages.'
const B1 = 'Monitor online sales of gas and alarm weapons.'

test('keyboard shortcuts step through the items; Open projector works with the moderator token', { timeout: 120_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('shortcuts'))
  const L = links(server.url, created)
  await addConclusions(server.url, created.id, 'wg-migrants', created.tokens.rapporteurs['wg-migrants'], [A1, A2])
  await addConclusions(server.url, created.id, 'wg-trends', created.tokens.rapporteurs['wg-trends'], [B1])

  const ctx = await browser.newContext(DESKTOP)
  const mod = await ctx.newPage()
  const errs = watchErrors(mod)
  await mod.goto(L.moderator)
  await waitOnline(mod)
  await mod.locator('[data-testid="groups"] li', { hasText: B1 }).waitFor({ timeout: 15_000 })
  const now = mod.getByTestId('presenting-now')
  const presenting = (text) => now.locator('.now-card', { hasText: text }).waitFor({ timeout: 10_000 })

  // the shortcuts are documented on the page and on the buttons
  assert.match(await mod.getByTestId('shortcuts').textContent(), /J.*next.*K.*previous/s)
  assert.equal(await mod.getByRole('button', { name: /Present the first item/ }).getAttribute('aria-keyshortcuts'), 'ArrowRight PageDown Space J')

  await mod.locator('h1').click()
  await mod.keyboard.press('j')
  await presenting(A1)
  await mod.keyboard.press('j')
  await presenting(A2)
  await mod.keyboard.press('ArrowRight')
  await presenting(B1)
  assert.equal(await mod.getByTestId('position').textContent(), 'Item 3 of 3')
  await mod.keyboard.press('j') // past the end: stays
  await mod.keyboard.press('k')
  await presenting(A2)
  await mod.keyboard.press('ArrowLeft')
  await presenting(A1)

  // typing a J in a text field types it, and does not step
  const intro = mod.getByTestId('intro')
  await mod.waitForFunction(() => !document.querySelector('[data-testid="intro"]').disabled, null, { timeout: 10_000 })
  await intro.click()
  await mod.keyboard.type('Just jotting')
  await mod.keyboard.press('ArrowLeft')
  assert.equal(await intro.inputValue(), 'Just jotting')
  await mod.locator('h1').click()
  await mod.keyboard.press('j')
  await presenting(A2)
  assert.equal(await intro.inputValue(), 'Just jotting')
  // a modifier (e.g. Ctrl+K of the browser) is left alone
  await mod.keyboard.press('Control+ArrowRight')
  assert.equal(await mod.getByTestId('position').textContent(), 'Item 2 of 3')

  // the letter keys can be turned off (arrows stay), and back on
  await mod.getByLabel('Letter keys J and K').uncheck()
  await mod.locator('h1').click()
  await mod.keyboard.press('k')
  await mod.keyboard.press('ArrowRight')
  await presenting(B1)
  assert.equal(await mod.getByTestId('position').textContent(), 'Item 3 of 3', 'K was ignored, → worked')
  await mod.getByLabel('Letter keys J and K').check()
  await mod.locator('h1').click()
  await mod.keyboard.press('k')
  await presenting(A2)

  // Open projector: the moderator's token, in a new window
  const link = mod.getByTestId('open-projector')
  assert.equal(await link.getAttribute('href'), `/m/${created.id}/projector#token=${encodeURIComponent(created.tokens.moderator)}`)
  assert.equal(await link.getAttribute('target'), '_blank')
  await screenshot(mod, 'console-desktop-shortcuts')
  const [popup] = await Promise.all([ctx.waitForEvent('page'), link.click()])
  const perrs = watchErrors(popup)
  await popup.setViewportSize(PROJECTOR.viewport)
  await waitOnline(popup)
  await popup.locator('[data-testid="focus"]', { hasText: A2 }).waitFor({ timeout: 15_000 })
  assert.equal(await popup.locator('img.qr').count(), 0, 'no QR code without a known participant link')
  assert.equal(await popup.getByTestId('join-note').count(), 0, 'no note for the organizer on the big screen')
  assert.equal((await popup.content()).includes(created.tokens.moderator), false, 'the moderator token is not in the page')
  assert.match(await mod.getByTestId('projector-note').textContent(), /moderator token/)
  // the projector follows the moderator's keys
  await mod.bringToFront()
  await mod.keyboard.press('j')
  await popup.locator('[data-testid="focus"]', { hasText: B1 }).waitFor({ timeout: 15_000 })
  assert.deepEqual(await axe(popup), [])
  await screenshot(popup, 'projector-desktop-moderator-token')
  assert.deepEqual([...errs, ...perrs], [])
  await ctx.close()
})
