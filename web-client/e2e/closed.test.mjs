// The server publishes, as awareness client 0, the follower counts and whether the group is closed.
// The rapporteur page follows it: read-only with a notice as soon as the moderator closes the group,
// editable again when it is reopened — and after an edit the server refused meanwhile, it reloads
// the document cleanly (fresh Y.Doc, IndexedDB copy cleared) so that typing works again.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { suite, createMeeting, demoMeeting, links, DESKTOP, PHONE, waitOnline, watchErrors, screenshot, axe } from './helpers.mjs'

const { server, browser } = await suite()

const notesText = () => {
  const c = document.querySelector('[data-testid="notes-editor"]').cloneNode(true)
  c.querySelectorAll('.collaboration-carets__caret').forEach((x) => x.remove())
  return c.textContent
}
const G = 'wg-migrants'

async function setClosed(created, closed) {
  const res = await fetch(`${server.url}/api/meetings/${created.id}/groups/${G}/${closed ? 'close' : 'reopen'}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${created.tokens.moderator}` },
  })
  assert.equal(res.status, 200)
  assert.equal((await res.json()).closed, closed)
}

/** the page's editing controls: [notes editable, textareas writable, add button enabled] */
const editState = (page) =>
  page.evaluate(() => [
    document.querySelector('[data-testid="notes-editor"]').getAttribute('contenteditable') === 'true',
    [...document.querySelectorAll('[data-testid="conclusion-text"]')].every((t) => !t.readOnly),
    !document.querySelector('[data-testid="add-conclusion"]').disabled,
  ])

test('closing and reopening a group turns the rapporteur page read-only and back', { timeout: 120_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('closing'))
  const L = links(server.url, created)
  const ctx = await browser.newContext(DESKTOP)
  const rap = await ctx.newPage()
  const phoneCtx = await browser.newContext(PHONE)
  const phone = await phoneCtx.newPage()
  const errs = watchErrors(rap, phone)
  await rap.goto(L.rapporteur(G))
  await waitOnline(rap)
  await rap.getByTestId('add-conclusion').click()
  await rap.keyboard.type('Before closing.')
  await rap.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 15_000 })

  // a participant follows the group: the rapporteur sees the follower count
  await phone.goto(L.participant)
  await waitOnline(phone)
  await phone.getByRole('button', { name: 'Migrants with weapons' }).click()
  await phone.locator('[data-testid="content"] li', { hasText: 'Before closing.' }).waitFor({ timeout: 15_000 })
  await rap.locator('[data-testid="followers"]', { hasText: /^1 following/ }).waitFor({ timeout: 15_000 })

  assert.deepEqual(await editState(rap), [true, true, true])
  await setClosed(created, true)
  await rap.getByTestId('closed-notice').waitFor({ state: 'visible', timeout: 10_000 })
  assert.match(await rap.getByTestId('closed-notice').textContent(), /This group is closed/)
  await rap.waitForFunction(() => document.querySelector('[data-testid="notes-editor"]').getAttribute('contenteditable') === 'false', null, { timeout: 5_000 })
  assert.deepEqual(await editState(rap), [false, false, false])
  assert.equal(await rap.getByTestId('refused').isVisible(), false, 'nothing was refused: the page stopped editing before any edit')
  assert.deepEqual(await axe(rap), [])
  await screenshot(rap, 'rapporteur-desktop-closed')
  // the participant following the group sees it too
  await phone.getByTestId('group-closed').waitFor({ timeout: 10_000 })

  await setClosed(created, false)
  await rap.getByTestId('closed-notice').waitFor({ state: 'hidden', timeout: 10_000 })
  await phone.getByTestId('group-closed').waitFor({ state: 'detached', timeout: 10_000 })
  await rap.waitForFunction(() => document.querySelector('[data-testid="notes-editor"]').getAttribute('contenteditable') === 'true', null, { timeout: 5_000 })
  assert.deepEqual(await editState(rap), [true, true, true])
  await rap.getByTestId('notes-editor').click()
  await rap.keyboard.type('After reopening.')
  await rap.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 15_000 })
  await phone.locator('.notes', { hasText: 'After reopening.' }).waitFor({ timeout: 15_000 })
  assert.deepEqual(errs, [])
  await ctx.close()
  await phoneCtx.close()
})

test('after a refused edit, reopening reloads the document cleanly and typing works again', { timeout: 150_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('refused'))
  const L = links(server.url, created)

  // The other rapporteur's page, unaffected, watches what the server really holds.
  const ctxA = await browser.newContext(DESKTOP)
  const a = await ctxA.newPage()
  await a.goto(L.rapporteur(G))
  await waitOnline(a)

  // Page B's socket goes through a relay that can hold back the server's awareness messages, so that
  // B does not learn that the group is closed and its next edit reaches the server and is refused.
  let holdAwareness = false
  let sawClosed
  const closedSeen = new Promise((r) => (sawClosed = r))
  const ctxB = await browser.newContext(DESKTOP)
  await ctxB.routeWebSocket(/\/ws\//, (ws) => {
    const srv = ws.connectToServer()
    ws.onMessage((m) => srv.send(m))
    srv.onMessage((m) => {
      const bytes = typeof m === 'string' ? Buffer.from(m) : m
      if (holdAwareness && bytes[0] === 1) {
        if (bytes.includes(Buffer.from('"closed":true'))) sawClosed()
        return
      }
      ws.send(m)
    })
  })
  const b = await ctxB.newPage()
  const errs = watchErrors(a, b)
  await b.goto(L.rapporteur(G))
  await waitOnline(b)
  await b.getByTestId('notes-editor').click()
  await b.keyboard.type('Accepted before closing.')
  await b.getByTestId('add-conclusion').click()
  await b.keyboard.type('An accepted conclusion.')
  await b.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 15_000 })
  await a.waitForFunction(() => document.querySelector('[data-testid="conclusion-text"]')?.value === 'An accepted conclusion.', null, { timeout: 15_000 })

  holdAwareness = true
  await setClosed(created, true)
  await closedSeen
  await a.getByTestId('closed-notice').waitFor({ state: 'visible', timeout: 10_000 })
  // B still believes the group is open: its edit goes out and the server refuses it
  assert.equal(await b.getByTestId('closed-notice').isVisible(), false)
  await b.getByTestId('notes-editor').click()
  await b.keyboard.press('ControlOrMeta+End')
  await b.keyboard.insertText(' Typed while closed.') // one edit, refused as a whole
  await b.getByTestId('refused').waitFor({ state: 'visible', timeout: 15_000 })
  await b.waitForFunction(() => document.querySelector('[data-testid="notes-editor"]').getAttribute('contenteditable') === 'false', null, { timeout: 5_000 })
  assert.deepEqual(await editState(b), [false, false, false])
  await screenshot(b, 'rapporteur-desktop-refused')

  // reopen: B hears it and reloads its document from the server
  holdAwareness = false
  await setClosed(created, false)
  await b.getByTestId('not-kept').waitFor({ state: 'visible', timeout: 15_000 })
  assert.match(await b.getByTestId('not-kept').textContent(), /Typed while closed\./)
  assert.equal(await b.getByTestId('refused').isVisible(), false, 'the refused notice belonged to the old document')
  await b.waitForFunction(() => document.querySelector('[data-testid="notes-editor"]').getAttribute('contenteditable') === 'true', null, { timeout: 10_000 })
  await waitOnline(b)
  assert.deepEqual(await editState(b), [true, true, true])
  // the accepted edits are all there, the refused one is not
  const bText = await b.evaluate(notesText)
  assert.ok(bText.includes('Accepted before closing.') && !bText.includes('Typed while closed.'), bText)
  assert.equal(await b.getByTestId('conclusion-text').first().inputValue(), 'An accepted conclusion.')
  await screenshot(b, 'rapporteur-desktop-reopened')

  // typing works again and reaches the others
  await b.getByTestId('notes-editor').click()
  await b.keyboard.press('ControlOrMeta+End')
  await b.keyboard.type(' Typed after reopening.')
  await b.getByTestId('conclusion-text').first().focus()
  await b.getByTestId('conclusion-text').first().press('End')
  await b.keyboard.type(' (edited after reopening)')
  await b.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 15_000 })
  await a.waitForFunction(() => {
    const c = document.querySelector('[data-testid="notes-editor"]').cloneNode(true)
    c.querySelectorAll('.collaboration-carets__caret').forEach((x) => x.remove())
    return c.textContent.includes('Typed after reopening.')
  }, null, { timeout: 15_000 })
  await a.waitForFunction(() => document.querySelector('[data-testid="conclusion-text"]')?.value === 'An accepted conclusion. (edited after reopening)', null, { timeout: 15_000 })

  // the browser's IndexedDB copy no longer holds the refused edit: a reload does not bring it back
  await b.reload()
  await waitOnline(b)
  await b.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 15_000 })
  await b.waitForFunction(() => document.querySelector('[data-testid="notes-editor"]').textContent.includes('Typed after reopening.'), null, { timeout: 10_000 })
  assert.ok(!(await b.evaluate(notesText)).includes('Typed while closed.'))
  assert.ok(!(await a.evaluate(notesText)).includes('Typed while closed.'))
  assert.deepEqual(errs, [])
  await ctxA.close()
  await ctxB.close()
})
