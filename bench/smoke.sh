#!/usr/bin/env bash
# A short, bounded load-generator run against the real binary: proves the load generator and the
# server work together (every connection held, every update delivered, documents converged).
# Not a benchmark (see bench/run.sh and BENCHMARKS.md); figures printed here are not asserted.
# With PLENARY_TEST_PG_URL (scripts/test.sh sets it) it also runs two nodes on one PostgreSQL
# database and kills one mid-run with SIGKILL: every client must be back on the other node and
# no update lost (the tooling of bench/cluster.sh; PLENARY_REQUIRE_PG=1 makes a missing URL fail).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${PLENARY_BIN:-$ROOT/target/release/plenary}"
LG="$ROOT/target/release/plenary-loadgen"
[ -x "$LG" ] || cargo build --release -p plenary-loadgen --manifest-path "$ROOT/Cargo.toml"
DATA="$(mktemp -d)"
OUT="$DATA/out"
ADMIN="smoke-admin-token-$(date +%s%N)"
"$BIN" serve --addr 127.0.0.1:0 --data-dir "$DATA/store" --admin-token "$ADMIN" --no-demo >"$OUT" 2>"$DATA/err" &
PID=$!
PIDS=("$PID")
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$DATA"
}
trap cleanup EXIT
for _ in $(seq 1 200); do
  grep -q '^listening on ' "$OUT" 2>/dev/null && break
  sleep 0.05
done
URL="$(sed -n 's/^listening on //p' "$OUT" | head -1)"
[ -n "$URL" ] || { echo "server did not start"; cat "$DATA/err"; exit 1; }
check() {
  node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n");
    const r = JSON.parse(lines[lines.length - 1]);
    const s = JSON.stringify(r);
    const bad = [];
    if (!(r.connections && r.connections.failed === 0)) bad.push("connections failed");
    if (!(r.convergence && r.convergence.ok)) bad.push("not converged");
    if (r.lost_updates !== 0) bad.push("lost updates: " + r.lost_updates);
    // one node: every sample is a same-node one
    if (process.argv[3] === "one-node" && !(r.hop && r.hop.local_ms.samples > 0 && r.hop.remote_ms.samples === 0)) bad.push("hop split wrong");
    if (process.argv[3] === "failover") {
      const f = r.failover || {};
      if (!(f.signal_sent && f.clients_dropped > 0 && f.all_back && f.clients_back === f.clients_dropped)) bad.push("not every client came back: " + JSON.stringify(f).slice(0, 300));
    }
    if (bad.length) { console.error("smoke failed:", bad.join(", "), s.slice(0, 800)); process.exit(1); }
    console.log("ok:", process.argv[2], s.slice(0, 300));
  ' "$1" "$2" "${3:-one-node}"
}
"$LG" run --scenario typing --url "$URL" --admin-token "$ADMIN" --server-pid "$PID" \
  --duration 3 --rooms 2 --writers 2 --hz 5 --followers 20 --sample 5 --json "$DATA/typing.jsonl"
check "$DATA/typing.jsonl" typing
"$LG" run --scenario plenary --url "$URL" --admin-token "$ADMIN" --server-pid "$PID" \
  --duration 3 --writers 2 --hz 5 --followers 50 --sample 5 --json "$DATA/plenary.jsonl"
check "$DATA/plenary.jsonl" plenary

# Two nodes on one PostgreSQL database, node A killed: the failover tooling end to end.
if [ -z "${PLENARY_TEST_PG_URL:-}" ]; then
  [ "${PLENARY_REQUIRE_PG:-0}" = 1 ] && { echo "smoke: PLENARY_TEST_PG_URL is not set"; exit 1; }
  echo "smoke: no PLENARY_TEST_PG_URL: two-node failover skipped"
  exit 0
fi
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
DB="smoke_failover_$$"
PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -q -v ON_ERROR_STOP=1 "$PLENARY_TEST_PG_URL" \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
STORE="${PLENARY_TEST_PG_URL%/*}/$DB"
start_node() { # NAME -> NODE_URL, NODE_PID
  "$BIN" serve --addr 127.0.0.1:0 --data-dir "$DATA/$1" --store "$STORE" --admin-token "$ADMIN" --no-demo \
    >"$DATA/$1.out" 2>"$DATA/$1.err" &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  for _ in $(seq 1 300); do
    grep -q '^listening on ' "$DATA/$1.out" 2>/dev/null && break
    sleep 0.05
  done
  NODE_URL="$(sed -n 's/^listening on //p' "$DATA/$1.out" | head -1)"
  [ -n "$NODE_URL" ] || { echo "node $1 did not start"; cat "$DATA/$1.err"; exit 1; }
}
start_node a; A="$NODE_URL"; PA="$NODE_PID"
# the meeting exists before node B starts (B reads the directory at start)
"$LG" run --scenario crowd --url "$A" --admin-token "$ADMIN" --rooms 2 --prepare-only "$DATA/rooms.json" --quiet >/dev/null
start_node b; B="$NODE_URL"; PB="$NODE_PID"
# every client on node A, then A dies: all of them move to B
"$LG" run --scenario crowd --url "$A,$B" --server-pid "$PA,$PB" --admin-token "$ADMIN" --rooms-file "$DATA/rooms.json" \
  --writer-nodes 0 --follower-nodes 0 --writers 2 --hz 5 --followers 20 --sample 4 --duration 4 --kill-node 0 --kill-at 1.5 \
  --drain 30 --json "$DATA/failover.jsonl" --quiet >/dev/null
check "$DATA/failover.jsonl" failover failover
"$PGBIN/psql" -q "$PLENARY_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
