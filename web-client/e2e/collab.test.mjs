// Two rapporteurs of one group see each other's text and named carets.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { suite, createMeeting, demoMeeting, links, DESKTOP, waitOnline, watchErrors, screenshot } from './helpers.mjs'

const { server, browser } = await suite()

async function setName(page, name) {
  const input = page.getByLabel('Your name')
  await input.fill(name)
  await input.press('Enter')
}

test('two rapporteurs see each other’s text and carets', { timeout: 120_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('collab'))
  const L = links(server.url, created)
  const ctxA = await browser.newContext(DESKTOP)
  const ctxB = await browser.newContext(DESKTOP)
  const a = await ctxA.newPage()
  const b = await ctxB.newPage()
  const errs = watchErrors(a, b)
  await a.goto(L.rapporteur('wg-migrants'))
  await b.goto(L.rapporteur('wg-migrants'))
  await waitOnline(a)
  await waitOnline(b)
  await setName(a, 'Ana')
  await setName(b, 'Marko')

  const edA = a.getByTestId('notes-editor')
  const edB = b.getByTestId('notes-editor')
  await edA.click()
  await a.keyboard.type('Armed violence among migrants is rising. ')
  // the editor's text without the other people's caret labels
  const notesText = (re) => {
    const c = document.querySelector('[data-testid="notes-editor"]').cloneNode(true)
    c.querySelectorAll('.collaboration-carets__caret').forEach((x) => x.remove())
    return new RegExp(re).test(c.textContent)
  }
  // B continues after A's sentence once it has arrived
  await b.waitForFunction(notesText, /Armed violence among migrants is rising\. $/.source, { timeout: 15_000 })
  await edB.click()
  await b.keyboard.press('ControlOrMeta+End')
  await b.keyboard.type('Smugglers are linked to organised crime.')

  const both = /Armed violence among migrants is rising\. ?Smugglers are linked to organised crime\./
  await a.waitForFunction(notesText, both.source, { timeout: 15_000 })
  await b.waitForFunction(notesText, both.source, { timeout: 15_000 })

  // each sees the other's named caret inside the editor
  await a.locator('[data-testid="notes-editor"] .collaboration-carets__label', { hasText: 'Marko' }).waitFor({ timeout: 15_000 })
  await edA.click()
  await a.keyboard.type(' More.')
  await b.locator('[data-testid="notes-editor"] .collaboration-carets__label', { hasText: 'Ana' }).waitFor({ timeout: 15_000 })
  // and each other in the list of people editing
  await a.locator('.people li', { hasText: 'Marko' }).waitFor({ timeout: 10_000 })

  // a conclusion typed on one side appears, character-exact, on the other
  await a.getByTestId('add-conclusion').click()
  await a.keyboard.type('Strengthen the exchange of information on seizures.')
  await b.waitForFunction(() => [...document.querySelectorAll('[data-testid="conclusion-text"]')].some((t) => t.value === 'Strengthen the exchange of information on seizures.'), null, { timeout: 15_000 })
  // B edits the middle of A's conclusion; A's text follows
  const taB = b.getByTestId('conclusion-text').first()
  await taB.focus()
  await taB.evaluate((t) => t.setSelectionRange(15, 15))
  await b.keyboard.type('regional ')
  const merged = 'Strengthen the regional exchange of information on seizures.'
  await a.waitForFunction((v) => document.querySelector('[data-testid="conclusion-text"]')?.value === v, merged, { timeout: 15_000 })

  // the saved mark turns on once the server acknowledged
  await a.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 15_000 })
  await b.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 15_000 })
  await screenshot(a, 'rapporteur-desktop-two-carets')
  assert.deepEqual(errs, [])
  await ctxA.close()
  await ctxB.close()
})
