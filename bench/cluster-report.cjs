// Tables of a bench/cluster.sh run: node bench/cluster-report.cjs .bench/cluster-DATE.jsonl
// Prints Markdown: crowd and plenary per configuration (with the cross-node hop), a node's death,
// durable updates/s through each store, and the doorbell inside vs after the commit.
const fs = require('fs')
const rows = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l))
const meta = rows.find(r => r.meta) || {}
const f = v => v == null || Number.isNaN(v) ? '—' : (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2)) : String(v))
const pair = o => o && o.samples ? `${f(o.p50)} / ${f(o.p99)}` : '—'
const median = xs => { const v = xs.filter(x => typeof x === 'number').sort((a, b) => a - b); if (!v.length) return undefined; const m = v.length >> 1; return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2 }
const out = []
out.push(`cluster benchmark: started ${meta.started_at || '?'}, commit ${meta.commit || '?'}, binary sha256 ${meta.plenary_sha256 || '?'}, ${meta.machine || ''}${meta.quick ? ', --quick' : ''}${meta.same_node ? ', --same-node (every client on node A)' : ''}`)

const fan = rows.filter(r => ['crowd', 'crowd-both', 'plenary'].includes(r.run) && !r.meta)
if (fan.length) {
  out.push('', '### crowd and plenary (latency ms: p50 / p99; on pg-2 the writers are on node A, in crowd-both on both nodes)')
  out.push('| config | scenario | all probes | same node | cross node | cross-node added (p50 / p99) | deliveries/s | server CPU/delivery (µs) | lost updates | converged | failed conns | other processes (cores) |')
  out.push('|---|---|---|---|---|---|---|---|---|---|---|---|')
  for (const r of fan) {
    if (r.error) { out.push(`| ${r.config} | ${r.run} | error: ${r.error.slice(0, 120)} |||||||||`); continue }
    const h = r.hop || {}
    const added = h.added_ms && h.added_ms.p50 != null ? `${f(h.added_ms.p50)} / ${f(h.added_ms.p99)}` : '—'
    out.push(`| ${r.config} | ${r.run} | ${pair(r.latency_ms)} | ${pair(h.local_ms)} | ${pair(h.remote_ms)} | ${added} | ${f(r.deliveries_per_s)} | ${f(r.server && r.server.cpu_us_per_delivery)} | ${f(r.lost_updates)} | ${r.convergence && r.convergence.ok ? 'yes' : 'NO'} | ${f(r.connections && r.connections.failed)} | ${f(r.machine && r.machine.other_cores)} |`)
  }
}
for (const r of rows.filter(r => r.run === 'failover')) {
  out.push('', '### a node\'s death (pg-2: kill -9 node A; its clients reconnect to node B)')
  if (r.error) { out.push('error: ' + r.error); continue }
  const x = r.failover || {}
  out.push(`killed node ${x.node} at ${f(x.kill_at_s)} s into a ${f(r.params && r.params.duration_s)} s window (signal sent: ${x.signal_sent}); ${r.connections.attempted} clients`)
  out.push('| | value |', '|---|---|')
  out.push(`| clients dropped / back | ${f(x.clients_dropped)} / ${f(x.clients_back)} (all back: ${x.all_back ? 'yes' : 'NO'}) |`)
  out.push(`| time until every client is back (ms after the kill) | ${f(x.back_ms && x.back_ms.all)} (p50 ${f(x.back_ms && x.back_ms.p50)}) |`)
  out.push(`| latency before the kill (p50 / p99 ms) | ${pair(x.latency_before_ms)} |`)
  out.push(`| latency of keystrokes sent during the reconnect storm | ${pair(x.latency_storm_ms)} (max ${f(x.latency_storm_ms && x.latency_storm_ms.max)}) |`)
  out.push(`| latency after every client is back | ${pair(x.latency_after_ms)} |`)
  out.push(`| updates lost (must be 0) | ${f(r.lost_updates)} of ${f(r.lost_check && r.lost_check.characters_typed)} typed; converged ${r.convergence && r.convergence.ok ? 'yes' : 'NO'} |`)
}
const stores = rows.filter(r => r.run === 'store')
if (stores.length) {
  out.push('', '### durable updates/s, one node, group commit (acknowledged once durable)')
  out.push('| store | writers × window | durable updates/s | ack p50 / p99 (ms) | one writer, one at a time: round trip p50 (ms) | updates per commit | server CPU (s) |')
  out.push('|---|---|---|---|---|---|---|')
  for (const r of stores) {
    if (r.error) { out.push(`| ${r.config} | error: ${r.error.slice(0, 120)} |||||`); continue }
    const d = r.durable
    const two = r.config === 'pg-2' ? `, two nodes at once: node ${(r.label || '').slice(-1)}` : ''
    out.push(`| ${r.store_kind === 'pg' ? 'PostgreSQL (synchronous_commit=on)' + two : (r.server_args || []).includes('--durability=power') ? 'SQLite, --durability power (fsync per commit)' : 'SQLite, default --durability process'} | ${d.writers} × ${d.window} | ${f(d.durable_updates_per_s)} | ${pair(d.ack_latency_ms)} | ${f(d.single_writer_window1_ack_ms && d.single_writer_window1_ack_ms.p50)} | ${d.group_commit ? `${f(d.group_commit.updates_per_transaction)} (${d.group_commit.updates} in ${d.group_commit.transactions})` : '—'} | ${f(d.server_cpu_s)} |`)
  }
}
const both = stores.filter(r => r.config === 'pg-2' && !r.error)
if (both.length === 2) out.push('', `two nodes on one PostgreSQL at once: ${f(both.reduce((a, r) => a + r.durable.durable_updates_per_s, 0))} durable updates/s together`)
const nc = rows.filter(r => r.scenario === 'notify-commit')
if (nc.length) {
  out.push('', `### the doorbell inside vs after the commit (pgbench, ${nc[0].clients} clients, ${nc[0].seconds} s each, PostgreSQL ${nc[0].postgres})`)
  out.push('| variant | commits/s (runs) | median |', '|---|---|---|')
  const med = {}
  for (const v of ['none', 'inside', 'after']) {
    const xs = nc.filter(r => r.variant === v).map(r => r.commits_per_s)
    med[v] = median(xs)
    out.push(`| ${v === 'none' ? 'no NOTIFY' : v === 'inside' ? 'pg_notify inside the transaction' : 'pg_notify after the commit'} | ${xs.map(f).join(', ')} | ${f(med[v])} |`)
  }
  if (med.inside > 0) out.push('', `after ÷ inside: ×${(med.after / med.inside).toFixed(2)} commits/s`)
}
for (const r of rows.filter(r => r.error && !['crowd', 'crowd-both', 'plenary', 'failover', 'store'].includes(r.run))) out.push('error: ' + JSON.stringify(r))
console.log(out.join('\n'))
