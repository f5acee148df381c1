// Projector headline and small meetings: a very long meeting title wraps to two lines at most and is
// shrunk until it is whole (never an ellipsis at 1920×1080); a short one stays on one line at full
// size; a meeting with few conclusions shows them on one page without a "more follows" indicator.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { suite, createMeeting, links, PROJECTOR, waitOnline, watchErrors, screenshot, axe, addConclusions } from './helpers.mjs'

const { server, browser } = await suite()

const LONG_TITLE =
  'Regional Meeting of the Border Police and Customs Representatives on Firearms Trafficking in the Western Balkans, Skopje, North Macedonia, 12–13 October 2023'
const GROUPS = [
  { id: 'wg-migrants', title: 'Migrants with weapons' },
  { id: 'wg-handbook', title: 'Handbook on Firearms for Border Guards and Customs' },
]

const titleState = () => {
  const h1 = document.querySelector('[data-testid="projector-title"]')
  const cs = getComputedStyle(h1)
  const r = h1.getBoundingClientRect()
  return { lines: Math.round(r.height / parseFloat(cs.lineHeight)), whole: h1.scrollHeight <= h1.clientHeight + 1 && h1.scrollWidth <= h1.clientWidth + 1, size: parseFloat(cs.fontSize), right: r.right, text: h1.textContent, tip: h1.title }
}

test('the meeting title fits: two lines at most, whole, shrunk; a short one on one line', { timeout: 120_000 }, async () => {
  const created = await createMeeting(server.url, { id: 'long', title: LONG_TITLE, groups: GROUPS })
  await addConclusions(server.url, created.id, 'wg-migrants', created.tokens.rapporteurs['wg-migrants'], ['Only one conclusion.'])
  const ctx = await browser.newContext(PROJECTOR)
  const proj = await ctx.newPage()
  const errs = watchErrors(proj)
  await proj.goto(links(server.url, created).projector)
  await waitOnline(proj)
  await proj.locator('[data-testid="projector-body"] li', { hasText: 'Only one conclusion.' }).waitFor({ timeout: 15_000 })
  const t = await proj.evaluate(titleState)
  assert.ok(t.lines <= 2, `two lines at most (${t.lines})`)
  assert.ok(t.whole, 'the whole title is shown (not cut)')
  assert.equal(t.text, LONG_TITLE)
  assert.ok(t.size >= 24, `still large (${t.size} px)`)
  assert.ok(t.right <= 1920, 'inside the screen')
  // one page, no indicator of more
  assert.equal(await proj.getByTestId('indicator').textContent(), '')
  assert.equal(await proj.locator('[data-testid="projector-body"]').getAttribute('data-pages'), '1')
  assert.deepEqual(await axe(proj), [])
  await screenshot(proj, 'projector-desktop-long-title')

  const m2 = await createMeeting(server.url, { id: 'short', title: 'Skopje 2023', groups: GROUPS })
  await proj.goto(links(server.url, m2).projector)
  await waitOnline(proj)
  await proj.locator('[data-testid="projector-body"] .empty').first().waitFor({ timeout: 15_000 })
  const s = await proj.evaluate(titleState)
  assert.equal(s.lines, 1)
  assert.ok(s.size > t.size, `a short title is larger (${s.size} > ${t.size})`)
  assert.deepEqual(errs, [])
  await ctx.close()
})
