// The phone keeps every tab it loaded across a reload while offline: the service worker serves the
// page, the meeting's description comes from localStorage, and each tab's last content from the
// copies kept in localStorage (src/lib/snapshot.ts), with "last updated HH:MM".
import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, createMeeting, demoMeeting, links, launch, PHONE, waitOnline, watchErrors, screenshot, addConclusions, yjsWrite } from './helpers.mjs'

let server, browser, created, L
const A = ['Create a joint contact point for firearms cases.', 'Publish the handbook in all regional languages.']
const NOTE = 'Cases of armed possession among migrants were presented.'
before(async () => {
  server = await startServer()
  browser = await launch()
  created = await createMeeting(server.url, demoMeeting('phone-reload'))
  L = links(server.url, created)
  await addConclusions(server.url, created.id, 'wg-migrants', created.tokens.rapporteurs['wg-migrants'], A)
  await yjsWrite(server.url, `${created.id}/wg-migrants`, created.tokens.rapporteurs['wg-migrants'], (doc, Yj) => {
    const p = new Yj.XmlElement('paragraph')
    p.insert(0, [new Yj.XmlText(NOTE)])
    doc.getXmlFragment('notes').insert(0, [p])
  })
})
after(async () => {
  await browser?.close()
  await server?.stop()
  server?.cleanup()
})

const copies = (page) => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('plenary-copy:')).map((k) => k.split(':').pop()).sort())

/** A 360×640 phone on the participant link, live, reloaded once so the service worker controls it. */
async function phoneUnderServiceWorker() {
  const ctx = await browser.newContext({ ...PHONE, viewport: { width: 360, height: 640 } })
  const phone = await ctx.newPage()
  const errs = watchErrors(phone)
  await phone.goto(L.participant)
  await waitOnline(phone)
  await phone.evaluate(() => navigator.serviceWorker.ready)
  await phone.reload()
  await waitOnline(phone)
  return { ctx, phone, errs }
}

test('phone: a reload while offline shows every tab loaded before, with "last updated"', { timeout: 120_000 }, async () => {
  const { ctx, phone, errs } = await phoneUnderServiceWorker()
  assert.ok(await phone.evaluate(() => !!navigator.serviceWorker.controller), 'the page is controlled by the service worker')
  await phone.locator('[data-testid="content"] li', { hasText: A[1] }).waitFor({ timeout: 15_000 })
  await phone.getByRole('button', { name: 'Migrants with weapons' }).click()
  await phone.locator('.notes', { hasText: NOTE }).waitFor({ timeout: 15_000 })
  // both documents are kept (written when they first synced)
  for (const end = Date.now() + 10_000; Date.now() < end;) {
    if ((await copies(phone)).join() === 'plenary,wg-migrants') break
    await phone.waitForTimeout(100)
  }
  assert.deepEqual(await copies(phone), ['plenary', 'wg-migrants'])

  await ctx.setOffline(true)
  await phone.reload()
  await phone.locator('[data-testid="connection"]').waitFor({ timeout: 15_000 })
  // the tab shown at the reload (the plenary): its content, and when it was last live
  await phone.locator('[data-testid="content"] li', { hasText: A[1] }).waitFor({ timeout: 10_000 })
  await phone.getByTestId('updated').getByText(/^last updated \d\d:\d\d/).waitFor({ timeout: 10_000 })
  assert.equal(await phone.locator('[data-testid="content"]', { hasText: 'Loading' }).count(), 0, 'nothing thrown away')
  // the numbers are those of the plenary
  assert.deepEqual(await phone.locator('[data-testid="content"] li [data-testid="number"]').allTextContents(), ['1.1', '1.2'])
  // the group tab: its conclusions and its notes
  await phone.getByRole('button', { name: 'Migrants with weapons' }).click()
  await phone.locator('.notes', { hasText: NOTE }).waitFor({ timeout: 5_000 })
  await phone.locator('[data-testid="content"] li', { hasText: A[0] }).waitFor({ timeout: 5_000 })
  await phone.getByTestId('updated').getByText(/^last updated \d\d:\d\d/).waitFor({ timeout: 5_000 })
  assert.notEqual(await phone.locator('[data-testid="connection"]').getAttribute('data-state'), 'online')
  await screenshot(phone, 'participant-360x640-offline-reload')
  // a tab never loaded says so
  await phone.getByRole('button', { name: /Handbook/ }).click()
  await phone.getByTestId('updated').getByText('not loaded yet').waitFor({ timeout: 5_000 })

  // back online: live again, and what the groups wrote meanwhile arrives
  await addConclusions(server.url, created.id, 'wg-migrants', created.tokens.rapporteurs['wg-migrants'], ['Written while the phone was offline.'])
  await ctx.setOffline(false)
  await phone.getByRole('button', { name: 'Migrants with weapons' }).click()
  await phone.locator('[data-testid="connection"][data-state="online"]').waitFor({ timeout: 30_000 })
  await phone.locator('[data-testid="content"] li', { hasText: 'Written while the phone was offline.' }).waitFor({ timeout: 15_000 })
  assert.equal(await phone.getByTestId('updated').textContent(), '')
  assert.deepEqual(errs, [])
  await ctx.close()
})

// The copies are bounded (src/lib/snapshot.ts): a document whose copy would exceed 400,000
// characters is not kept, and when a meeting's copies pass 1,500,000 characters its oldest go
// first; another meeting's copies are never touched.
test('phone: kept copies stay within their bounds (too large: not kept; over budget: oldest go)', { timeout: 120_000 }, async () => {
  const MAX_MEETING = 1_500_000
  // the handbook group's notes: ~330 KB of text, whose copy (base64 of the update) is ~440,000 characters
  const line = 'Border guards and customs officers exchange firearms case data within 24 hours. '
  const BIG = line.repeat(Math.ceil(330_000 / line.length))
  await yjsWrite(server.url, `${created.id}/wg-handbook`, created.tokens.rapporteurs['wg-handbook'], (doc, Yj) => {
    const p = new Yj.XmlElement('paragraph')
    p.insert(0, [new Yj.XmlText(BIG)])
    doc.getXmlFragment('notes').insert(0, [p])
  }, 30_000)

  const { ctx, phone, errs } = await phoneUnderServiceWorker()
  for (const end = Date.now() + 10_000; Date.now() < end && !(await copies(phone)).includes('plenary');) await phone.waitForTimeout(100)
  const plenaryKey = await phone.evaluate(() => Object.keys(localStorage).find((k) => k.startsWith('plenary-copy:') && k.endsWith(':plenary')))
  assert.ok(plenaryKey, 'the plenary is kept')
  const prefix = plenaryKey.slice(0, -'plenary'.length)
  // earlier copies of this meeting (rooms of an earlier visit), 5 × 350,000 characters, oldest
  // first, and one of another meeting
  const other = `plenary-copy:another-meeting:${prefix.split(':')[2]}:plenary`
  await phone.evaluate(({ prefix, other }) => {
    const filler = 'A'.repeat(350_000)
    for (let i = 1; i <= 5; i++) localStorage.setItem(`${prefix}old${i}`, JSON.stringify({ at: i, u: filler }))
    localStorage.setItem(other, JSON.stringify({ at: 0, u: filler }))
  }, { prefix, other })

  // the large group goes live (shown), yet is not kept
  await phone.getByRole('button', { name: /Handbook/ }).click()
  await phone.locator('.notes', { hasText: line.trim() }).first().waitFor({ timeout: 30_000 })
  // the migrants group goes live: its copy is kept, and the meeting's oldest copy makes room
  await phone.getByRole('button', { name: 'Migrants with weapons' }).click()
  await phone.locator('.notes', { hasText: NOTE }).waitFor({ timeout: 15_000 })
  for (const end = Date.now() + 10_000; Date.now() < end && !(await copies(phone)).includes('wg-migrants');) await phone.waitForTimeout(100)
  const kept = await phone.evaluate((prefix) => {
    const mine = Object.keys(localStorage).filter((k) => k.startsWith(prefix))
    return { rooms: mine.map((k) => k.slice(prefix.length)).sort(), total: mine.reduce((n, k) => n + localStorage.getItem(k).length, 0) }
  }, prefix)
  assert.deepEqual(kept.rooms, ['old2', 'old3', 'old4', 'old5', 'plenary', 'wg-migrants'], 'the handbook is not kept; old1, the oldest, made room')
  assert.ok(kept.total <= MAX_MEETING, `the meeting's copies take ${kept.total} characters`)
  assert.ok(await phone.evaluate((k) => localStorage.getItem(k) !== null, other), "another meeting's copy is untouched")
  await screenshot(phone, 'participant-360x640-copies-bounded')

  // offline, the large group's tab says it has no copy; the kept one still shows
  await ctx.setOffline(true)
  await phone.reload()
  await phone.locator('[data-testid="connection"]').waitFor({ timeout: 15_000 })
  await phone.getByRole('button', { name: /Handbook/ }).click()
  await phone.getByTestId('updated').getByText('not loaded yet').waitFor({ timeout: 5_000 })
  await phone.getByRole('button', { name: 'Migrants with weapons' }).click()
  await phone.locator('.notes', { hasText: NOTE }).waitFor({ timeout: 5_000 })
  assert.deepEqual(errs, [])
  await ctx.close()
})
