// Live moderation: the console keeps its buttons while groups type (keyed updates, no lost clicks);
// a moderator's inline edit reaches the rapporteur's page, with "Moderator" shown there; a group
// closed from another console shows at once; the phone keeps its tabs' content offline.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import WS from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { suite, createMeeting, demoMeeting, links, DESKTOP, PHONE, waitOnline, watchErrors, screenshot, addConclusions, yjsWrite } from './helpers.mjs'

const { server, browser } = await suite()
let created, L
const A = ['Create a joint contact point for firearms cases.', 'Publish the handbook in all regional languages.', 'Train officers on converted weapons.']
before(async () => {
  created = await createMeeting(server.url, demoMeeting('live'))
  L = links(server.url, created)
  await addConclusions(server.url, created.id, 'wg-migrants', created.tokens.rapporteurs['wg-migrants'], A)
  await addConclusions(server.url, created.id, 'wg-trends', created.tokens.rapporteurs['wg-trends'], ['Monitor online sales of alarm weapons.'])
})

/** a stock Yjs client that types into a conclusion of wg-trends every few ms until stopped */
function typist() {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(`${server.url.replace(/^http/, 'ws')}/ws`, `${created.id}/wg-trends`, doc, { params: { token: created.tokens.rapporteurs['wg-trends'] }, WebSocketPolyfill: WS, disableBc: true })
  let timer = null
  let typed = 0
  provider.once('sync', () => {
    timer = setInterval(() => {
      const t = doc.getArray('conclusions').get(0).get('text')
      t.insert(t.length, typed % 20 === 19 ? ' ' : 'x')
      typed++
    }, 15)
  })
  return {
    typed: () => typed,
    stop() {
      clearInterval(timer)
      provider.destroy()
      doc.destroy()
    },
  }
}

test('console: clicks land while another client types continuously (keyed updates)', { timeout: 120_000 }, async () => {
  const ctx = await browser.newContext(DESKTOP)
  const mod = await ctx.newPage()
  const errs = watchErrors(mod)
  await mod.goto(L.moderator)
  await waitOnline(mod)
  const key = `wg-migrants/seed-wg-migrants-1`
  const hide = mod.locator(`li[data-key="${key}"] button[data-action="hide"]`)
  await hide.waitFor({ timeout: 15_000 })
  // mark the button element: a rebuilt DOM would lose the mark
  await hide.evaluate((b) => (b.__probe = 'same element'))
  const t = typist()
  try {
    await mod.waitForFunction(() => /x{5}/.test(document.querySelector('[data-key^="wg-trends/"] .ctext')?.textContent ?? ''), null, { timeout: 10_000 })
    for (let i = 0; i < 10; i++) {
      const before = await hide.getAttribute('aria-pressed')
      await hide.click()
      await mod.waitForFunction(([k, b]) => document.querySelector(`li[data-key="${k}"] button[data-action="hide"]`).getAttribute('aria-pressed') !== b, [key, before], { timeout: 5_000 })
    }
    assert.ok(t.typed() > 30, `the other client kept typing (${t.typed()} keystrokes)`)
    assert.equal(await hide.evaluate((b) => b.__probe), 'same element', 'the button was updated in place, not rebuilt')
    // the text of the other group follows the typing
    const shown = await mod.locator('[data-key^="wg-trends/"] .ctext').textContent()
    assert.match(shown, /x{10}/)
  } finally {
    t.stop()
  }
  assert.equal(await hide.getAttribute('aria-pressed'), 'false', '10 clicks: back to shown')
  assert.deepEqual(errs, [])
  await ctx.close()
})

test('console: inline edit of a conclusion reaches the rapporteur page, with "Moderator" shown there', { timeout: 120_000 }, async () => {
  const rctx = await browser.newContext(DESKTOP)
  const rap = await rctx.newPage()
  const mctx = await browser.newContext(DESKTOP)
  const mod = await mctx.newPage()
  const errs = watchErrors(rap, mod)
  await rap.goto(L.rapporteur('wg-migrants'))
  await waitOnline(rap)
  await mod.goto(L.moderator)
  await waitOnline(mod)
  const key = 'wg-migrants/seed-wg-migrants-0'
  const li = mod.locator(`li[data-key="${key}"]`)
  await li.locator('button[data-action="edit"]').click()
  const ta = li.getByTestId('inline-edit')
  await ta.waitFor()
  assert.equal(await ta.inputValue(), A[0])
  // the rapporteur sees who is editing, on that item
  await rap.locator('.people li', { hasText: 'Moderator' }).waitFor({ timeout: 10_000 })
  await rap.locator('li[data-id="seed-wg-migrants-0"] [data-testid="editing-by"]', { hasText: 'Moderator is editing' }).waitFor({ timeout: 10_000 })
  await screenshot(rap, 'rapporteur-desktop-moderator-editing')
  await screenshot(mod, 'console-desktop-inline-edit')
  // the moderator types at the end while the rapporteur types at the start: both kept (small edits)
  await ta.press('End')
  await mod.keyboard.type(' (amended)')
  const rta = rap.locator('li[data-id="seed-wg-migrants-0"] textarea')
  await rap.waitForFunction(() => document.querySelector('li[data-id="seed-wg-migrants-0"] textarea').value.endsWith('(amended)'), null, { timeout: 10_000 })
  await rta.click()
  await rta.press('Home')
  await rap.keyboard.type('Agreed: ')
  const both = `Agreed: ${A[0]} (amended)`
  await mod.waitForFunction(([k, v]) => document.querySelector(`li[data-key="${k}"] textarea`).value === v, [key, both], { timeout: 10_000 })
  await rap.waitForFunction((v) => document.querySelector('li[data-id="seed-wg-migrants-0"] textarea').value === v, both, { timeout: 10_000 })
  // done: the mark goes, the plenary has the new wording
  await li.locator('button[data-action="edit"]').click()
  await rap.locator('[data-testid="editing-by"]').waitFor({ state: 'detached', timeout: 10_000 })
  await li.locator('.ctext', { hasText: both }).waitFor({ timeout: 10_000 })
  assert.deepEqual(errs, [])
  await rctx.close()
  await mctx.close()
})

test('console: a group closed from another console shows at once; the group status is live', { timeout: 120_000 }, async () => {
  const a = await (await browser.newContext(DESKTOP)).newPage()
  const b = await (await browser.newContext(DESKTOP)).newPage()
  const rap = await (await browser.newContext(DESKTOP)).newPage()
  const errs = watchErrors(a, b, rap)
  await a.goto(L.moderator)
  await b.goto(L.moderator)
  await Promise.all([waitOnline(a), waitOnline(b)])
  const groupB = b.locator('section.cgroup[data-group="wg-handbook"]')
  await groupB.getByTestId('group-status').getByText('No rapporteur online').waitFor({ timeout: 10_000 })
  // a rapporteur opens the group: the status says so
  await rap.goto(L.rapporteur('wg-handbook'))
  await waitOnline(rap)
  await groupB.getByTestId('group-status').getByText('Rapporteur online').waitFor({ timeout: 10_000 })
  await rap.getByTestId('add-conclusion').click()
  await rap.keyboard.type('Translate the handbook.')
  await groupB.getByTestId('group-status').getByText(/1 draft · last edit \d\d:\d\d/).waitFor({ timeout: 10_000 })
  // console A closes it: console B shows it without reloading, and back on reopen
  await a.locator('section.cgroup[data-group="wg-handbook"]').getByRole('button', { name: /Close group/ }).click()
  await groupB.getByTestId('closed-badge').waitFor({ timeout: 5_000 })
  assert.match(await groupB.getByTestId('close-group').textContent(), /Reopen group/)
  await a.locator('section.cgroup[data-group="wg-handbook"]').getByRole('button', { name: /Reopen group/ }).click()
  await groupB.getByTestId('closed-badge').waitFor({ state: 'detached', timeout: 5_000 })
  // closed through the API (e.g. by the organizer): both consoles follow
  const r = await fetch(`${server.url}/api/meetings/${created.id}/groups/wg-handbook/close`, { method: 'POST', headers: { Authorization: `Bearer ${created.tokens.moderator}` } })
  assert.equal(r.status, 200)
  await groupB.getByTestId('closed-badge').waitFor({ timeout: 5_000 })
  await a.locator('section.cgroup[data-group="wg-handbook"]').getByTestId('closed-badge').waitFor({ timeout: 5_000 })
  await fetch(`${server.url}/api/meetings/${created.id}/groups/wg-handbook/reopen`, { method: 'POST', headers: { Authorization: `Bearer ${created.tokens.moderator}` } })
  await groupB.getByTestId('closed-badge').waitFor({ state: 'detached', timeout: 5_000 })
  // collapsing groups: the whole structure of the meeting on a 1366×768 laptop
  await b.setViewportSize({ width: 1366, height: 768 })
  await b.getByTestId('collapse-all').click()
  const last = await b.locator('section.cgroup').last().boundingBox()
  assert.ok(last.y + last.height <= 768, `every group in view once collapsed (${last.y + last.height})`)
  await screenshot(b, 'console-1366x768-collapsed')
  assert.deepEqual(errs, [])
  for (const p of [a, b, rap]) await p.context().close()
})

test('phone: the tabs keep their content offline, with the time of the last update', { timeout: 120_000 }, async () => {
  await yjsWrite(server.url, `${created.id}/wg-migrants`, created.tokens.rapporteurs['wg-migrants'], (doc, Yj) => {
    const p = new Yj.XmlElement('paragraph')
    p.insert(0, [new Yj.XmlText('Cases of armed possession among migrants were presented.')])
    doc.getXmlFragment('notes').insert(0, [p])
  })
  const ctx = await browser.newContext({ ...PHONE, viewport: { width: 360, height: 640 } })
  const phone = await ctx.newPage()
  const errs = watchErrors(phone)
  await phone.goto(L.participant)
  await waitOnline(phone)
  // content first: the first item is on the first screen
  const first = phone.locator('[data-testid="content"] li').first()
  await first.waitFor({ timeout: 15_000 })
  // the list may be drawn again between the wait and the measure (the meeting's settings
  // arrive): measure the item that is there, within a deadline
  let box = null
  for (const end = Date.now() + 10_000; !box && Date.now() < end;) box = await first.boundingBox()
  assert.ok(box, 'the first conclusion is laid out')
  assert.ok(box.y < 640 * 0.6, `the first conclusion starts on the first screen (${box.y})`)
  assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth <= innerWidth), true, 'no horizontal scroll')
  await phone.getByRole('button', { name: 'Migrants with weapons' }).click()
  await phone.locator('.notes', { hasText: 'Cases of armed possession' }).waitFor({ timeout: 15_000 })
  await phone.getByRole('button', { name: 'Plenary' }).click()
  await phone.locator('[data-testid="content"] section.pgroup').first().waitFor()

  await ctx.setOffline(true)
  await phone.getByRole('button', { name: 'Migrants with weapons' }).click()
  await phone.locator('[data-testid="connection"]:not([data-state="online"])').waitFor({ timeout: 15_000 })
  await phone.getByTestId('updated').getByText(/^last updated \d\d:\d\d/).waitFor({ timeout: 10_000 })
  assert.equal(await phone.locator('[data-testid="content"]', { hasText: 'Loading' }).count(), 0, 'nothing thrown away')
  await phone.locator('.notes', { hasText: 'Cases of armed possession' }).waitFor({ timeout: 2_000 })
  await phone.locator('[data-testid="content"] li', { hasText: A[2] }).waitFor({ timeout: 2_000 })
  await screenshot(phone, 'participant-360x640-offline')
  // back to the plenary, still offline: still there
  await phone.getByRole('button', { name: 'Plenary' }).click()
  await phone.locator('[data-testid="content"] li', { hasText: A[2] }).waitFor({ timeout: 2_000 })
  // a tab never opened says so instead of spinning
  await phone.getByRole('button', { name: /Handbook/ }).click()
  await phone.getByTestId('updated').getByText('not loaded yet').waitFor({ timeout: 10_000 })
  await ctx.setOffline(false)
  await phone.locator('[data-testid="connection"][data-state="online"]').waitFor({ timeout: 30_000 })
  assert.deepEqual(errs, [])
  await ctx.close()
})
