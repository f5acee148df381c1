// Projector auto-fit at 1920×1080: a long meeting title stays on one line with an ellipsis; many
// conclusions are scaled down to fit the screen, the rest is clipped, and the presented item is in
// view wherever it is in the list.
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, createMeeting, links, launch, DESKTOP, PROJECTOR, waitOnline, watchErrors, screenshot, axe, addConclusions } from './helpers.mjs'

let server, browser
before(async () => {
  server = await startServer()
  browser = await launch()
})
after(async () => {
  await browser?.close()
  await server?.stop()
  server?.cleanup()
})

const LONG_TITLE =
  'Regional Meeting of the Border Police and Customs Representatives on Firearms Trafficking in the Western Balkans, Skopje, North Macedonia, 12–13 October 2023'
const GROUPS = [
  { id: 'wg-migrants', title: 'Migrants with weapons' },
  { id: 'wg-handbook', title: 'Handbook on Firearms for Border Guards and Customs' },
  { id: 'wg-trends', title: 'New trends and threats in firearms trafficking' },
  { id: 'wg-data', title: 'Data exchange and risk analysis' },
]
const sentence = (g, i) => `${g.title}, conclusion ${i + 1}: ${'strengthen cooperation between agencies and share information in time, '.repeat(1 + (i % 3)).trim()}`

/** is the element fully inside the projector viewport and the window? */
const inView = (sel) => {
  const el = document.querySelector(sel)
  if (!el) return false
  const r = el.getBoundingClientRect()
  const v = document.querySelector('[data-testid="projector-viewport"]').getBoundingClientRect()
  return r.top >= v.top - 1 && r.bottom <= v.bottom + 1 && r.bottom <= window.innerHeight && r.top >= 0
}

test('the projector fits many conclusions on one screen and keeps the presented item in view', { timeout: 150_000 }, async () => {
  const created = await createMeeting(server.url, { id: 'many', title: LONG_TITLE, groups: GROUPS })
  const L = links(server.url, created)
  const perGroup = 9
  for (const g of GROUPS) {
    await addConclusions(server.url, created.id, g.id, created.tokens.rapporteurs[g.id], Array.from({ length: perGroup }, (_, i) => sentence(g, i)))
  }
  const total = perGroup * GROUPS.length

  const projCtx = await browser.newContext(PROJECTOR)
  const proj = await projCtx.newPage()
  const modCtx = await browser.newContext(DESKTOP)
  const mod = await modCtx.newPage()
  const errs = watchErrors(proj, mod)
  await proj.goto(L.projector)
  await waitOnline(proj)
  await proj.waitForFunction((n) => document.querySelectorAll('[data-testid="projector-body"] li').length === n, total, { timeout: 20_000 })
  await proj.locator('[data-testid="join"] img').waitFor()

  // the title: one line, cut with an ellipsis, the full text still available
  const t = await proj.getByTestId('projector-title').evaluate((h1) => {
    const cs = getComputedStyle(h1)
    return { overflow: cs.textOverflow, ws: cs.whiteSpace, truncated: h1.scrollWidth > h1.clientWidth, height: h1.getBoundingClientRect().height, line: parseFloat(cs.lineHeight), title: h1.title, right: h1.getBoundingClientRect().right }
  })
  assert.equal(t.overflow, 'ellipsis')
  assert.equal(t.ws, 'nowrap')
  assert.ok(t.truncated, 'the long title is truncated')
  assert.ok(t.height < t.line * 1.5, `one line (height ${t.height}, line ${t.line})`)
  assert.equal(t.title, LONG_TITLE)
  const qr = await proj.locator('[data-testid="join"]').boundingBox()
  assert.ok(t.right <= qr.x, 'the title does not run under the QR code')

  // exactly one screen: no page scrolling; the conclusions are scaled down
  const layout = () =>
    proj.evaluate(() => ({
      scroll: document.documentElement.scrollHeight,
      wide: document.documentElement.scrollWidth,
      inner: window.innerHeight,
      fit: Number(document.querySelector('[data-testid="projector-viewport"]').dataset.fit),
      foot: document.querySelector('.proj-foot').getBoundingClientRect().bottom,
    }))
  let l = await layout()
  assert.ok(l.scroll <= l.inner, `no vertical page scroll (${l.scroll} > ${l.inner})`)
  assert.ok(l.wide <= 1920, 'no horizontal scroll')
  assert.ok(l.fit < 1 && l.fit >= 0.6, `scaled down, not below 60 % (fit ${l.fit})`)
  assert.ok(l.foot <= l.inner, 'the status line is on screen')
  await screenshot(proj, 'projector-desktop-many')

  // the moderator presents the last item (K from nothing goes to the last one), then the first,
  // then one in the middle: each time the projector shows it on screen
  await mod.goto(L.moderator)
  await waitOnline(mod)
  await mod.locator('[data-testid="groups"] li').nth(total - 1).waitFor({ timeout: 15_000 })
  await mod.locator('h1').click()
  await mod.keyboard.press('k')
  const lastKey = `wg-data/seed-wg-data-${perGroup - 1}`
  await proj.locator(`li.presenting[data-key="${lastKey}"]`).waitFor({ timeout: 15_000 })
  await proj.waitForFunction(inView, 'li.presenting', { timeout: 10_000 })
  await screenshot(proj, 'projector-desktop-many-last')
  await mod.getByRole('button', { name: 'Stop presenting' }).click()
  await proj.locator('li.presenting').waitFor({ state: 'detached', timeout: 15_000 })
  await mod.locator('h1').click()
  await mod.keyboard.press('j')
  await proj.locator('li.presenting[data-key="wg-migrants/seed-wg-migrants-0"]').waitFor({ timeout: 15_000 })
  await proj.waitForFunction(inView, 'li.presenting', { timeout: 10_000 })
  for (let i = 0; i < perGroup + 4; i++) await mod.keyboard.press('j')
  await proj.locator('li.presenting[data-key="wg-handbook/seed-wg-handbook-4"]').waitFor({ timeout: 15_000 })
  await proj.waitForFunction(inView, 'li.presenting', { timeout: 10_000 })
  l = await layout()
  assert.ok(l.scroll <= l.inner, 'still no page scroll while presenting')
  assert.deepEqual(await axe(proj), [])
  await screenshot(proj, 'projector-desktop-many-presenting')

  // few items: full size again, nothing clipped
  const fewCtx = await browser.newContext(PROJECTOR)
  const few = await fewCtx.newPage()
  const m2 = await createMeeting(server.url, { id: 'few', title: 'Short title', groups: GROUPS.slice(0, 2) })
  await addConclusions(server.url, m2.id, 'wg-migrants', m2.tokens.rapporteurs['wg-migrants'], ['Only one conclusion.'])
  await few.goto(links(server.url, m2).projector)
  await waitOnline(few)
  await few.locator('[data-testid="projector-body"] li', { hasText: 'Only one conclusion.' }).waitFor({ timeout: 15_000 })
  await few.waitForFunction(() => document.querySelector('[data-testid="projector-viewport"]').dataset.fit === '1.00', null, { timeout: 5_000 })
  assert.equal(await few.getByTestId('projector-viewport').evaluate((v) => v.classList.contains('clip-bottom') || v.classList.contains('clip-top')), false)
  assert.deepEqual(errs, [])
  for (const c of [projCtx, modCtx, fewCtx]) await c.close()
})
