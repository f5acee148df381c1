#!/usr/bin/env bash
# Instruction counts of a server under callgrind: stable on a busy machine, where wall-clock and
# CPU-seconds figures are not. Starts the server under `valgrind --tool=callgrind`, runs one
# `plenary-loadgen run` against it, stops it (SIGTERM; callgrind writes its profile at exit) and
# prints the total instructions (Ir) and the top functions.
#
#   bench/callgrind.sh TARGET OUT_PREFIX -- LOADGEN_RUN_ARGS...
#   bench/callgrind.sh plenary .bench/cg/storm1000 -- --scenario storm --rooms 10 --clients 1000
#
# TARGET: plenary (binary: $PLENARY or target/release/plenary) or y-sweet (.bench/y-sweet).
# Per-connection or per-delivery counts come from the difference of two runs of different
# sizes (start-up, prefill and shutdown cancel out), e.g. 1,000 and 10 storm clients.
# Only the server process is traced: plenary's sandbox workers run natively (not counted).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
T="$1"; OUT="$2"; shift 2
[[ "${1:-}" == "--" ]] && shift
LG="${LOADGEN:-$ROOT/target/release/plenary-loadgen}"
PLENARY="${PLENARY:-$ROOT/target/release/plenary}"
mkdir -p "$(dirname "$OUT")"
DATA="$(mktemp -d)"
LOG="$OUT.server.log"
ADMIN="cg-admin-$RANDOM$RANDOM"
VG=(valgrind --tool=callgrind --callgrind-out-file="$OUT.callgrind" --dump-instr=no --trace-children=no)
case "$T" in
  plenary) "${VG[@]}" "$PLENARY" serve --addr 127.0.0.1:0 --data-dir "$DATA" --admin-token "$ADMIN" --no-demo >"$LOG" 2>&1 & ;;
  y-sweet)
    PORT="$("$LG" free-port)"
    "${VG[@]}" "$ROOT/.bench/y-sweet/bin/y-sweet" serve --host 127.0.0.1 --port "$PORT" "$DATA" >"$LOG" 2>&1 &
    ;;
  *) echo "unknown target $T" >&2; exit 2 ;;
esac
PID=$!
cleanup() { kill -TERM "$PID" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT
URL=""
for _ in $(seq 1 600); do
  if [[ "$T" == y-sweet ]]; then
    URL="$(grep -o 'Listening on ws://[0-9.:]*' "$LOG" | head -1 | sed 's#Listening on ws://#http://#' || true)"
  else
    URL="$(grep -o 'listening on http://[0-9.:]*' "$LOG" | head -1 | sed 's#listening on ##' || true)"
  fi
  [[ -n "$URL" ]] && break
  kill -0 "$PID" 2>/dev/null || { echo "server exited: $(tail -3 "$LOG")" >&2; exit 1; }
  sleep 0.2
done
[[ -n "$URL" ]] || { echo "server did not start" >&2; exit 1; }
"$LG" run --target "$T" --url "$URL" --admin-token "$ADMIN" --server-pid "$PID" --quiet \
  --json "$OUT.json" "$@" >"$OUT.loadgen.log" 2>&1 || { echo "loadgen failed: $(tail -2 "$OUT.loadgen.log")" >&2; }
kill -TERM "$PID"
for _ in $(seq 1 600); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
kill -KILL "$PID" 2>/dev/null || true
wait "$PID" 2>/dev/null || true
trap - EXIT
rm -rf "$DATA"
f="$(ls -t "$OUT".callgrind* | head -1)"
callgrind_annotate --inclusive=no "$f" 2>/dev/null | head -40 > "$OUT.top.txt" || true
total="$(grep -m1 -E '^summary:|PROGRAM TOTALS' "$OUT.top.txt" | grep -oE '[0-9,]+' | head -1 | tr -d ,)"
echo "$T $OUT Ir=$total"
