#!/usr/bin/env bash
# A short, bounded load-generator run against the real binary: proves the load generator and the
# server work together (every connection held, every update delivered, documents converged).
# Not a benchmark (see bench/run.sh and BENCHMARKS.md); figures printed here are not asserted.
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
cleanup() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
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
    if (bad.length) { console.error("smoke failed:", bad.join(", "), s.slice(0, 800)); process.exit(1); }
    console.log("ok:", process.argv[2], s.slice(0, 300));
  ' "$1" "$2"
}
"$LG" run --scenario typing --url "$URL" --admin-token "$ADMIN" --server-pid "$PID" \
  --duration 3 --rooms 2 --writers 2 --hz 5 --followers 20 --sample 5 --json "$DATA/typing.jsonl"
check "$DATA/typing.jsonl" typing
"$LG" run --scenario plenary --url "$URL" --admin-token "$ADMIN" --server-pid "$PID" \
  --duration 3 --writers 2 --hz 5 --followers 50 --sample 5 --json "$DATA/plenary.jsonl"
check "$DATA/plenary.jsonl" plenary
