// The harness itself: a page error on any page of any context fails the test that had it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { launch, assertNoPageErrors } from './helpers.mjs'
test('a page error on any page of any context is recorded', async () => {
  const browser = await launch()
  try {
    const page = await browser.newPage()
    await page.setContent('<p>x</p>')
    await page.evaluate(() => setTimeout(() => { throw new Error('boom from the page') }, 0))
    const ctx = await browser.newContext()
    const p2 = await ctx.newPage()
    await p2.setContent('<script>null.x</script>')
    const deadline = Date.now() + 10000
    while (browser.pageErrors.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    assert.equal(browser.pageErrors.length, 2, JSON.stringify(browser.pageErrors))
    assert.throws(() => assertNoPageErrors(browser), /page errors/)
    assert.deepEqual(browser.pageErrors, [])
  } finally { await browser.close() }
})
