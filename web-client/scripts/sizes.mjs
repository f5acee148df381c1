// Prints the gzipped JavaScript (and CSS) each view loads on first visit, from Vite's manifest:
// the entry chunk + the view's chunk + everything they import statically. Dynamic imports (loaded
// later, e.g. the QR code library or y-indexeddb) are listed apart. Fails when the participant
// view exceeds its budget.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

// usage: node scripts/sizes.mjs [distDir]
const dist = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dist')
const manifest = JSON.parse(readFileSync(join(dist, '.vite', 'manifest.json'), 'utf8'))
const BUDGET = { participant: 150 * 1024 }

const gz = new Map()
const gzipSize = (file) => {
  if (!gz.has(file)) gz.set(file, gzipSync(readFileSync(join(dist, file)), { level: 9 }).length)
  return gz.get(file)
}
const closure = (key, seen = new Set()) => {
  if (seen.has(key)) return seen
  seen.add(key)
  for (const k of manifest[key]?.imports ?? []) closure(k, seen)
  return seen
}
const kb = (n) => `${(n / 1024).toFixed(1)} KB`

const entryKey = Object.keys(manifest).find((k) => manifest[k].isEntry)
const views = Object.keys(manifest).filter((k) => /^src\/views\/[^/]+\.ts$/.test(k))
const rows = []
let failed = false
for (const v of views.sort()) {
  const name = v.replace(/^src\/views\/|\.ts$/g, '')
  const keys = new Set([...closure(entryKey), ...closure(v)])
  let js = 0
  let css = 0
  const later = new Set()
  for (const k of keys) {
    js += gzipSize(manifest[k].file)
    for (const c of manifest[k].css ?? []) css += gzipSize(c)
    for (const d of manifest[k].dynamicImports ?? []) if (d !== v && !views.includes(d)) later.add(d)
  }
  let lazy = 0
  for (const d of later) for (const k of closure(d)) if (!keys.has(k)) lazy += gzipSize(manifest[k].file)
  const over = BUDGET[name] && js > BUDGET[name]
  if (over) failed = true
  rows.push([name, kb(js), kb(css), lazy ? kb(lazy) : '-', BUDGET[name] ? `${kb(BUDGET[name])}${over ? '  EXCEEDED' : ' ok'}` : ''])
}
const head = ['view', 'first-load JS (gzip)', 'CSS (gzip)', 'loaded later (gzip)', 'budget']
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
const line = (r) => r.map((c, i) => c.padEnd(widths[i])).join('  ')
console.log('\nBundle sizes per view (first load = entry + view + static imports):')
console.log(line(head))
console.log(widths.map((w) => '-'.repeat(w)).join('  '))
for (const r of rows) console.log(line(r))
console.log('\nChunks (gzip):')
for (const k of Object.keys(manifest).sort((a, b) => gzipSize(manifest[b].file) - gzipSize(manifest[a].file))) {
  if (manifest[k].file.endsWith('.js')) console.log(`  ${kb(gzipSize(manifest[k].file)).padStart(9)}  ${manifest[k].file}`)
}
if (failed) {
  console.error('\nA view is over its bundle budget.')
  process.exit(1)
}
