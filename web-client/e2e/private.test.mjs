// Private group notes: the moderator ticks "Group notes private to rapporteurs" in the console; the
// phone view then draws each group tab from the plenary document (numbered conclusions), says the
// notes are private and never opens the group document (the server would refuse it anyway).
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { suite, createMeeting, demoMeeting, links, DESKTOP, PHONE, waitOnline, watchErrors, screenshot, addConclusions, yjsWrite, ADMIN } from './helpers.mjs'

const { server, browser } = await suite()
let created, L
const A = ['Create a joint contact point for firearms cases.', 'Publish the handbook in all regional languages.']
const NOTE = 'Cases of armed possession among migrants were presented.'
before(async () => {
  created = await createMeeting(server.url, demoMeeting('priv'))
  L = links(server.url, created)
  await addConclusions(server.url, created.id, 'wg-migrants', created.tokens.rapporteurs['wg-migrants'], A)
  await yjsWrite(server.url, `${created.id}/wg-migrants`, created.tokens.rapporteurs['wg-migrants'], (doc, Yj) => {
    const p = new Yj.XmlElement('paragraph')
    p.insert(0, [new Yj.XmlText(NOTE)])
    doc.getXmlFragment('notes').insert(0, [p])
  })
})

const meetingInfo = async () => (await fetch(`${server.url}/api/meetings/${created.id}`, { headers: { Authorization: `Bearer ${created.tokens.moderator}` } })).json()

test('private notes: the console sets it; the phone shows conclusions from the plenary and no notes', { timeout: 120_000 }, async () => {
  // the console's checkbox PATCHes the meeting
  const mctx = await browser.newContext(DESKTOP)
  const mod = await mctx.newPage()
  const merrs = watchErrors(mod)
  await mod.goto(L.moderator)
  await waitOnline(mod)
  const box = mod.getByLabel('Group notes private to rapporteurs')
  assert.equal(await box.isChecked(), false)
  await box.check()
  for (let i = 0; i < 50 && !(await meetingInfo()).notes_private; i++) await new Promise((r) => setTimeout(r, 100))
  assert.equal((await meetingInfo()).notes_private, true, 'the checkbox made the notes private')
  await mod.reload()
  await waitOnline(mod)
  assert.equal(await mod.getByLabel('Group notes private to rapporteurs').isChecked(), true, 'the console shows the setting')
  assert.deepEqual(merrs, [])
  await mctx.close()

  const ctx = await browser.newContext({ ...PHONE, viewport: { width: 360, height: 640 } })
  const phone = await ctx.newPage()
  const errs = watchErrors(phone)
  const sockets = []
  phone.on('websocket', (ws) => sockets.push(new URL(ws.url()).pathname))
  await phone.goto(L.participant)
  await waitOnline(phone)
  await phone.getByRole('button', { name: 'Migrants with weapons' }).click()
  const items = phone.locator('[data-testid="content"] ol.conclusions li')
  await items.nth(1).waitFor({ timeout: 15_000 })
  assert.equal(await items.count(), 2)
  assert.match(await items.nth(0).textContent(), new RegExp(A[0].replace('.', '\\.')))
  const nums = await phone.locator('[data-testid="content"] [data-testid="number"]').allTextContents()
  assert.deepEqual(nums, ['1.1', '1.2'], 'G.N numbers from the plenary')
  await phone.getByTestId('notes-private').getByText('The notes of the working groups are private').waitFor({ timeout: 5_000 })
  assert.equal(await phone.locator('.notes').count(), 0, 'no notes shown')
  assert.equal(await phone.getByText(NOTE).count(), 0, 'the notes text is nowhere on the page')
  assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth <= innerWidth), true, 'no horizontal scroll')
  await screenshot(phone, 'participant-360x640-notes-private')
  // another tab, then back: still from the plenary, still no group socket
  await phone.getByRole('button', { name: /Handbook/ }).click()
  await phone.getByText('No conclusions yet.').waitFor({ timeout: 5_000 })
  await phone.getByRole('button', { name: 'Migrants with weapons' }).click()
  await items.nth(1).waitFor({ timeout: 5_000 })
  assert.deepEqual(sockets.filter((p) => !p.endsWith('/plenary')), [], `only the plenary document was opened (${sockets})`)
  assert.ok(sockets.some((p) => p.endsWith(`/${created.id}/plenary`)), `the plenary was opened (${sockets})`)
  assert.deepEqual(errs, [])
  await ctx.close()

  // turned off again: the phone opens the group document and shows the notes
  const res = await fetch(`${server.url}/api/meetings/${created.id}`, { method: 'PATCH', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ notes_private: false }) })
  assert.equal(res.status, 200)
  const ctx2 = await browser.newContext({ ...PHONE, viewport: { width: 360, height: 640 } })
  const p2 = await ctx2.newPage()
  await p2.goto(L.participant)
  await waitOnline(p2)
  await p2.getByRole('button', { name: 'Migrants with weapons' }).click()
  await p2.locator('.notes', { hasText: 'Cases of armed possession' }).waitFor({ timeout: 15_000 })
  assert.equal(await p2.getByTestId('notes-private').count(), 0)
  await ctx2.close()
})
