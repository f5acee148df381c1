// Group work that loses nothing: moves and deletes never destroy what someone is typing, deletes
// can be undone and restored, people see who edits what, the page tells the truth about the
// connection and opens offline.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { suite, createMeeting, demoMeeting, links, DESKTOP, PHONE, waitOnline, watchErrors, screenshot, addConclusions, yjsWrite, SHOTS } from './helpers.mjs'

const { server, browser } = await suite()

const SIXTY = ' — and the customs teams report every seizure within a day!!' // 60 characters
assert.equal(SIXTY.length, 60)
const SEED = ['Share seizure data across borders.', 'Pilot at two crossings.', 'Train customs officers yearly.']

/** the texts of the conclusion textareas, in page order */
const pageTexts = (page) => page.$$eval('[data-testid="conclusions"] textarea', (tas) => tas.map((t) => t.value))
async function waitTexts(page, expected, timeout = 15_000) {
  await page.waitForFunction((exp) => JSON.stringify([...document.querySelectorAll('[data-testid="conclusions"] textarea')].map((t) => t.value)) === JSON.stringify(exp), expected, { timeout }).catch(async (e) => {
    throw new Error(`${e.message}\nexpected ${JSON.stringify(expected)}\ngot ${JSON.stringify(await pageTexts(page))}`)
  })
}
async function summaryTexts(created, group) {
  const res = await fetch(`${server.url}/api/meetings/${created.id}/summary.json`, { headers: { Authorization: `Bearer ${created.tokens.participant}` } })
  assert.equal(res.status, 200)
  return (await res.json()).groups.find((g) => g.id === group).conclusions.map((c) => c.text)
}
async function waitSummary(created, group, expected, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs
  let got
  while (Date.now() < end) {
    got = await summaryTexts(created, group)
    if (JSON.stringify(got) === JSON.stringify(expected)) return
    await new Promise((r) => setTimeout(r, 150))
  }
  assert.deepEqual(got, expected)
}
/** Waits until this page's IndexedDB copy of its document satisfies `pred(doc)` (read back with Yjs). */
async function waitLocalCopy(page, pred, timeoutMs = 10_000) {
  const Y = await import('yjs')
  const end = Date.now() + timeoutMs
  for (;;) {
    const updates = await page.evaluate(async () => {
      const names = (await indexedDB.databases()).map((d) => d.name).filter((n) => n?.startsWith('plenary:'))
      const out = []
      for (const name of names) {
        const db = await new Promise((r, j) => Object.assign(indexedDB.open(name), { onsuccess: (e) => r(e.target.result), onerror: j }))
        if (!db.objectStoreNames.contains('updates')) continue
        const all = await new Promise((r, j) => Object.assign(db.transaction('updates').objectStore('updates').getAll(), { onsuccess: (e) => r(e.target.result), onerror: j }))
        for (const u of all) out.push(Array.from(u))
        db.close()
      }
      return out
    })
    const doc = new Y.Doc()
    for (const u of updates) Y.applyUpdate(doc, Uint8Array.from(u))
    const ok = pred(doc)
    doc.destroy()
    if (ok) return
    if (Date.now() > end) throw new Error('the IndexedDB copy did not reach the expected state')
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function setName(page, name) {
  const input = page.getByLabel('Your name')
  await input.fill(name)
  await input.press('Enter')
}

/** A stock y-websocket client (Node), kept open: `doc`, `until(pred)`, `close()`. */
async function stockClient(room, token) {
  const [{ WebsocketProvider }, Y, WS] = await Promise.all([import('y-websocket'), import('yjs'), import('ws')])
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(`${server.url.replace(/^http/, 'ws')}/ws`, room, doc, { params: { token }, WebSocketPolyfill: WS.default, disableBc: true })
  provider.awareness.setLocalState({ user: { name: 'Node', color: '#047857' } })
  await new Promise((r, j) => {
    const t = setTimeout(() => j(new Error('stock client: no sync')), 15_000)
    provider.once('sync', () => (clearTimeout(t), r()))
  })
  const until = (pred, timeoutMs = 15_000) =>
    new Promise((r, j) => {
      if (pred()) return r()
      const t = setTimeout(() => (doc.off('update', f), j(new Error('stock client: condition not met'))), timeoutMs)
      const f = () => pred() && (clearTimeout(t), doc.off('update', f), r())
      doc.on('update', f)
    })
  return { Y, doc, provider, until, close: () => (provider.destroy(), doc.destroy()) }
}

async function twoPages(created, group) {
  const L = links(server.url, created)
  const ctxA = await browser.newContext(DESKTOP)
  const ctxB = await browser.newContext(DESKTOP)
  const a = await ctxA.newPage()
  const b = await ctxB.newPage()
  await a.goto(L.rapporteur(group))
  await b.goto(L.rapporteur(group))
  await waitOnline(a)
  await waitOnline(b)
  await setName(a, 'Ana')
  await setName(b, 'Marko')
  return { a, b, ctxA, ctxB, close: async () => (await ctxA.close(), await ctxB.close()) }
}

test('a move while someone types keeps every keystroke, the focus and the list (two browsers)', { timeout: 120_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('gw-move'))
  await addConclusions(server.url, created.id, 'wg-migrants', created.tokens.rapporteurs['wg-migrants'], SEED)
  const { a, b, close } = await twoPages(created, 'wg-migrants')
  const errs = watchErrors(a, b)
  await waitTexts(a, SEED)
  await waitTexts(b, SEED)

  // B types at the end of conclusion 2 …
  const taB = b.locator('[data-testid="conclusions"] li').nth(1).locator('textarea')
  await taB.focus()
  await taB.evaluate((t) => t.setSelectionRange(t.value.length, t.value.length))
  const typing = b.keyboard.type(SIXTY, { delay: 25 })
  // … A sees that B is in it, and moves it up once some of the typing has arrived
  await a.locator('[data-testid="conclusions"] li').nth(1).getByTestId('editing-by').filter({ hasText: 'Marko' }).waitFor({ timeout: 10_000 })
  await a.waitForFunction(() => document.querySelectorAll('[data-testid="conclusions"] textarea')[1]?.value.length > 'Pilot at two crossings.'.length + 5, null, { timeout: 10_000 })
  await a.getByRole('button', { name: 'Move conclusion 2 up' }).click()
  // B is warned on the item, keeps the focus
  await b.getByTestId('item-warning').filter({ hasText: 'Ana moved this conclusion to number 1' }).waitFor({ timeout: 10_000 })
  await typing
  const expected = [SEED[1] + SIXTY, SEED[0], SEED[2]]
  await waitTexts(a, expected)
  await waitTexts(b, expected)
  assert.equal(await b.evaluate(() => document.activeElement?.value), SEED[1] + SIXTY, 'the focus stayed in the moved item')
  await waitSummary(created, 'wg-migrants', expected)
  assert.deepEqual(errs, [])
  await close()
})

test('a move while a stock Yjs client types keeps every keystroke', { timeout: 120_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('gw-stock'))
  const token = created.tokens.rapporteurs['wg-trends']
  await addConclusions(server.url, created.id, 'wg-trends', token, SEED)
  const L = links(server.url, created)
  const ctx = await browser.newContext(DESKTOP)
  const page = await ctx.newPage()
  const errs = watchErrors(page)
  await page.goto(L.rapporteur('wg-trends'))
  await waitOnline(page)
  await waitTexts(page, SEED)

  const node = await stockClient(`${created.id}/wg-trends`, token)
  const item = node.doc.getArray('conclusions').toArray().find((m) => m.get('text').toString() === SEED[1])
  const text = item.get('text')
  // 60 keystrokes, one update each, one every 20 ms; the page moves the item up meanwhile
  const typing = (async () => {
    for (const ch of SIXTY) {
      text.insert(text.length, ch)
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="conclusions"] textarea')[1]?.value.length > 'Pilot at two crossings.'.length + 5, null, { timeout: 10_000 })
  await page.getByRole('button', { name: 'Move conclusion 2 up' }).click()
  await typing
  const expected = [SEED[1] + SIXTY, SEED[0], SEED[2]]
  await waitTexts(page, expected)
  // the stock client holds the same, and its item is the same Y.Map/Y.Text (never copied)
  await node.until(() => text.toString() === SEED[1] + SIXTY && typeof item.get('position') === 'string')
  assert.equal(node.doc.getArray('conclusions').length, 3, 'no copies: still three maps')
  await waitSummary(created, 'wg-trends', expected)
  node.close()
  assert.deepEqual(errs, [])
  await ctx.close()
})

test('a delete while someone types keeps the text; the item can be restored from the trash', { timeout: 120_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('gw-trash'))
  await addConclusions(server.url, created.id, 'wg-handbook', created.tokens.rapporteurs['wg-handbook'], SEED)
  const { a, b, close } = await twoPages(created, 'wg-handbook')
  const errs = watchErrors(a, b)
  await waitTexts(a, SEED)
  await waitTexts(b, SEED)

  const taB = b.locator('[data-testid="conclusions"] li').nth(1).locator('textarea')
  await taB.focus()
  await taB.evaluate((t) => t.setSelectionRange(t.value.length, t.value.length))
  const typing = b.keyboard.type(SIXTY, { delay: 25 })
  await a.waitForFunction(() => document.querySelectorAll('[data-testid="conclusions"] textarea')[1]?.value.length > 'Pilot at two crossings.'.length + 5, null, { timeout: 10_000 })
  await a.getByRole('button', { name: 'Delete conclusion 2' }).click()
  // B is told, and the item stays under B's fingers while B types
  await b.getByTestId('item-warning').filter({ hasText: 'Ana deleted this conclusion' }).waitFor({ timeout: 10_000 })
  await typing
  assert.equal(await b.evaluate(() => document.activeElement?.value), SEED[1] + SIXTY, 'B kept the focus and every keystroke')
  // A's list: two items; the trash holds B's full text
  await waitTexts(a, [SEED[0], SEED[2]])
  await a.locator('[data-testid="trash-box"] summary').click()
  const trashed = a.getByTestId('trash').locator('li', { hasText: SEED[1] + SIXTY })
  await trashed.waitFor({ timeout: 10_000 })
  await waitSummary(created, 'wg-handbook', [SEED[0], SEED[2]])
  // restore: back in its place with every character
  await trashed.getByRole('button', { name: 'Restore' }).click()
  await waitTexts(a, [SEED[0], SEED[1] + SIXTY, SEED[2]])
  await b.locator('body').click({ position: { x: 5, y: 5 } })
  await waitTexts(b, [SEED[0], SEED[1] + SIXTY, SEED[2]])
  await waitSummary(created, 'wg-handbook', [SEED[0], SEED[1] + SIXTY, SEED[2]])
  assert.deepEqual(errs, [])
  await close()
})

test('a delete while a stock Yjs client types keeps its text; Restore brings it back whole', { timeout: 120_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('gw-stock-trash'))
  const token = created.tokens.rapporteurs['wg-trends']
  await addConclusions(server.url, created.id, 'wg-trends', token, SEED)
  const L = links(server.url, created)
  const ctx = await browser.newContext(DESKTOP)
  const page = await ctx.newPage()
  const errs = watchErrors(page)
  await page.goto(L.rapporteur('wg-trends'))
  await waitOnline(page)
  await waitTexts(page, SEED)
  const node = await stockClient(`${created.id}/wg-trends`, token)
  const item = node.doc.getArray('conclusions').toArray().find((m) => m.get('text').toString() === SEED[1])
  const text = item.get('text')
  const typing = (async () => {
    for (const ch of SIXTY) {
      text.insert(text.length, ch)
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="conclusions"] textarea')[1]?.value.length > 'Pilot at two crossings.'.length + 5, null, { timeout: 10_000 })
  await page.getByRole('button', { name: 'Delete conclusion 2' }).click()
  await typing
  await waitTexts(page, [SEED[0], SEED[2]])
  await node.until(() => typeof item.get('trashed') === 'string')
  assert.equal(node.doc.getArray('conclusions').length, 3, 'the map is still there')
  await page.locator('[data-testid="trash-box"] summary').click()
  const trashed = page.getByTestId('trash').locator('li', { hasText: SEED[1] + SIXTY })
  await trashed.waitFor({ timeout: 10_000 })
  await trashed.getByRole('button', { name: 'Restore' }).click()
  await waitTexts(page, [SEED[0], SEED[1] + SIXTY, SEED[2]])
  await waitSummary(created, 'wg-trends', [SEED[0], SEED[1] + SIXTY, SEED[2]])
  node.close()
  assert.deepEqual(errs, [])
  await ctx.close()
})

test('Ctrl+Z undoes only this page’s own typing, not a collaborator’s', { timeout: 120_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('gw-undo-own'))
  await addConclusions(server.url, created.id, 'wg-migrants', created.tokens.rapporteurs['wg-migrants'], SEED)
  const { a, b, close } = await twoPages(created, 'wg-migrants')
  const errs = watchErrors(a, b)
  await waitTexts(a, SEED)
  await waitTexts(b, SEED)
  const end = (page) => page.locator('[data-testid="conclusions"] textarea').first().evaluate((t) => (t.focus(), t.setSelectionRange(t.value.length, t.value.length)))
  await end(a)
  await a.keyboard.type(' A1.')
  await waitTexts(b, [SEED[0] + ' A1.', SEED[1], SEED[2]])
  await end(b)
  await b.keyboard.type(' B1.')
  await waitTexts(a, [SEED[0] + ' A1. B1.', SEED[1], SEED[2]])
  await a.keyboard.press('ControlOrMeta+z')
  await waitTexts(a, [SEED[0] + ' B1.', SEED[1], SEED[2]])
  await waitTexts(b, [SEED[0] + ' B1.', SEED[1], SEED[2]])
  assert.deepEqual(errs, [])
  await close()
})

test('delete then Undo, and Ctrl+Z in a conclusion, bring the text back', { timeout: 120_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('gw-undo'))
  await addConclusions(server.url, created.id, 'wg-migrants', created.tokens.rapporteurs['wg-migrants'], SEED)
  const L = links(server.url, created)
  const ctx = await browser.newContext(DESKTOP)
  const page = await ctx.newPage()
  const errs = watchErrors(page)
  await page.goto(L.rapporteur('wg-migrants'))
  await waitOnline(page)
  await waitTexts(page, SEED)

  // delete (no confirmation) → toast → Undo
  await page.getByRole('button', { name: 'Delete conclusion 2' }).click()
  await waitTexts(page, [SEED[0], SEED[2]])
  await page.getByTestId('undo-toast').filter({ hasText: 'Deleted “Pilot at two crossings.”.' }).waitFor({ timeout: 5000 })
  await page.getByTestId('undo-delete').click()
  await waitTexts(page, SEED)
  await waitSummary(created, 'wg-migrants', SEED)

  // delete, then Ctrl+Z from another conclusion: the delete is undone
  await page.getByRole('button', { name: 'Delete conclusion 3' }).click()
  await waitTexts(page, [SEED[0], SEED[1]])
  await page.locator('[data-testid="conclusions"] textarea').first().focus()
  await page.keyboard.press('ControlOrMeta+z')
  await waitTexts(page, SEED)

  // a move, undone with Ctrl+Z
  await page.getByRole('button', { name: 'Move conclusion 3 up' }).click()
  await waitTexts(page, [SEED[0], SEED[2], SEED[1]])
  await page.locator('[data-testid="conclusions"] textarea').first().focus()
  await page.keyboard.press('ControlOrMeta+z')
  await waitTexts(page, SEED)

  // a status change, undone with Ctrl+Z
  const fin = page.locator('[data-testid="conclusions"] li').nth(1).getByTestId('conclusion-final')
  assert.equal(await fin.isChecked(), false)
  await fin.check()
  await page.locator('[data-testid="conclusions"] textarea').first().focus()
  await page.keyboard.press('ControlOrMeta+z')
  await page.waitForFunction(() => !document.querySelectorAll('[data-testid="conclusion-final"]')[1].checked, null, { timeout: 5000 })

  // typing, undone with Ctrl+Z (only this page's own edit)
  const ta = page.locator('[data-testid="conclusions"] textarea').first()
  await ta.focus()
  await ta.evaluate((t) => t.setSelectionRange(t.value.length, t.value.length))
  await page.keyboard.type(' Now.')
  await waitTexts(page, [SEED[0] + ' Now.', SEED[1], SEED[2]])
  await page.keyboard.press('ControlOrMeta+z')
  await waitTexts(page, SEED)
  await waitSummary(created, 'wg-migrants', SEED)
  assert.deepEqual(errs, [])
  await ctx.close()
})

test('old documents (array order, no positions) read in order; a stock client’s append shows last', { timeout: 120_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('gw-old'))
  const token = created.tokens.rapporteurs['wg-trends']
  // written by a stock client, as before positions existed: inserted out of push order
  await yjsWrite(server.url, `${created.id}/wg-trends`, token, (doc, Y) => {
    const arr = doc.getArray('conclusions')
    const mk = (id, t) => {
      const m = new Y.Map()
      m.set('id', id)
      m.set('text', new Y.Text(t))
      m.set('status', 'draft')
      m.set('author', 'old')
      return m
    }
    arr.push([mk('o2', 'Second.'), mk('o3', 'Third.')])
    arr.insert(0, [mk('o1', 'First.')])
  })
  await waitSummary(created, 'wg-trends', ['First.', 'Second.', 'Third.'])
  const L = links(server.url, created)
  const ctx = await browser.newContext(DESKTOP)
  const page = await ctx.newPage()
  const errs = watchErrors(page)
  await page.goto(L.rapporteur('wg-trends'))
  await waitOnline(page)
  await waitTexts(page, ['First.', 'Second.', 'Third.'])
  // the page moves one: positions are given to every item, the order is the expected one
  await page.getByRole('button', { name: 'Move conclusion 1 down' }).click()
  await waitTexts(page, ['Second.', 'First.', 'Third.'])
  await waitSummary(created, 'wg-trends', ['Second.', 'First.', 'Third.'])
  // a stock client that only appends (no position): its item shows at the end, on the page and in the summary
  await yjsWrite(server.url, `${created.id}/wg-trends`, token, (doc, Y) => {
    const m = new Y.Map()
    m.set('id', 'o4')
    m.set('text', new Y.Text('Appended by a stock client.'))
    m.set('status', 'draft')
    m.set('author', 'stock')
    doc.getArray('conclusions').insert(0, [m]) // even at array index 0
  })
  await waitTexts(page, ['Second.', 'First.', 'Third.', 'Appended by a stock client.'])
  await waitSummary(created, 'wg-trends', ['Second.', 'First.', 'Third.', 'Appended by a stock client.'])
  assert.deepEqual(errs, [])
  await ctx.close()
})

test('a silent network drop shows Offline within 10 s; a reload while offline opens the edits', { timeout: 150_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('gw-net'))
  const L = links(server.url, created)
  const ctx = await browser.newContext(DESKTOP)
  const page = await ctx.newPage()
  const errs = watchErrors(page)
  page.on('dialog', (d) => d.accept())
  await page.goto(L.rapporteur('wg-migrants'))
  await waitOnline(page)
  // the service worker is installed and controls the page (registered under CSP script-src 'self')
  await page.evaluate(() => navigator.serviceWorker.ready)
  await page.reload()
  await waitOnline(page)
  assert.ok(await page.evaluate(() => !!navigator.serviceWorker.controller), 'the page is controlled by the service worker')

  // long notes, so that the page scrolls
  await page.getByTestId('notes-editor').click()
  await page.keyboard.type('Notes line.')
  for (let i = 0; i < 40; i++) await page.keyboard.press('Enter')
  await page.keyboard.type('Last line.')
  await page.getByTestId('add-conclusion').click()
  await page.keyboard.type('Typed before the drop.')
  await page.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 15_000 })

  // closing the tab now would lose nothing: no warning
  const unloadWarns = () => page.evaluate(() => {
    const e = new Event('beforeunload', { cancelable: true })
    window.dispatchEvent(e)
    return e.defaultPrevented
  })
  assert.equal(await unloadWarns(), false)
  const t0 = Date.now()
  await ctx.setOffline(true)
  await page.locator('[data-testid="connection"][data-state="disconnected"]').waitFor({ timeout: 10_000 })
  const took = Date.now() - t0
  assert.ok(took < 10_000, `offline shown after ${took} ms`)
  // the status bar stays in view when the page scrolls
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight))
  const top = await page.getByTestId('sticky-status').evaluate((el) => el.getBoundingClientRect().top)
  assert.ok(top >= 0 && top < 5, `sticky status at top ${top}`)

  // typed while offline, then reloaded while still offline: the page opens with both edits
  await page.locator('[data-testid="conclusions"] textarea').first().focus()
  await page.keyboard.press('End')
  await page.keyboard.type(' And offline.')
  // unsaved edits: closing or reloading asks first
  await page.locator('[data-testid="saved"][data-state="unsaved"]').waitFor({ timeout: 5000 })
  assert.equal(await unloadWarns(), true)
  // the browser's copy (y-indexeddb) holds the last keystroke before the reload
  await waitLocalCopy(page, (doc) => doc.getArray('conclusions').toArray().some((m) => String(m.get('text')) === 'Typed before the drop. And offline.'))
  await page.reload()
  await page.locator('[data-testid="connection"]').waitFor({ timeout: 15_000 })
  await waitTexts(page, ['Typed before the drop. And offline.'])
  await page.locator('[data-testid="connection"][data-state="disconnected"]').waitFor({ timeout: 10_000 })

  // back online: the offline edit reaches the server
  await ctx.setOffline(false)
  await waitOnline(page, 30_000)
  await waitSummary(created, 'wg-migrants', ['Typed before the drop. And offline.'], 20_000)
  assert.deepEqual(errs, [])
  await ctx.close()
})

test('revision history: taken when the group closes, listed for its rapporteur and the moderator only, restored as a new edit', { timeout: 150_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('gw-rev'))
  const g = 'wg-handbook'
  const T = created.tokens
  await addConclusions(server.url, created.id, g, T.rapporteurs[g], SEED)
  const L = links(server.url, created)
  const ctx = await browser.newContext(DESKTOP)
  const page = await ctx.newPage()
  const errs = watchErrors(page)
  await page.goto(L.rapporteur(g))
  await waitOnline(page)
  await waitTexts(page, SEED)
  await page.getByTestId('notes-editor').click()
  await page.keyboard.type('Notes at the time of the version.')
  await page.locator('[data-testid="saved"][data-state="saved"]').waitFor({ timeout: 15_000 })

  const base = `${server.url}/api/meetings/${created.id}/groups/${g}/revisions`
  const get = (url, token) => fetch(url, { headers: { Authorization: `Bearer ${token}` } })
  const post = (url, token) => fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${token}` } })
  // closing the group keeps a revision
  assert.equal((await post(`${server.url}/api/meetings/${created.id}/groups/${g}/close`, T.moderator)).status, 200)
  assert.equal((await post(`${server.url}/api/meetings/${created.id}/groups/${g}/reopen`, T.moderator)).status, 200)
  let list
  for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    list = await (await get(base, T.rapporteurs[g])).json()
    if (list.revisions?.length) break
  }
  assert.equal(list.revisions.length, 1)
  assert.equal(list.revisions[0].reason, 'closed')
  // the moderator may read it; a participant and another group's rapporteur may not (JSON errors)
  assert.equal((await get(base, T.moderator)).status, 200)
  for (const t of [T.participant, T.rapporteurs['wg-trends']]) {
    const r = await get(base, t)
    assert.equal(r.status, 403)
    assert.equal((await r.json()).error.code, 'forbidden')
  }
  const id = list.revisions[0].id
  const rev = await (await get(`${base}/${id}`, T.rapporteurs[g])).json()
  assert.deepEqual(rev.conclusions.map((c) => c.text), SEED)
  assert.match(JSON.stringify(rev.notes), /Notes at the time of the version\./)
  const bin = await get(`${base}/${id}?format=yjs`, T.rapporteurs[g])
  assert.equal(bin.headers.get('content-type'), 'application/octet-stream')
  assert.ok((await bin.arrayBuffer()).byteLength > 50)
  assert.equal((await get(`${base}/999`, T.rapporteurs[g])).status, 404)

  // the group works on: an edit, a delete, a move, a new item, more notes
  await page.getByTestId('add-conclusion').waitFor()
  await page.waitForFunction(() => !document.querySelector('[data-testid="add-conclusion"]').disabled, null, { timeout: 15_000 })
  const ta = page.locator('[data-testid="conclusions"] textarea').first()
  await ta.focus()
  await ta.evaluate((t) => t.setSelectionRange(t.value.length, t.value.length))
  await page.keyboard.type(' Changed.')
  await page.getByRole('button', { name: 'Delete conclusion 2' }).click()
  await page.getByRole('button', { name: 'Move conclusion 2 up' }).click()
  await page.getByTestId('add-conclusion').click()
  await page.keyboard.type('Added after the version.')
  await waitTexts(page, [SEED[2], SEED[0] + ' Changed.', 'Added after the version.'])
  await page.getByTestId('notes-editor').click()
  await page.keyboard.press('ControlOrMeta+End')
  await page.keyboard.type(' Later notes.')

  // restore it from the History panel
  await page.locator('[data-testid="history-box"] summary').click()
  await page.getByTestId('history').getByRole('button', { name: /Restore the version/ }).click()
  await waitTexts(page, SEED)
  await page.waitForFunction(() => !document.querySelector('[data-testid="notes-editor"]').textContent.includes('Later notes.'), null, { timeout: 10_000 })
  // the document now equals the stored revision (through the server's reading of it)
  const summaryOf = async () => {
    const res = await get(`${server.url}/api/meetings/${created.id}/summary.json`, T.participant)
    // the contract's fields (summary.json adds each item's G.N `number`, a revision has none)
    return (await res.json()).groups.find((x) => x.id === g).conclusions.map(({ id, text, status }) => ({ id, text, status }))
  }
  for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 150))) {
    if (JSON.stringify(await summaryOf()) === JSON.stringify(rev.conclusions)) break
  }
  assert.deepEqual(await summaryOf(), rev.conclusions)
  // what the version did not have went to the trash, restorable
  await page.locator('[data-testid="trash-box"] summary').click()
  await page.getByTestId('trash').locator('li', { hasText: 'Added after the version.' }).waitFor({ timeout: 5000 })
  await page.evaluate(() => window.scrollTo(0, 0))
  await screenshot(page, 'rapporteur-history-restored')
  assert.deepEqual(errs, [])
  await ctx.close()
})

test('screenshots: trash, editing mark and warning (1366×768 and 390×844)', { timeout: 120_000 }, async () => {
  const created = await createMeeting(server.url, demoMeeting('gw-shots'))
  await addConclusions(server.url, created.id, 'wg-migrants', created.tokens.rapporteurs['wg-migrants'], [...SEED, 'Publish a yearly report on seized weapons.'])
  const L = links(server.url, created)
  for (const [label, opts] of [
    ['desktop', { viewport: { width: 1366, height: 768 } }],
    ['phone', PHONE],
  ]) {
    const ctxA = await browser.newContext(opts)
    const ctxB = await browser.newContext(DESKTOP)
    const a = await ctxA.newPage()
    const b = await ctxB.newPage()
    await a.goto(L.rapporteur('wg-migrants'))
    await b.goto(L.rapporteur('wg-migrants'))
    await waitOnline(a)
    await waitOnline(b)
    await setName(a, 'Ana')
    await setName(b, 'Marko')
    if (label === 'desktop') {
      await a.getByRole('button', { name: 'Delete conclusion 4' }).click()
      await a.getByTestId('undo-toast').waitFor()
    }
    await a.locator('[data-testid="trash-box"] summary').click()
    await a.locator('[data-testid="history-box"] summary').click()
    await b.locator('[data-testid="conclusions"] textarea').nth(1).focus()
    await a.getByTestId('editing-by').filter({ hasText: 'Marko' }).waitFor({ timeout: 10_000 })
    // A types in conclusion 1 while Marko moves it: A's warning
    const ta = a.locator('[data-testid="conclusions"] textarea').first()
    await ta.focus()
    await b.getByRole('button', { name: 'Move conclusion 1 down' }).click()
    await a.locator('[data-testid="item-warning"]:not([hidden])').waitFor({ timeout: 10_000 })
    // Marko goes on typing in another item: A sees the mark
    await b.locator('[data-testid="conclusions"] textarea').nth(2).focus()
    await a.locator('[data-testid="conclusions"] li').nth(2).getByTestId('editing-by').filter({ hasText: 'Marko' }).waitFor({ timeout: 10_000 })
    await a.evaluate(() => window.scrollTo(0, 0))
    await screenshot(a, `rapporteur-groupwork-${label}`)
    await a.locator('[data-testid="conclusions"] li').nth(1).evaluate((el) => el.scrollIntoView({ block: 'center' }))
    await a.screenshot({ path: `${SHOTS}/rapporteur-groupwork-${label}-viewport.png` })
    await ctxA.close()
    await ctxB.close()
  }
})
