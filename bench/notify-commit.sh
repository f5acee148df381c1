#!/usr/bin/env bash
# The doorbell inside vs after the commit (issue 13), measured with PostgreSQL's own pgbench.
#
#   bench/notify-commit.sh [--url postgres://USER@HOST:PORT/DB] [--clients 16] [--seconds 10]
#                          [--rounds 2] [--json FILE]
#
# Without --url it makes a throwaway cluster (scripts/pg.sh) and removes it afterwards. In a
# fresh database `notify_bench` it creates a `doc_heads(doc, seq)` row per document (1,000) and a
# `doc_updates(doc, seq, data)` log, then runs three pgbench scripts, `--clients` clients each
# (synchronous_commit=on, fsync=on: every data commit waits for its WAL flush):
#   none    BEGIN; bump the head row; insert the update row (100 bytes); COMMIT
#   inside  the same, with SELECT pg_notify(...) inside the transaction, before COMMIT
#   after   the same transaction as `none`, then SELECT pg_notify(...) on its own
# One LISTEN session is open on the channel throughout (a node listens), so the notifications
# go into the queue as they would in a cluster. Variants alternate, `--rounds` times; the report
# is commits/s (pgbench's tps: one data transaction per pgbench transaction in every variant).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
URL=""
CLIENTS=16
SECONDS_EACH=10
ROUNDS=2
JSON=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --url) URL="$2"; shift ;;
    --clients) CLIENTS="$2"; shift ;;
    --seconds) SECONDS_EACH="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --json) JSON="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
[[ -x "$BIN/pgbench" ]] || { echo "pgbench not found under /usr/lib/postgresql/*/bin (scripts/pg.sh installs PostgreSQL)" >&2; exit 2; }

WORK="$(mktemp -d)"
APP="notify-bench-listener-$$"
OWN_PG=""
LISTENER=""
cleanup() {
  if [[ -n "$LISTENER" ]]; then
    # the listening backend sleeps on after its client is gone: end it too
    "$BIN/psql" -qAt "$URL" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$APP'" >/dev/null 2>&1 || true
    kill "$LISTENER" 2>/dev/null || true
    wait "$LISTENER" 2>/dev/null || true
  fi
  [[ -n "$OWN_PG" ]] && bash "$ROOT/scripts/pg.sh" stop "$OWN_PG" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
if [[ -z "$URL" ]]; then
  OWN_PG="/tmp/pg-notify-bench-$$"
  URL="$(bash "$ROOT/scripts/pg.sh" start "$OWN_PG")"
fi
DB_URL="${URL%/*}/notify_bench"
PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -q -v ON_ERROR_STOP=1 "$URL" -c "DROP DATABASE IF EXISTS notify_bench WITH (FORCE)" -c "CREATE DATABASE notify_bench" >/dev/null
"$BIN/psql" -q -v ON_ERROR_STOP=1 "$DB_URL" >/dev/null <<'SQL'
CREATE TABLE doc_heads (doc int PRIMARY KEY, seq bigint NOT NULL);
CREATE TABLE doc_updates (doc int NOT NULL, seq bigint NOT NULL, data bytea NOT NULL, PRIMARY KEY (doc, seq));
INSERT INTO doc_heads SELECT g, 0 FROM generate_series(1, 1000) g;
SQL
SETTINGS="$("$BIN/psql" -At "$DB_URL" -c "SELECT current_setting('server_version') || ' synchronous_commit=' || current_setting('synchronous_commit') || ' fsync=' || current_setting('fsync') || ' commit_delay=' || current_setting('commit_delay')")"

body='\set doc random(1, 1000)
BEGIN;
UPDATE doc_heads SET seq = seq + 1 WHERE doc = :doc RETURNING seq \gset
INSERT INTO doc_updates VALUES (:doc, :seq, decode(repeat('"'"'ab'"'"', 100), '"'"'hex'"'"'));'
ring="SELECT pg_notify('plenary_docs', format('{\"doc\":%s,\"first\":%s,\"last\":%s,\"p\":\"%s\"}', :doc, :seq, :seq, repeat('x', 100)));"
printf '%s\nCOMMIT;\n' "$body" >"$WORK/none.sql"
printf '%s\n%s\nCOMMIT;\n' "$body" "$ring" >"$WORK/inside.sql"
printf '%s\nCOMMIT;\n%s\n' "$body" "$ring" >"$WORK/after.sql"

# A listening session for the whole run (a node's LISTEN connection).
PGAPPNAME="$APP" "$BIN/psql" -q "$DB_URL" -c "LISTEN plenary_docs" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
LISTENER=$!

echo "== notify-commit: $CLIENTS clients, ${SECONDS_EACH}s per variant, $ROUNDS round(s); PostgreSQL $SETTINGS"
declare -A SUM
for round in $(seq 1 "$ROUNDS"); do
  for v in none inside after; do
    out="$("$BIN/pgbench" -n -c "$CLIENTS" -j 2 -T "$SECONDS_EACH" -f "$WORK/$v.sql" "$DB_URL" 2>&1)" || { echo "$out" >&2; exit 1; }
    tps="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$out" | head -1)"
    lat="$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out" | head -1)"
    failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out" | head -1)"
    printf '   round %s %-6s %8s commits/s, latency avg %s ms\n' "$round" "$v" "$tps" "$lat"
    SUM[$v]="${SUM[$v]:-} $tps"
    if [[ -n "$JSON" ]]; then
      printf '{"scenario":"notify-commit","variant":"%s","round":%s,"clients":%s,"seconds":%s,"commits_per_s":%s,"latency_avg_ms":%s,"failed":%s,"postgres":"%s","at":"%s"}\n' \
        "$v" "$round" "$CLIENTS" "$SECONDS_EACH" "${tps:-null}" "${lat:-null}" "${failed:-0}" "$SETTINGS" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$JSON"
    fi
  done
done
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
n="$(med <<<"${SUM[none]}")"; i="$(med <<<"${SUM[inside]}")"; a="$(med <<<"${SUM[after]}")"
awk -v n="$n" -v i="$i" -v a="$a" 'BEGIN { printf "   medians: none %.0f, inside %.0f, after %.0f commits/s; after ÷ inside = ×%.2f\n", n, i, a, (i > 0 ? a / i : 0) }'
