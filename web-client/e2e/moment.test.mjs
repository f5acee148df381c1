// "The plenary moment": 3 groups × 12 conclusions of ~25 words.
//  - the projector's focus slide shows every presented item whole, inside the screen, at >= 32 px
//    (1920×1080) and >= 22 px (1280×720), with its group title and number;
//  - the overview pages through whole items: every item is on some page under its group's title,
//    and a page that is not the last says that more follows;
//  - clicker keys step the presentation on the console and on the projector; B blanks, F toggles;
//  - numbering G.N is the same on console, projector and phone, hidden items have none;
//  - screenshots of every view at 1920×1080, 1280×720, 1366×768, 390×844 and 360×640.
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { suite, createMeeting, links, waitOnline, watchErrors, screenshot, addConclusions, yjsWrite, SHOTS } from './helpers.mjs'

const { server, browser } = await suite()
let created, L
const GROUPS = [
  { id: 'wg-migrants', title: 'Migrants with weapons' },
  { id: 'wg-handbook', title: 'Handbook on Firearms for Border Guards and Customs and its implementation' },
  { id: 'wg-trends', title: 'New trends and threats in firearms trafficking' },
]
const TITLE = 'Regional Meeting of the Border Police and Customs Representatives on firearms trafficking across borders'
const WORDS = 'border police and customs services should exchange information on seizures of converted blank firing weapons through the regional contact points within forty eight hours of each case'.split(' ')
const text = (g, i) => `${g.title.split(' ')[0]} ${i + 1}: ${WORDS.slice(i % 4).concat(WORDS.slice(0, i % 4)).slice(0, 23).join(' ')}.`
const PER = 12
const VIEWPORTS = {
  '1920x1080': { viewport: { width: 1920, height: 1080 } },
  '1280x720': { viewport: { width: 1280, height: 720 } },
  '1366x768': { viewport: { width: 1366, height: 768 } },
  '390x844': { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
  '360x640': { viewport: { width: 360, height: 640 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true },
}

before(async () => {
  created = await createMeeting(server.url, { id: 'moment', title: TITLE, groups: GROUPS })
  L = links(server.url, created)
  for (const g of GROUPS) await addConclusions(server.url, created.id, g.id, created.tokens.rapporteurs[g.id], Array.from({ length: PER }, (_, i) => text(g, i)))
})

const keyOf = (gi, i) => `${GROUPS[gi].id}/seed-${GROUPS[gi].id}-${i}`
const setCuration = (fn) => yjsWrite(server.url, `${created.id}/plenary`, created.tokens.moderator, (doc) => fn(doc.getMap('curation')))

/** the focus slide as the viewer sees it */
const focusState = () => {
  const slide = document.querySelector('[data-testid="focus"]')
  if (!slide) return null
  const t = slide.querySelector('[data-testid="focus-text"]')
  const box = t.parentElement
  const r = t.getBoundingClientRect()
  const g = slide.querySelector('[data-testid="focus-group"]').getBoundingClientRect()
  const within = (x) => x.top >= 0 && x.left >= 0 && x.bottom <= innerHeight && x.right <= innerWidth && x.width > 0
  const part = slide.querySelector('[data-testid="focus-part"]')
  return {
    key: slide.dataset.key,
    text: t.textContent,
    size: parseFloat(getComputedStyle(t).fontSize),
    inside: within(r) && within(g),
    unclipped: box.scrollHeight <= box.clientHeight + 1 && box.scrollWidth <= box.clientWidth + 1 && r.bottom <= box.getBoundingClientRect().bottom + 1,
    group: slide.querySelector('[data-testid="focus-group"]').textContent,
    number: slide.querySelector('[data-testid="focus-number"]').textContent,
    pos: slide.querySelector('[data-testid="focus-pos"]').textContent,
    parts: part.hidden ? null : part.textContent,
  }
}

for (const [vp, min] of [['1920x1080', 32], ['1280x720', 22]]) {
  test(`projector focus at ${vp}: all 36 items whole, >= ${min} px, with group title and number`, { timeout: 240_000 }, async () => {
    const ctx = await browser.newContext(VIEWPORTS[vp])
    const proj = await ctx.newPage()
    const errs = watchErrors(proj)
    await proj.goto(L.projector)
    await waitOnline(proj)
    for (let gi = 0; gi < GROUPS.length; gi++) {
      for (let i = 0; i < PER; i++) {
        const key = keyOf(gi, i)
        await setCuration((c) => c.set('presenting', key))
        await proj.waitForFunction((k) => document.querySelector('[data-testid="focus"]')?.dataset.key === k, key, { timeout: 10_000 })
        // let the fit settle: the slide is rendered and fitted in one frame
        await proj.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))
        const s = await proj.evaluate(focusState)
        assert.equal(s.parts, null, `${key}: fits in one part at ${vp}`)
        assert.equal(s.text.trim(), text(GROUPS[gi], i), `${key}: the whole text`)
        assert.ok(s.inside, `${key}: inside the viewport at ${vp}`)
        assert.ok(s.unclipped, `${key}: not clipped at ${vp}`)
        assert.ok(s.size >= min, `${key}: ${s.size} px >= ${min} px at ${vp}`)
        assert.equal(s.group, GROUPS[gi].title)
        assert.equal(s.number, `${gi + 1}.${i + 1}`)
        assert.equal(s.pos, `item ${i + 1} of ${PER}`)
        if (i === 0 && gi === 1) await screenshot(proj, `moment-projector-focus-${vp}`)
      }
    }
    // a very long item: shrunk down to the minimum, then shown in parts, never cut
    const long = Array.from({ length: 14 }, () => WORDS.join(' ')).join('. ') + '. END'
    await yjsWrite(server.url, `${created.id}/wg-trends`, created.tokens.rapporteurs['wg-trends'], (doc, Y) => {
      const m = new Y.Map()
      m.set('id', 'long')
      m.set('text', new Y.Text(long))
      m.set('status', 'draft')
      doc.getArray('conclusions').push([m])
    })
    await setCuration((c) => c.set('presenting', 'wg-trends/long'))
    await proj.waitForFunction(() => document.querySelector('[data-testid="focus"]')?.dataset.key === 'wg-trends/long' && !document.querySelector('[data-testid="focus-part"]').hidden, null, { timeout: 10_000 })
    const seen = []
    for (let n = 0; n < 20; n++) {
      const s = await proj.evaluate(focusState)
      assert.ok(s.unclipped && s.inside, `long item part ${n + 1} not clipped`)
      assert.ok(s.size >= min, `long item at ${s.size} px`)
      assert.match(s.parts, /^part \d+ of \d+/)
      seen.push(s.text.replace(/ …$/, ''))
      if (/ of (\d+)$/.exec(s.parts.replace(' — continues', ''))?.[1] === String(n + 1)) break
      await proj.keyboard.press('ArrowRight') // the participant projector steps parts locally
      await proj.waitForFunction((t) => document.querySelector('[data-testid="focus-part"]').textContent.startsWith(`part ${t}`), n + 2, { timeout: 5_000 })
    }
    if (vp === '1280x720') await screenshot(proj, `moment-projector-focus-long-${vp}`)
    assert.equal(seen.join(' ').replace(/\s+/g, ' ').trim(), long.replace(/\s+/g, ' ').trim(), 'the parts together are the whole text')
    await yjsWrite(server.url, `${created.id}/wg-trends`, created.tokens.rapporteurs['wg-trends'], (doc) => {
      const arr = doc.getArray('conclusions')
      arr.forEach((m, i) => m.get('id') === 'long' && arr.delete(i, 1))
    })
    await setCuration((c) => c.set('presenting', null))
    assert.deepEqual(errs, [])
    await ctx.close()
  })
}

test('projector overview pages through whole groups; every item on some page with its group title', { timeout: 180_000 }, async () => {
  for (const vp of ['1920x1080', '1280x720', '390x844']) {
    const ctx = await browser.newContext(VIEWPORTS[vp])
    const proj = await ctx.newPage()
    const errs = watchErrors(proj)
    await proj.goto(L.projector)
    await waitOnline(proj)
    await proj.waitForFunction(() => document.querySelectorAll('[data-testid="projector-body"] li').length > 0, null, { timeout: 15_000 })
    const found = new Map()
    let pages = 0
    for (let n = 0; n < 40; n++) {
      const s = await proj.evaluate(() => {
        const body = document.querySelector('[data-testid="projector-body"]')
        const stage = document.querySelector('[data-testid="projector-stage"]').getBoundingClientRect()
        const items = [...body.querySelectorAll('li[data-key]')].map((li) => {
          const r = li.getBoundingClientRect()
          const sec = li.closest('section.pgroup')
          const head = sec.querySelector('.group-head').getBoundingClientRect()
          return {
            key: li.dataset.key,
            number: li.querySelector('[data-testid="number"]').textContent,
            group: sec.dataset.group,
            title: sec.querySelector('.gtitle').textContent,
            headInside: head.top >= stage.top - 1 && head.bottom <= stage.bottom + 1,
            inside: r.top >= stage.top - 1 && r.bottom <= stage.bottom + 1 && r.left >= stage.left - 1 && r.right <= stage.right + 1 && r.bottom <= innerHeight,
          }
        })
        const ind = document.querySelector('[data-testid="indicator"]')
        return { page: Number(body.dataset.page), pages: Number(body.dataset.pages), items, indicator: ind.textContent, more: ind.dataset.more, visible: ind.getBoundingClientRect().bottom <= innerHeight && ind.offsetParent !== null }
      })
      pages = s.pages
      for (const it of s.items) {
        assert.ok(it.inside, `${vp}: ${it.key} inside the stage on page ${s.page}`)
        assert.ok(it.headInside, `${vp}: the title of ${it.group} on screen on page ${s.page}`)
        assert.equal(it.title, GROUPS.find((g) => g.id === it.group).title)
        if (!found.has(it.key)) found.set(it.key, it.number)
      }
      if (s.page < s.pages) {
        assert.equal(s.more, 'true', `${vp}: page ${s.page} of ${s.pages} says more follows`)
        assert.ok(s.visible, 'the indicator is on screen')
        assert.match(s.indicator, new RegExp(`Page ${s.page} of ${s.pages} — more follows`))
      }
      if (n === 0) await screenshot(proj, `moment-projector-overview-${vp}`)
      if (s.page >= s.pages) break
      await proj.keyboard.press(n % 2 ? 'PageDown' : 'ArrowRight')
      await proj.waitForFunction((p) => Number(document.querySelector('[data-testid="projector-body"]').dataset.page) === p + 1, s.page, { timeout: 5_000 })
    }
    assert.equal(found.size, GROUPS.length * PER, `${vp}: every item is on some page (${pages} pages)`)
    for (let gi = 0; gi < GROUPS.length; gi++) for (let i = 0; i < PER; i++) assert.equal(found.get(keyOf(gi, i)), `${gi + 1}.${i + 1}`)
    if (vp !== '390x844') assert.ok(pages > 1, 'the 36 long items need more than one page')
    // PageUp goes back
    await proj.keyboard.press('PageUp')
    await proj.waitForFunction((p) => Number(document.querySelector('[data-testid="projector-body"]').dataset.page) === p - 1, pages, { timeout: 5_000 })
    assert.deepEqual(errs, [])
    await ctx.close()
  }
})

test('clicker keys: console steps, projector (moderator token) steps and writes, B blanks, F toggles; join slide', { timeout: 180_000 }, async () => {
  const ctx = await browser.newContext(VIEWPORTS['1366x768'])
  const mod = await ctx.newPage()
  const errs = watchErrors(mod)
  await mod.goto(L.moderator)
  await waitOnline(mod)
  await mod.locator('[data-testid="groups"] li').nth(GROUPS.length * PER - 1).waitFor({ timeout: 15_000 })
  const projCtx = await browser.newContext(VIEWPORTS['1920x1080'])
  const proj = await projCtx.newPage()
  const perrs = watchErrors(proj)
  await proj.goto(L.projector)
  await waitOnline(proj)
  const focused = (k) => proj.waitForFunction((key) => document.querySelector('[data-testid="focus"]')?.dataset.key === key, k, { timeout: 10_000 })
  const nowNum = (n) => mod.locator('[data-testid="now-number"]', { hasText: n }).waitFor({ timeout: 10_000 })

  await mod.locator('h1').click()
  for (const k of ['ArrowRight', 'PageDown', ' ']) await mod.keyboard.press(k)
  await nowNum('1.3')
  await focused(keyOf(0, 2))
  await mod.keyboard.press('PageUp')
  await nowNum('1.2')
  await focused(keyOf(0, 1))
  assert.match(await mod.getByTestId('next-preview').textContent(), /Next: 1\.3/)
  // B blanks the room's projector, B again brings it back
  await mod.keyboard.press('b')
  await proj.waitForFunction(() => document.body.dataset.screen === 'blank', null, { timeout: 10_000 })
  await screenshot(proj, 'moment-projector-blank-1920x1080')
  await mod.keyboard.press('b')
  await proj.waitForFunction(() => document.body.dataset.screen === 'focus', null, { timeout: 10_000 })
  // F: overview, F again: focus
  await mod.keyboard.press('f')
  await proj.waitForFunction(() => document.body.dataset.screen === 'overview' && document.querySelector('li.presenting'), null, { timeout: 10_000 })
  await mod.keyboard.press('f')
  await proj.waitForFunction(() => document.body.dataset.screen === 'focus', null, { timeout: 10_000 })
  await screenshot(mod, 'moment-console-1366x768')

  // the projector opened from the console (moderator token): its keys write curation
  const [popup] = await Promise.all([ctx.waitForEvent('page'), mod.getByTestId('open-projector').click()])
  const poperrs = watchErrors(popup)
  await popup.setViewportSize({ width: 1920, height: 1080 })
  await waitOnline(popup)
  await popup.waitForFunction((k) => document.querySelector('[data-testid="focus"]')?.dataset.key === k, keyOf(0, 1), { timeout: 10_000 })
  await popup.keyboard.press('ArrowRight')
  await nowNum('1.3')
  await focused(keyOf(0, 2))
  await popup.keyboard.press('Space')
  await nowNum('1.4')
  await popup.keyboard.press('ArrowLeft')
  await nowNum('1.3')
  await popup.keyboard.press('B')
  await mod.getByTestId('screen-blank').and(mod.locator('[aria-pressed="true"]')).waitFor({ timeout: 10_000 })
  await popup.keyboard.press('B')
  await mod.getByTestId('screen-blank').and(mod.locator('[aria-pressed="false"]')).waitFor({ timeout: 10_000 })
  // two presses in one task, before any frame is drawn, still toggle twice: a key decides on the
  // document, not on the last frame (frames lag on a loaded machine or in a background window)
  await popup.evaluate(() => {
    for (let i = 0; i < 2; i++) document.dispatchEvent(new KeyboardEvent('keydown', { key: 'b' }))
  })
  await popup.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))
  assert.equal(await popup.evaluate(() => document.body.dataset.screen), 'focus', 'B twice: back from blank')

  // the participant projector: keys change only its own screen (once it is back from blank on
  // 1.3: a key pressed while it still shows the blank slide only brings it back)
  await proj.waitForFunction(() => document.body.dataset.screen === 'focus', null, { timeout: 10_000 })
  await focused(keyOf(0, 2))
  await proj.keyboard.press('ArrowRight')
  await focused(keyOf(0, 3))
  await proj.keyboard.press('F')
  await proj.waitForFunction(() => document.body.dataset.screen === 'overview', null, { timeout: 5_000 })
  assert.equal(await mod.locator('[data-testid="now-number"]').textContent(), '1.3', 'the console did not move')
  assert.equal(await popup.evaluate(() => document.body.dataset.screen), 'focus')

  // join slide from the console: the participant projector shows its own link's QR code; the
  // moderator-token projector never shows the moderator token, only a known participant link
  await mod.getByTestId('screen-join').click()
  await proj.locator('[data-testid="join"] img.qr').waitFor({ timeout: 10_000 })
  await popup.getByTestId('join').waitFor({ timeout: 10_000 })
  assert.equal(await popup.locator('[data-testid="join"] img').count(), 0, 'no participant link known: no QR code')
  assert.match(await popup.getByTestId('join-handout').textContent(), /handout/)
  assert.equal((await popup.content()).includes(created.tokens.moderator), false, 'the moderator token is nowhere in the page')
  await proj.locator('[data-testid="join-count"]').waitFor({ timeout: 10_000 })
  await screenshot(proj, 'moment-projector-join-1920x1080')
  await mod.getByTestId('join-link').fill(L.participant)
  await mod.getByRole('button', { name: 'Save' }).click()
  await mod.getByTestId('join-state').getByText('Saved').waitFor({ timeout: 10_000 })
  await popup.locator('[data-testid="join"] img.qr').waitFor({ timeout: 10_000 })
  // a moderator link is refused as a join link
  await mod.getByTestId('join-link').fill(L.moderator)
  await mod.getByRole('button', { name: 'Save' }).click()
  await mod.getByTestId('join-state').getByText(/not a participant link/).waitFor({ timeout: 10_000 })
  await mod.getByTestId('screen-auto').click()
  await proj.waitForFunction(() => document.body.dataset.screen === 'focus', null, { timeout: 10_000 })
  await setCuration((c) => c.set('presenting', null))
  assert.deepEqual([...errs, ...perrs, ...poperrs], [])
  await projCtx.close()
  await ctx.close()
})

test('numbering is identical on console, projector and phone with hidden items; screenshots of every view', { timeout: 240_000 }, async () => {
  // hide 1.2 and 2.1: the later items move up
  await setCuration((c) => {
    c.get('hidden').set(keyOf(0, 1), true)
    c.get('hidden').set(keyOf(1, 0), true)
    c.set('presenting', keyOf(2, 4))
    c.set('screen', null) // whatever an earlier test left, the console's choice is "auto"
  })
  const expected = new Map()
  for (let gi = 0; gi < GROUPS.length; gi++) {
    let n = 0
    for (let i = 0; i < PER; i++) {
      const k = keyOf(gi, i)
      expected.set(k, (gi === 0 && i === 1) || (gi === 1 && i === 0) ? null : `${gi + 1}.${++n}`)
    }
  }
  const numbers = (page, root) =>
    page.evaluate((r) => Object.fromEntries([...document.querySelectorAll(`${r} li[data-key]`)].map((li) => [li.dataset.key, li.querySelector('[data-testid="number"]').textContent])), root)

  // console: every item, hidden ones say "hidden"
  const cctx = await browser.newContext(VIEWPORTS['1366x768'])
  const mod = await cctx.newPage()
  await mod.goto(L.moderator)
  await waitOnline(mod)
  await mod.waitForFunction((k) => document.querySelector(`[data-testid="groups"] li[data-key="${k}"] [data-testid="number"]`)?.textContent === 'hidden', keyOf(1, 0), { timeout: 15_000 })
  const cn = await numbers(mod, '[data-testid="groups"]')
  for (const [k, v] of expected) assert.equal(cn[k], v ?? 'hidden', `console ${k}`)
  assert.ok(await mod.locator(`li[data-key="${keyOf(1, 0)}"].is-hidden`).count())
  await cctx.close()

  // projector overview: every page
  const pctx = await browser.newContext(VIEWPORTS['1920x1080'])
  const proj = await pctx.newPage()
  await proj.goto(L.projector)
  await waitOnline(proj)
  await proj.waitForFunction(() => document.body.dataset.screen === 'focus', null, { timeout: 10_000 })
  assert.equal(await proj.getByTestId('focus-number').textContent(), '3.5')
  await proj.keyboard.press('f')
  await proj.waitForFunction(() => document.body.dataset.screen === 'overview', null, { timeout: 5_000 })
  // the overview opens on the page of the presented item: back to the first page
  for (let n = 0; n < 20; n++) {
    const page = await proj.evaluate(() => Number(document.querySelector('[data-testid="projector-body"]').dataset.page))
    if (page === 1) break
    await proj.keyboard.press('PageUp')
    await proj.waitForFunction((p) => Number(document.querySelector('[data-testid="projector-body"]').dataset.page) === p - 1, page, { timeout: 5_000 })
  }
  const pn = {}
  for (let n = 0; n < 20; n++) {
    await proj.waitForFunction(() => document.querySelector('[data-testid="projector-body"]'), null, { timeout: 5_000 })
    Object.assign(pn, await numbers(proj, '[data-testid="projector-body"]'))
    const [page, pages] = await proj.evaluate(() => [Number(document.querySelector('[data-testid="projector-body"]').dataset.page), Number(document.querySelector('[data-testid="projector-body"]').dataset.pages)])
    if (page >= pages) break
    await proj.keyboard.press('ArrowRight')
    await proj.waitForFunction((p) => Number(document.querySelector('[data-testid="projector-body"]').dataset.page) === p + 1, page, { timeout: 5_000 })
  }
  for (const [k, v] of expected) assert.equal(pn[k], v ?? undefined, `projector ${k}`)
  await pctx.close()

  // phone: plenary tab and group tab
  const phctx = await browser.newContext(VIEWPORTS['390x844'])
  const phone = await phctx.newPage()
  await phone.goto(L.participant)
  await waitOnline(phone)
  await phone.locator(`[data-testid="content"] li[data-key="${keyOf(2, PER - 1)}"]`).waitFor({ timeout: 15_000 })
  const fn = await numbers(phone, '[data-testid="content"]')
  for (const [k, v] of expected) assert.equal(fn[k], v ?? undefined, `phone ${k}`)
  await phone.getByRole('button', { name: GROUPS[1].title }).click()
  await phone.locator(`[data-testid="content"] li[data-key="${keyOf(1, PER - 1)}"]`).waitFor({ timeout: 15_000 })
  const gn = await numbers(phone, '[data-testid="content"]')
  for (const [k, v] of expected) if (k.startsWith(GROUPS[1].id)) assert.equal(gn[k], v ?? undefined, `phone group tab ${k}`)
  assert.match(await phone.getByTestId('hidden-count').textContent(), /1 item is not shown/)
  await phctx.close()

  // screenshots of every view at every size
  for (const [vp, o] of Object.entries(VIEWPORTS)) {
    const ctx = await browser.newContext(o)
    const page = await ctx.newPage()
    for (const [name, url, ready] of [
      ['projector', L.projector, () => page.locator('[data-testid="focus"]').waitFor({ timeout: 10_000 })],
      ['console', L.moderator, () => page.locator(`[data-testid="groups"] li[data-key="${keyOf(2, PER - 1)}"]`).waitFor({ timeout: 15_000 })],
      ['participant', L.participant, () => page.locator(`[data-testid="content"] li[data-key="${keyOf(2, PER - 1)}"]`).waitFor({ timeout: 15_000 })],
      ['rapporteur', L.rapporteur('wg-migrants'), () => page.getByTestId('conclusion-text').nth(PER - 1).waitFor({ timeout: 15_000 })],
    ]) {
      await page.goto(url)
      await waitOnline(page)
      await ready()
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))
      mkdirSync(SHOTS, { recursive: true })
      await page.screenshot({ path: join(SHOTS, `moment-${name}-${vp}.png`), fullPage: false })
    }
    await ctx.close()
  }
  await setCuration((c) => {
    c.get('hidden').delete(keyOf(0, 1))
    c.get('hidden').delete(keyOf(1, 0))
    c.set('presenting', null)
  })
})
