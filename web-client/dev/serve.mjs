// The client's dev loop against the real server: starts `plenary serve` (the release binary,
// $PLENARY_BIN or <repo>/target/release/plenary) on a free loopback port with a temporary data
// dir, then Vite with hot reload, its proxy pointed at that server (/api and /ws). The server's
// links (demo meeting, organizer page) name Vite's address, so they open the dev build.
//
//   npm run dev                       # temporary data dir, removed on exit
//   npm run dev -- --data-dir /tmp/pd # keep the data between runs
//
// Admin token: $PLENARY_ADMIN_TOKEN or dev-admin-token-000 (for /organize). Ctrl+C stops both.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer as netServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const webClient = resolve(here, '..')
const repo = resolve(webClient, '..')
const bin = process.env.PLENARY_BIN || join(repo, 'target', 'release', 'plenary')
const admin = process.env.PLENARY_ADMIN_TOKEN || 'dev-admin-token-000'
const argDir = process.argv.indexOf('--data-dir')
const keep = argDir >= 0 ? resolve(process.argv[argDir + 1]) : null
const dataDir = keep ?? mkdtempSync(join(tmpdir(), 'plenary-dev-'))

if (!existsSync(bin)) {
  console.error(`${bin} not found: run 'cargo build --release -p plenary-server' in ${repo} (or set PLENARY_BIN)`)
  process.exit(1)
}

/** a free loopback port (asked of the OS, then released for the process that binds it) */
const freePort = () =>
  new Promise((res, rej) => {
    const s = netServer()
    s.once('error', rej)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => res(port))
    })
  })

const serverPort = await freePort()
const vitePort = Number(process.env.PORT) || (await freePort())
const viteUrl = `http://127.0.0.1:${vitePort}`
const server = spawn(bin, ['serve', '--addr', `127.0.0.1:${serverPort}`, '--data-dir', dataDir, '--admin-token', admin, '--public-url', viteUrl], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
})
let out = ''
const serverUrl = await new Promise((res, rej) => {
  server.stdout.on('data', (d) => {
    process.stdout.write(d)
    out += d
    const m = /listening on (http:\/\/\S+)/.exec(out)
    if (m) res(m[1].replace(/\/$/, ''))
  })
  server.once('exit', (code) => rej(new Error(`plenary serve exited (${code}) before listening`)))
})

// vite.config.ts points its proxy at PLENARY_URL
process.env.PLENARY_URL = serverUrl
const { createServer } = await import('vite')
const vite = await createServer({ root: webClient, server: { host: '127.0.0.1', port: vitePort, strictPort: true } })
await vite.listen()
console.log(`\nplenary serve ${serverUrl} (data ${dataDir}${keep ? '' : ', temporary'})`)
console.log(`vite dev server ${viteUrl} — organizer page ${viteUrl}/organize (admin token ${admin})\n`)

// However node ends (Ctrl+C, SIGTERM, which Vite answers with its own process.exit, an error),
// the server goes with it: it is asked to stop and awaited (synchronously, as 'exit' requires),
// then the temporary data dir is removed.
let exiting = false
process.on('exit', () => {
  if (exiting) return
  exiting = true
  if (server.exitCode === null && server.signalCode === null) {
    server.kill('SIGTERM')
    spawnSync('sh', ['-c', `while kill -0 ${server.pid} 2>/dev/null; do sleep 0.1; done`], { timeout: 10_000 })
    if (server.exitCode === null) server.kill('SIGKILL')
  }
  if (!keep) rmSync(dataDir, { recursive: true, force: true })
})
const stop = (code) => vite.close().catch(() => {}).then(() => process.exit(code))
process.on('SIGINT', () => stop(0))
process.on('SIGTERM', () => stop(0))
server.on('exit', (code) => {
  if (exiting) return
  console.error(`plenary serve exited (${code})`)
  stop(1)
})
