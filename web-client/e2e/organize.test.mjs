// The organizer page: create a meeting, find it again after a reload (admin token kept for the
// tab's session), rotate a link (the old one stops working), add and rename groups, the loopback
// warning. Screenshots at 1366x768 and 390x844.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { suite, ADMIN, screenshot, watchErrors, axe } from './helpers.mjs'

const { server: srv, browser } = await suite()

test('organizer page: create, reload, rotate, add and rename groups, loopback warning', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } })
  const page = await ctx.newPage()
  const errors = watchErrors(page)
  await page.goto(`${srv.url}/organize`)
  // the server listens on 127.0.0.1: the page says phones cannot open the links, and the fix
  const warn = page.getByTestId('loopback-warning')
  await warn.waitFor()
  assert.match(await warn.innerText(), /Phones cannot open these links/)
  assert.match(await warn.innerText(), /--addr 0\.0\.0\.0:8080 --public-url http:\/\/LAN-IP:8080/)

  await page.getByTestId('admin-token').fill(ADMIN)
  await page.getByTestId('meeting-title').fill('Skopje regional meeting')
  await page.getByTestId('group-title').first().fill('Migrants with weapons')
  await page.getByTestId('create').click()
  await page.getByTestId('result').waitFor()
  const oldParticipant = await page.locator('a[data-role="participants"]').getAttribute('href')
  assert.ok(oldParticipant.includes('#token='))
  const oldToken = decodeURIComponent(oldParticipant.split('#token=')[1])

  // reload: the token is remembered for this tab, the meeting is listed
  await page.reload()
  const card = page.locator('[data-testid="managed-meeting"][data-meeting="skopje-regional-meeting"]')
  await card.waitFor()
  assert.equal(await page.getByTestId('admin-token').inputValue(), ADMIN)
  assert.match(await card.innerText(), /Skopje regional meeting/)

  // a new participant link: the old token stops working
  let res = await fetch(`${srv.url}/api/meetings/skopje-regional-meeting`, { headers: { Authorization: `Bearer ${oldToken}` } })
  assert.equal(res.status, 200)
  await card.getByTestId('link-participant').click()
  const fresh = card.locator('[data-testid="new-link"][data-role="participant"] a')
  await fresh.waitFor()
  const newToken = decodeURIComponent((await fresh.getAttribute('href')).split('#token=')[1])
  assert.notEqual(newToken, oldToken)
  res = await fetch(`${srv.url}/api/meetings/skopje-regional-meeting`, { headers: { Authorization: `Bearer ${oldToken}` } })
  assert.equal(res.status, 401, 'the old participant link still works')
  res = await fetch(`${srv.url}/api/meetings/skopje-regional-meeting`, { headers: { Authorization: `Bearer ${newToken}` } })
  assert.equal(res.status, 200)
  // a rapporteur link too; it is marked private
  await card.getByTestId('link-rapporteur').first().click()
  await card.locator('[data-testid="new-link"][data-role="rapporteur"]').waitFor()
  assert.match(await card.locator('[data-testid="new-link"][data-role="rapporteur"] .who').innerText(), /private/i)

  // add a group, rename the meeting and a group (with short projector titles)
  await card.getByTestId('add-group-title').fill('New trends and threats')
  await card.getByTestId('add-group').click()
  const card2 = page.locator('[data-testid="managed-meeting"][data-meeting="skopje-regional-meeting"]')
  await card2.locator('[data-testid="managed-group"][data-group="new-trends-and-threats"]').waitFor()
  await card2.getByTestId('rename-title').fill('Skopje regional meeting 2023')
  await card2.getByTestId('rename-short').fill('Skopje 2023')
  await card2.getByTestId('rename-meeting').click()
  await page.locator('[data-testid="managed-meeting"] h3', { hasText: 'Skopje regional meeting 2023' }).waitFor()
  const g = page.locator('[data-testid="managed-group"][data-group="new-trends-and-threats"]')
  await g.getByTestId('group-rename-title').fill('New trends in firearms trafficking')
  await g.getByTestId('group-rename-short').fill('Trends')
  await g.getByTestId('rename-group').click()
  await page.waitForFunction(() => document.querySelector('[data-group="new-trends-and-threats"] [data-testid="group-rename-short"]')?.value === 'Trends' && !document.activeElement?.closest('[data-group]'))
  res = await fetch(`${srv.url}/api/meetings`, { headers: { Authorization: `Bearer ${ADMIN}` } })
  const list = await res.json()
  assert.deepEqual(
    { title: list.meetings[0].title, short: list.meetings[0].short_title, groups: list.meetings[0].groups.map((x) => [x.id, x.title, x.short_title ?? null]) },
    { title: 'Skopje regional meeting 2023', short: 'Skopje 2023', groups: [['migrants-with-weapons', 'Migrants with weapons', null], ['new-trends-and-threats', 'New trends in firearms trafficking', 'Trends']] },
  )
  await card2.getByTestId('link-moderator').click()
  await card2.locator('[data-testid="new-link"][data-role="moderator"]').waitFor()
  await screenshot(page, 'organize-desktop-1366')
  const violations = await axe(page)
  assert.deepEqual(violations, [], JSON.stringify(violations, null, 1))

  // phone width: the same page, usable
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true })
  const p2 = await phone.newPage()
  await p2.goto(`${srv.url}/organize`)
  await p2.getByTestId('admin-token').fill(ADMIN)
  await p2.getByTestId('admin-token').dispatchEvent('change')
  await p2.locator('[data-testid="managed-meeting"]').waitFor()
  const overflow = await p2.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
  assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow}px at 390px`)
  await screenshot(p2, 'organize-phone-390')

  // delete with a confirmation naming the meeting
  let asked = ''
  page.once('dialog', (d) => {
    asked = d.message()
    d.accept('skopje-regional-meeting')
  })
  await page.locator('[data-testid="managed-meeting"]').getByTestId('delete-meeting').click()
  await page.locator('[data-testid="managed-meeting"]').waitFor({ state: 'detached' })
  assert.match(asked, /Skopje regional meeting 2023/)
  res = await fetch(`${srv.url}/api/meetings/skopje-regional-meeting`, { headers: { Authorization: `Bearer ${newToken}` } })
  assert.equal(res.status, 404)
  assert.deepEqual(errors, [])
})
