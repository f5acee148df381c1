// Summarizes bench/run.sh results: node bench/report.cjs RESULTS.jsonl [OUT.json]
// Prints the comparison table (medians over runs) and plenary's ratios against each peer
// (plenary ÷ peer; below 1 is better for plenary), and writes a JSON summary.
const fs = require('fs')
const os = require('os')
const [, , inFile, outFile] = process.argv
const all = fs.readFileSync(inFile, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l))
const rows = all.filter(r => !r.meta)
const meta = all.filter(r => r.meta)
const TARGETS = ['plenary', 'y-sweet', 'y-websocket', 'hocuspocus']
const get = (o, p) => p.split('.').reduce((a, k) => (a == null ? undefined : a[k]), o)
const median = xs => {
  const v = xs.filter(x => typeof x === 'number' && isFinite(x)).sort((a, b) => a - b)
  if (!v.length) return undefined
  const m = v.length >> 1
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2
}
// scenario -> metrics [path, label, unit]
const METRICS = {
  typing: [['latency_ms.p50', 'p50', 'ms'], ['latency_ms.p99', 'p99', 'ms'], ['latency_ms.max', 'max', 'ms'],
    ['server.cpu_us_per_delivery', 'server CPU/delivery', 'µs'], ['server.rss_peak_mb', 'peak RSS', 'MB'],
    ['undelivered_sampled', 'undelivered (sampled)', ''], ['connections.failed', 'failed conns', ''],
    ['convergence.rooms_ok', 'converged rooms', '']],
  crowd: [['latency_ms.p50', 'p50', 'ms'], ['latency_ms.p99', 'p99', 'ms'], ['latency_ms.max', 'max', 'ms'],
    ['deliveries_per_s', 'deliveries/s', ''], ['server.cpu_us_per_delivery', 'server CPU/delivery', 'µs'],
    ['server.cpu_user_us_per_delivery', 'server user CPU/delivery', 'µs'], ['server.cpu_sys_us_per_delivery', 'server system CPU/delivery', 'µs'],
    ['server.cpu_incl_children_us_per_delivery', 'server CPU/delivery incl. child processes', 'µs'],
    ['server.rss_peak_mb', 'peak RSS', 'MB'], ['connections.setup_s', 'setup (connect all)', 's'],
    ['undelivered_sampled', 'undelivered (sampled)', ''], ['connections.failed', 'failed conns', ''],
    ['convergence.rooms_ok', 'converged rooms', ''], ['loadgen.cpu_us_per_delivery', 'loadgen CPU/delivery', 'µs'], ['machine.other_cores', 'other processes (cores)', '']],
  storm: [['all_synced_s', 'all synced', 's'], ['sync_ms.p50', 'synced since storm start p50', 'ms'], ['sync_ms.p99', 'synced since storm start p99', 'ms'],
    ['conn_sync_ms.p50', 'per-connection sync p50', 'ms'], ['conn_sync_ms.p99', 'per-connection sync p99', 'ms'],
    ['server.cpu_s', 'server CPU', 's'], ['server.cpu_user_s', 'server user CPU', 's'], ['server.cpu_sys_s', 'server system CPU', 's'],
    ['server.cpu_incl_children_s', 'server CPU incl. child processes', 's'], ['loadgen.cpu_s', 'load generator CPU', 's'], ['server.rss_peak_mb', 'peak RSS', 'MB'], ['connections.failed', 'failed conns', ''],
    ['machine.other_cores', 'other processes (cores)', '']],
  plenary: [['latency_ms.p50', 'keystroke→plenary p50', 'ms'], ['latency_ms.p99', 'keystroke→plenary p99', 'ms'],
    ['latency_ms.max', 'max', 'ms'], ['deliveries_per_s', 'deliveries/s', ''],
    ['server.cpu_us_per_delivery', 'server CPU/delivery', 'µs'], ['server.rss_peak_mb', 'peak RSS', 'MB'],
    ['undelivered_sampled', 'undelivered (sampled)', ''], ['connections.failed', 'failed conns', ''],
    ['machine.other_cores', 'other processes (cores)', '']],
  idle: [['kib_per_idle_room', 'RSS per idle loaded room', 'KiB'], ['kib_per_idle_connection', 'RSS per idle connection', 'KiB']],
}
METRICS.crowd10k = METRICS.crowd
const scenarios = [...new Set(rows.map(r => r.scenario))]
const summary = { generated_at: new Date().toISOString(), machine: machine(), meta, scenarios: {}, ratios: {}, errors: [] }
const lines = []
const fmt = v => v === undefined ? '—' : (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2))
for (const s of scenarios) {
  if (s === 'store') continue
  const ms = METRICS[s] || []
  const targets = TARGETS.filter(t => rows.some(r => r.scenario === s && r.target === t))
  summary.scenarios[s] = {}
  lines.push('')
  lines.push(`### ${s}`)
  lines.push(`| metric | ${targets.join(' | ')} |`)
  lines.push(`|---|${targets.map(() => '---').join('|')}|`)
  for (const [p, label, unit] of ms) {
    const vals = targets.map(t => median(rows.filter(r => r.scenario === s && r.target === t && !r.error).map(r => get(r, p))))
    targets.forEach((t, i) => { (summary.scenarios[s][t] ||= {})[p] = vals[i] })
    lines.push(`| ${label}${unit ? ' (' + unit + ')' : ''} | ${vals.map(fmt).join(' | ')} |`)
  }
  for (const r of rows.filter(r => r.scenario === s && r.error)) summary.errors.push(r)
  // ratios
  const pl = summary.scenarios[s].plenary
  if (pl) {
    for (const t of targets.filter(t => t !== 'plenary')) {
      const peer = summary.scenarios[s][t]
      const rr = {}
      for (const [p] of ms) if (p !== 'machine.other_cores' && p !== 'convergence.rooms_ok' && pl[p] > 0 && peer[p] > 0) rr[p] = pl[p] / peer[p]
      ;(summary.ratios[s] ||= {})[t] = rr
    }
    const rl = Object.entries(summary.ratios[s] || {}).map(([t, rr]) =>
      `${t}: ` + Object.entries(rr).map(([p, v]) => `${(ms.find(m => m[0] === p) || [p, p])[1]} ×${v.toFixed(3)}`).join(', '))
    if (rl.length) { lines.push(''); lines.push('plenary ÷ peer (lower is better): ' + rl.join(' · ')) }
  }
}
// Issue 14's rows: plenary against y-sweet, every run's value and the ratio of the medians.
const ISSUE = [
  ['storm', 'all_synced_s', 'storm: all synced (s)', 0.5],
  ['storm', 'server.cpu_s', 'storm: server CPU (s)', 0.5],
  ['storm', 'server.cpu_user_s', 'storm: server user CPU (s)', undefined],
  ['storm', 'server.cpu_sys_s', 'storm: server system CPU (s)', undefined],
  ['storm', 'conn_sync_ms.p99', 'storm: per-connection sync p99 (ms)', 1],
  ['crowd', 'latency_ms.p99', 'crowd: p99 (ms)', 0.5],
  ['crowd', 'server.cpu_us_per_delivery', 'crowd: server CPU per delivery (µs)', 0.8],
  ['crowd', 'server.cpu_user_us_per_delivery', 'crowd: server user CPU per delivery (µs)', 0.5],
  ['crowd', 'server.cpu_sys_us_per_delivery', 'crowd: server system CPU per delivery (µs)', undefined],
  ['crowd', 'server.cpu_incl_children_us_per_delivery', 'crowd: CPU per delivery incl. child processes (µs)', undefined],
  ['crowd', 'machine.other_cores', 'crowd: other processes (cores)', undefined],
  ['storm', 'machine.other_cores', 'storm: other processes (cores)', undefined],
]
const perRun = (s, t, p) => rows.filter(r => r.scenario === s && r.target === t && !r.error).map(r => get(r, p)).filter(v => typeof v === 'number')
if (ISSUE.some(([s]) => summary.scenarios[s] && summary.scenarios[s].plenary && summary.scenarios[s]['y-sweet'])) {
  lines.push('')
  lines.push('### issue 14: plenary ÷ y-sweet (runs, ratio of medians, target)')
  lines.push('| metric | plenary (runs) | y-sweet (runs) | ratio | target | verdict |')
  lines.push('|---|---|---|---|---|---|')
  summary.issue14 = []
  for (const [s, p, label, target] of ISSUE) {
    const a = perRun(s, 'plenary', p), b = perRun(s, 'y-sweet', p)
    if (!a.length && !b.length) continue
    const ma = median(a), mb = median(b)
    const ratio = ma !== undefined && mb > 0 && !p.startsWith('machine.') ? ma / mb : undefined
    const verdict = target === undefined || ratio === undefined ? '' : (ratio <= target ? 'met' : 'not met')
    summary.issue14.push({ scenario: s, metric: p, plenary: a, 'y-sweet': b, ratio, target, verdict })
    lines.push(`| ${label} | ${a.map(fmt).join(', ')} | ${b.map(fmt).join(', ')} | ${ratio === undefined ? '—' : '×' + ratio.toFixed(2)} | ${target === undefined ? '' : '≤ ×' + target} | ${verdict} |`)
  }
}
const stores = rows.filter(r => r.scenario === 'store')
if (stores.length) summary.store = stores
for (const r of stores) {
  lines.push('')
  lines.push(`### store (plenary, ${r.label || ''}${r.server_args && r.server_args.length ? '; server ' + r.server_args.join(' ') : ''})`)
  if (r.error) { lines.push('error: ' + r.error); continue }
  lines.push(`durable updates/s (${r.durable.writers} writers, window ${r.durable.window}): ${r.durable.durable_updates_per_s}; ack p50 ${r.durable.ack_latency_ms.p50} ms, p99 ${r.durable.ack_latency_ms.p99} ms; single writer round trip p50 ${r.durable.single_writer_window1_ack_ms.p50} ms`)
  lines.push('| history (updates) | write updates/s | warm sync ms | ' + r.cold_load.map(c => `first sync ${c.mode} (ms)`).join(' | ') + ' |')
  lines.push('|---|---|---|' + r.cold_load.map(() => '---').join('|') + '|')
  r.history.forEach((h, i) => {
    lines.push(`| ${h.updates} | ${h.write_updates_per_s} | ${h.warm_sync_ms.toFixed(1)} | ` + r.cold_load.map(c => c.rooms[i] ? `${c.rooms[i].first_sync_ms}${c.rooms[i].len_ok ? '' : ' (WRONG CONTENT)'}` : '—').join(' | ') + ' |')
  })
  lines.push(`start-up: ${r.cold_load.map(c => `${c.mode} ${c.startup_s}s`).join(', ')}; SIGTERM exit: ${r.cold_load.map(c => c.sigterm_exit_s + 's').join(', ')}; data dir ${r.data_dir_bytes_before_restart} bytes before restart, ${r.cold_load.map(c => c.data_dir_bytes_after).join(' / ')} after`)
}
for (const e of summary.errors) lines.push(`error: ${e.scenario}/${e.target}: ${e.error}`)
console.log(lines.join('\n'))
summary.runs = rows
if (outFile) { fs.writeFileSync(outFile, JSON.stringify(summary, null, 2)); console.log(`\nwritten ${outFile}`) }

function machine () {
  let cpu = ''
  try { cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] } catch (_) {}
  return { nproc: os.cpus().length, cpu, kernel: os.release(), mem_gb: Math.round(os.totalmem() / 2 ** 30) }
}
