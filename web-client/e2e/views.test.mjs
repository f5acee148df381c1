// Every view, on a phone and a desktop viewport: no serious/critical axe-core violations, keyboard
// reachable controls, and a screenshot under test-output/screenshots/. The organizer page is driven
// end to end (admin token -> meeting -> links with QR codes).
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { suite, createMeeting, demoMeeting, links, DESKTOP, PHONE, ADMIN, waitOnline, watchErrors, screenshot, axe } from './helpers.mjs'

const { server, browser } = await suite()
let L
before(async () => {
  const created = await createMeeting(server.url, demoMeeting('views'))
  L = links(server.url, created)
  // some content so that every view has something to show
  const ctx = await browser.newContext(DESKTOP)
  const p = await ctx.newPage()
  await p.goto(L.rapporteur('wg-migrants'))
  await waitOnline(p)
  await p.getByTestId('notes-editor').click()
  await p.keyboard.type('Cases of armed possession among migrants were presented.')
  await p.keyboard.press('Enter')
  await p.getByRole('button', { name: /Bullets/ }).click()
  await p.keyboard.type('Origin of the weapons seized')
  await p.keyboard.press('Enter')
  await p.keyboard.type('Links of smugglers with organised crime')
  for (const t of ['Set up joint risk analysis between border police and customs.', 'Exchange information on armed incidents along the Balkan route.']) {
    await p.getByTestId('add-conclusion').click()
    await p.keyboard.type(t)
  }
  await p.getByTestId('conclusion-final').first().check()
  await p.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 15_000 })
  await ctx.close()
})
after(async () => {
  if (process.env.E2E_DEBUG) console.log(server?.logs(), server?.child.exitCode, server?.child.signalCode)
})

async function check(name, url, opts, ready) {
  for (const [vp, o] of [['phone', PHONE], ['desktop', DESKTOP]]) {
    const ctx = await browser.newContext(o)
    const page = await ctx.newPage()
    const errs = watchErrors(page)
    await page.goto(url(opts))
    await ready(page)
    const v = await axe(page)
    assert.deepEqual(v, [], `${name} on ${vp}: ${JSON.stringify(v, null, 1)}`)
    await screenshot(page, `${name}-${vp}`)
    // the first Tab lands on the skip link, which moves the focus to the content
    await page.keyboard.press('Tab')
    assert.equal(await page.evaluate(() => document.activeElement?.className), 'skip-link')
    await page.keyboard.press('Enter')
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main')
    assert.deepEqual(errs, [])
    await ctx.close()
  }
}

test('rapporteur editor', { timeout: 120_000 }, async () => {
  await check('rapporteur', () => L.rapporteur('wg-migrants'), {}, async (p) => {
    await waitOnline(p)
    await p.getByTestId('conclusion-text').nth(1).waitFor()
  })
})

test('moderator console', { timeout: 120_000 }, async () => {
  await check('console', () => L.moderator, {}, async (p) => {
    await waitOnline(p)
    await p.locator('[data-testid="groups"] li').first().waitFor({ timeout: 15_000 })
  })
})

test('projector', { timeout: 120_000 }, async () => {
  await check('projector', () => L.projector, {}, async (p) => {
    await waitOnline(p)
    await p.locator('[data-testid="projector-body"] li').first().waitFor({ timeout: 15_000 })
  })
})

test('participant phone view, plenary, group tab, dark mode and larger text', { timeout: 120_000 }, async () => {
  await check('participant', () => L.participant, {}, async (p) => {
    await waitOnline(p)
    await p.locator('[data-testid="content"] li').first().waitFor({ timeout: 15_000 })
  })
  const ctx = await browser.newContext(PHONE)
  const page = await ctx.newPage()
  await page.goto(L.participant)
  await waitOnline(page)
  await page.getByRole('button', { name: 'Migrants with weapons' }).click()
  await page.locator('.notes li', { hasText: 'Origin of the weapons seized' }).waitFor({ timeout: 15_000 })
  // settings are behind the menu: content first
  assert.equal(await page.getByTestId('dark-toggle').isVisible(), false)
  await page.getByTestId('menu').click()
  await page.getByTestId('dark-toggle').click()
  await page.getByTestId('text-toggle').click()
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark')
  assert.deepEqual(await axe(page), [])
  // nothing overflows a 360 px wide screen
  await page.setViewportSize({ width: 360, height: 740 })
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), true)
  await screenshot(page, 'participant-phone-dark-large-group')
  await ctx.close()
})

test('organizer page creates a meeting and shows every link with a QR code', { timeout: 120_000 }, async () => {
  for (const [vp, o] of [['phone', PHONE], ['desktop', DESKTOP]]) {
    const ctx = await browser.newContext(o)
    const page = await ctx.newPage()
    const errs = watchErrors(page)
    await page.goto(`${server.url}/organize`)
    assert.deepEqual(await axe(page), [], `organize form on ${vp}`)
    await page.getByLabel('Admin token').fill(ADMIN)
    await page.getByLabel('Meeting title').fill('Skopje regional meeting')
    await page.getByLabel('Meeting id (optional)').fill(`org-${vp}`)
    await page.getByLabel('Group 1 title').fill('Migrants with weapons')
    await page.getByRole('button', { name: '+ Add group' }).click()
    await page.getByLabel('Group 2 title').fill('New trends and threats')
    assert.equal(await page.getByLabel('Group 2 id').inputValue(), 'new-trends-and-threats')
    await page.getByTestId('create').click()
    await page.getByTestId('result').waitFor({ timeout: 15_000 })
    assert.equal(await page.getByTestId('handout').count(), 5)
    assert.equal(await page.locator('[data-testid="handout"] img.qr').count(), 5)
    assert.deepEqual(await axe(page), [], `organize result on ${vp}`)
    await screenshot(page, `organize-${vp}`)
    // the printed handouts: one page per role
    if (vp === 'desktop') {
      const pdf = (await page.pdf({ format: 'A4' })).toString('latin1')
      assert.equal((pdf.match(/\/Type\s*\/Page[^s]/g) ?? []).length, 5, 'one printed page per role (5 roles)')
    }
    await page.emulateMedia({ media: 'print' })
    await screenshot(page, `organize-print-${vp}`)
    await page.emulateMedia({ media: 'screen' })
    // the links work: the participant link opens the live view
    const href = await page.locator('a[data-role="participants"]').getAttribute('href')
    assert.match(href, new RegExp(`/m/org-${vp}#token=`))
    const p2 = await ctx.newPage()
    await p2.goto(href)
    await waitOnline(p2)
    await p2.close()
    // a wrong admin token is reported, not thrown
    await page.goto(`${server.url}/organize`)
    await page.getByLabel('Admin token').fill('wrong')
    await page.getByLabel('Meeting title').fill('x')
    await page.getByLabel('Group 1 title').fill('y')
    await page.getByTestId('create').click()
    await page.getByTestId('error').getByText('not accepted').waitFor({ timeout: 10_000 })
    assert.deepEqual(errs, [])
    await ctx.close()
  }
})

test('a link with a bad token shows a clear error', { timeout: 60_000 }, async () => {
  const ctx = await browser.newContext(PHONE)
  const page = await ctx.newPage()
  await page.goto(L.participant.replace(/#token=.*/, '#token=not-a-token'))
  await page.getByRole('alert').waitFor({ timeout: 10_000 })
  assert.match(await page.getByRole('alert').textContent(), /not valid|not accepted/)
  assert.deepEqual(await axe(page), [])
  await ctx.close()
})
