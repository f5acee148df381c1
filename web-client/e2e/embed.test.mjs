// The server binary serves the committed web-client/dist (embedded at compile time): index.html
// for the app routes and every built asset byte for byte.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startServer, REPO } from './helpers.mjs'

const DIST = join(REPO, 'web-client', 'dist')
const server = await startServer()
after(async () => {
  await server.stop()
  server.cleanup()
})

test('the server serves the current web-client/dist', { timeout: 60_000 }, async () => {
  const index = readFileSync(join(DIST, 'index.html'), 'utf8')
  for (const path of ['/', '/organize', '/m/some-meeting', '/m/some-meeting/g/wg-x', '/m/some-meeting/console', '/m/some-meeting/projector']) {
    const res = await fetch(server.directUrl + path)
    assert.equal(res.status, 200, path)
    assert.equal(await res.text(), index, `${path} is not the current dist/index.html: rebuild the server (cargo build --release) after building the web client`)
  }
  const manifest = JSON.parse(readFileSync(join(DIST, '.vite', 'manifest.json'), 'utf8'))
  const files = new Set(Object.values(manifest).flatMap((e) => [e.file, ...(e.css ?? [])]))
  for (const f of files) {
    const res = await fetch(`${server.directUrl}/${f}`)
    assert.equal(res.status, 200, f)
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(readFileSync(join(DIST, f))), `${f} differs from web-client/dist`)
    const type = res.headers.get('content-type') ?? ''
    assert.match(type, f.endsWith('.js') ? /javascript/ : /css/, `${f} content-type ${type}`)
  }
})
