// A rapporteur's conclusion reaches the projector and a participant's phone; the participant can
// edit nothing; the moderator hides an item and presents another, and the projector follows.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { suite, createMeeting, demoMeeting, links, DESKTOP, PHONE, PROJECTOR, waitOnline, watchErrors, screenshot } from './helpers.mjs'

const { server, browser } = await suite()

const T1 = 'Establish a regional contact list of firearms focal points.'
const T2 = 'Train border officers to recognise converted blank-firing weapons.'
const T3 = 'Share seizure data with FRONTEX within 48 hours.'

/** Send a document-changing update over a raw socket; resolves with the server's auth reason. */
function rawWrite(base, m, g, token) {
  const doc = new Y.Doc()
  const c = new Y.Map()
  c.set('id', 'intruder')
  c.set('text', new Y.Text('written by a participant'))
  doc.getArray('conclusions').push([c])
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 0)
  encoding.writeVarUint(enc, 2)
  encoding.writeVarUint8Array(enc, Y.encodeStateAsUpdate(doc))
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/ws/${m}/${g}?token=${encodeURIComponent(token)}`)
    const timer = setTimeout(() => (ws.terminate(), reject(new Error('no auth answer within 10 s'))), 10_000)
    ws.on('open', () => ws.send(encoding.toUint8Array(enc)))
    ws.on('message', (data) => {
      const d = decoding.createDecoder(new Uint8Array(data))
      if (decoding.readVarUint(d) !== 2) return
      decoding.readVarUint(d)
      clearTimeout(timer)
      resolve(decoding.readVarString(d))
      ws.close()
    })
    ws.on('error', (e) => (clearTimeout(timer), reject(e)))
  })
}

async function addConclusion(page, text) {
  await page.getByTestId('add-conclusion').click()
  await page.keyboard.type(text)
}

test('conclusions flow to projector and phone; moderator curation drives the projector', { timeout: 180_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('plenary-flow'))
  const L = links(server.url, created)

  const rapCtx = await browser.newContext(DESKTOP)
  const rap = await rapCtx.newPage()
  const projCtx = await browser.newContext(PROJECTOR)
  const proj = await projCtx.newPage()
  const phoneCtx = await browser.newContext(PHONE)
  const phone = await phoneCtx.newPage()
  const modCtx = await browser.newContext(DESKTOP)
  const mod = await modCtx.newPage()
  const errs = watchErrors(rap, proj, phone, mod)

  // the phone loads only what the participant view needs: no editor, no IndexedDB layer
  const phoneScripts = []
  phone.on('request', (r) => r.resourceType() === 'script' && phoneScripts.push(r.url()))
  const phoneSockets = []
  phone.on('websocket', (ws) => phoneSockets.push(ws.url()))

  await rap.goto(L.rapporteur('wg-migrants'))
  await proj.goto(L.projector)
  await phone.goto(L.participant)
  await Promise.all([waitOnline(rap), waitOnline(proj), waitOnline(phone)])

  await addConclusion(rap, T1)
  await addConclusion(rap, T2)
  const rap2Ctx = await browser.newContext(DESKTOP)
  const rap2 = await rap2Ctx.newPage()
  await rap2.goto(L.rapporteur('wg-trends'))
  await waitOnline(rap2)
  await addConclusion(rap2, T3)

  for (const [page, root] of [[proj, '[data-testid="projector-body"]'], [phone, '[data-testid="content"]']]) {
    for (const t of [T1, T2, T3]) await page.locator(`${root} li`, { hasText: t }).waitFor({ timeout: 20_000 })
  }
  assert.match(await proj.getByTestId('address').textContent(), /Follow on your phone/)

  // the participant cannot edit anything: no editable control on either tab
  const editable = () => document.querySelectorAll('input, textarea, select, [contenteditable="true"], [contenteditable=""]').length
  assert.equal(await phone.evaluate(editable), 0)
  await phone.getByRole('button', { name: 'Migrants with weapons' }).click()
  await phone.locator('[data-testid="content"] li', { hasText: T1 }).waitFor({ timeout: 15_000 })
  assert.equal(await phone.evaluate(editable), 0)
  await screenshot(phone, 'participant-phone-group')
  // ... and the server refuses a participant's write even when it bypasses the UI
  assert.match(await rawWrite(server.url, created.id, 'wg-migrants', created.tokens.participant), /permission|denied|read.?only|not allowed/i)

  // switching tabs moved the phone from the plenary document to the group document only
  assert.ok(phoneSockets.some((u) => u.includes('/ws/plenary-flow/plenary')), 'phone opened the plenary room')
  assert.ok(phoneSockets.some((u) => u.includes('/ws/plenary-flow/wg-migrants')), 'phone opened the group room')
  assert.ok(!phoneSockets.some((u) => u.includes('/wg-trends') || u.includes('/wg-handbook')), 'phone did not open other rooms')
  assert.ok(!phoneScripts.some((u) => /rapporteur|y-indexeddb|qr-/.test(u)), `phone loaded no editor code: ${phoneScripts.join(', ')}`)

  // the moderator hides T1 and presents T2; the projector follows
  await mod.goto(L.moderator)
  await waitOnline(mod)
  const item = (text) => mod.locator('[data-testid="groups"] li', { hasText: text })
  await item(T1).waitFor({ timeout: 15_000 })
  await item(T1).getByRole('button', { name: 'Hide' }).click()
  await item(T2).getByRole('button', { name: 'Present' }).click()
  await mod.getByTestId('presenting-now').getByText(T2).waitFor({ timeout: 10_000 })

  // the projector shows the presented item alone (focus slide); T1 hidden, so T2 is now 1.1
  const presented = proj.locator('[data-testid="focus"]', { hasText: T2 })
  await presented.waitFor({ timeout: 15_000 })
  assert.equal(await presented.getAttribute('aria-current'), 'true')
  await proj.locator('[data-testid="focus-number"]', { hasText: '1.1' }).waitFor({ timeout: 10_000 })
  assert.equal(await proj.getByTestId('focus-group').textContent(), 'Migrants with weapons')
  await proj.waitForFunction(() => {
    const r = document.querySelector('[data-testid="focus-text"]')?.getBoundingClientRect()
    return r && r.top >= 0 && r.bottom <= window.innerHeight
  }, null, { timeout: 10_000 })

  // the phone's plenary tab follows as well
  await phone.getByRole('button', { name: 'Plenary' }).click()
  await phone.getByTestId('now-line').filter({ hasText: T2 }).waitFor({ timeout: 15_000 })
  // words apart ("Presenting now 1.1 Train…", not "Presenting nowTrain…"), in the list too
  assert.equal(await phone.getByTestId('now-line').innerText().then((t) => t.replace(/\s+/g, ' ')), `PRESENTING NOW 1.1 ${T2}`)
  // the list item may be drawn a frame before its badge: wait for the badge, then check the text
  await phone.locator('li.presenting', { hasText: /Presenting now/i }).waitFor({ timeout: 10_000 })
  assert.match(await phone.locator('li.presenting').innerText(), /Presenting now\s*\n/i)
  assert.equal(await phone.locator('[data-testid="content"] li', { hasText: T1 }).count(), 0)

  // un-hide and stop presenting: the projector follows again
  await item(T1).getByRole('button', { name: 'Hide' }).click()
  await proj.locator('[data-testid="focus-number"]', { hasText: '1.2' }).waitFor({ timeout: 15_000 })
  await mod.getByRole('button', { name: 'Stop presenting' }).click()
  // nothing presented: the overview, with every item
  await proj.locator('[data-testid="projector-body"] li', { hasText: T1 }).waitFor({ timeout: 15_000 })
  assert.equal(await proj.locator('[data-testid="projector-body"] li', { hasText: T3 }).count(), 1)
  assert.equal(await proj.locator('[data-testid="projector-body"] li.presenting').count(), 0)

  // reorder: move the trends group first; the projector shows it first
  await mod.getByRole('button', { name: 'Move New trends and threats in firearms trafficking up' }).click()
  await mod.getByRole('button', { name: 'Move New trends and threats in firearms trafficking up' }).click()
  await proj.waitForFunction(() => document.querySelector('[data-testid="projector-body"] section.pgroup')?.dataset.group === 'wg-trends', null, { timeout: 15_000 })

  // intro text typed in the console shows on the projector
  const intro = mod.getByTestId('intro')
  await intro.waitFor({ state: 'visible' })
  await mod.waitForFunction(() => !document.querySelector('[data-testid="intro"]').disabled, null, { timeout: 10_000 })
  await intro.click()
  await mod.keyboard.type('Conclusions of the three working groups')
  await proj.locator('.intro', { hasText: 'Conclusions of the three working groups' }).waitFor({ timeout: 15_000 })

  // step through with "Present next": first visible item in projector order is T3 (wg-trends first)
  await mod.getByRole('button', { name: /Present the first item/ }).click()
  await proj.locator('[data-testid="focus"]', { hasText: T3 }).waitFor({ timeout: 15_000 })
  await mod.getByRole('button', { name: /Present next/ }).click()
  await proj.locator('[data-testid="focus"]', { hasText: T1 }).waitFor({ timeout: 15_000 })
  await mod.getByRole('button', { name: /Present next/ }).click()
  await proj.locator('[data-testid="focus"]', { hasText: T2 }).waitFor({ timeout: 15_000 })
  await screenshot(proj, 'projector-desktop-presenting')

  // the overview, chosen in the console, highlights the presented item
  await mod.getByTestId('screen-overview').click()
  await proj.locator('[data-testid="projector-body"] li.presenting', { hasText: T2 }).waitFor({ timeout: 15_000 })
  // the moderator closes a group: the rapporteur's page turns read-only at once, and back on reopen
  const migrants = mod.locator('section.cgroup[data-group="wg-migrants"]')
  await migrants.getByRole('button', { name: /Close group/ }).click()
  await migrants.locator('.badge', { hasText: 'closed' }).waitFor({ timeout: 10_000 })
  await proj.locator('section.pgroup[data-group="wg-migrants"] .badge', { hasText: 'closed' }).waitFor({ timeout: 15_000 })
  await rap.getByTestId('closed-notice').waitFor({ state: 'visible', timeout: 15_000 })
  assert.equal(await rap.getByTestId('notes-editor').getAttribute('contenteditable'), 'false')
  await migrants.getByRole('button', { name: /Reopen group/ }).click()
  await proj.locator('section.pgroup[data-group="wg-migrants"] .badge', { hasText: 'closed' }).waitFor({ state: 'detached', timeout: 15_000 })
  await rap.getByTestId('closed-notice').waitFor({ state: 'hidden', timeout: 15_000 })
  await rap.waitForFunction(() => document.querySelector('[data-testid="notes-editor"]').getAttribute('contenteditable') === 'true', null, { timeout: 5_000 })
  await screenshot(mod, 'console-desktop-curated')
  assert.deepEqual(errs, [])
  for (const c of [rapCtx, rap2Ctx, projCtx, phoneCtx, modCtx]) await c.close()
})
