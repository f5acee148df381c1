#!/usr/bin/env bash
# Issue 13's benchmark in one command: one node on SQLite, one node on PostgreSQL, two nodes on
# one PostgreSQL database; crowd and plenary scenarios on each, the cross-node hop, a node's
# death, durable updates/s through PostgreSQL, and the doorbell inside vs after the commit.
#
#   bench/cluster.sh                # all of it (about 4-6 minutes on 2 cores)
#   bench/cluster.sh --quick        # small loads, short windows (about 3 minutes)
#   bench/cluster.sh --only crowd,failover --configs pg-2
#
# Options:
#   --quick            small loads and short windows
#   --only LIST        crowd,plenary,failover,store,notify (default: all)
#   --configs LIST     sqlite-1,pg-1,pg-2 for crowd and plenary (default: all three)
#   --same-node        put every client of the two-node runs on node A (node B idle; the failover
#                      run then moves all of them to B). For trying the tooling before the nodes
#                      relay each other's updates; the cross-node hop is then not measured.
#   --no-build         use the existing target/release binaries
#   --no-wait-quiet    don't wait (up to 2 min per step) for other processes to leave the CPU idle
#   --plenary-bin PATH use this plenary binary (default: target/release/plenary)
#   --pg-url URL       use this PostgreSQL (a superuser URL; databases bench_* are created in it)
#                      instead of a throwaway cluster made by scripts/pg.sh
#
# Every server is started here on 127.0.0.1 on a free port with its own data dir and stopped by
# PID; the failover run SIGKILLs node A (a PID started here) a third into its window. Results: one
# JSON line per run in .bench/cluster-<date>.jsonl, logs in .bench/cluster-logs-<date>/, and the
# tables printed by bench/cluster-report.cjs (also written to .bench/cluster-<date>.md).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

QUICK=0
ONLY="crowd,plenary,failover,store,notify"
CONFIGS="sqlite-1,pg-1,pg-2"
SAME_NODE=0
BUILD=1
WAIT_QUIET=1
PG_URL=""
PLENARY_BIN="target/release/plenary"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --only) ONLY="$2"; shift ;;
    --configs) CONFIGS="$2"; shift ;;
    --same-node) SAME_NODE=1 ;;
    --no-build) BUILD=0 ;;
    --no-wait-quiet) WAIT_QUIET=0 ;;
    --pg-url) PG_URL="$2"; shift ;;
    --plenary-bin) PLENARY_BIN="$2"; BUILD=0; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
has() { [[ ",$1," == *",$2,"* ]]; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
STAMP="$(date +%Y%m%d-%H%M%S)"
DBSTAMP="${STAMP//-/_}"
mkdir -p .bench
RESULTS=".bench/cluster-$STAMP.jsonl"
LOGS=".bench/cluster-logs-$STAMP"
DATA="$(mktemp -d /tmp/plenary-cluster-bench-XXXX)"
mkdir -p "$LOGS"
LG="$ROOT/target/release/plenary-loadgen"
ADMIN="bench-admin-token-$RANDOM$RANDOM$RANDOM"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"

if [[ $BUILD == 1 ]]; then
  echo "== building plenary and plenary-loadgen (release)"
  cargo build --release -p plenary-server -p plenary-loadgen
fi
# Snapshot the binary: target/ is shared, and a rebuild during the run must not mix versions.
cp "$PLENARY_BIN" "$DATA/plenary"
PLENARY="$DATA/plenary"

# Loads: crowd = 2 rooms x 2 writers at 5 Hz x F followers per room; plenary = 3 groups x 2
# rapporteurs at 5 Hz x P followers of the plenary document; failover = the crowd, smaller.
if [[ $QUICK == 1 ]]; then
  CROWD="--rooms 2 --writers 2 --hz 5 --followers 300 --sample 10 --duration 4 --drain 20"
  PLEN="--rooms 3 --writers 2 --hz 5 --followers 300 --sample 10 --duration 4 --drain 20"
  FAIL="--rooms 2 --writers 2 --hz 5 --followers 200 --sample 10 --duration 9 --kill-at 3 --drain 40"
  STORE="--duration 3"
  NOTIFY="--seconds 4 --rounds 1"
else
  CROWD="--rooms 2 --writers 2 --hz 5 --followers 1000 --sample 10 --duration 10 --drain 30"
  PLEN="--rooms 3 --writers 2 --hz 5 --followers 1000 --sample 10 --duration 10 --drain 30"
  FAIL="--rooms 2 --writers 2 --hz 5 --followers 500 --sample 10 --duration 15 --kill-at 5 --drain 60"
  STORE="--duration 5"
  NOTIFY="--seconds 10 --rounds 2"
fi

PIDS=()
OWN_PG=""
cleanup() {
  local p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
  done
  [[ -n "$OWN_PG" ]] && bash scripts/pg.sh stop "$OWN_PG" >/dev/null 2>&1 || true
  rm -rf "$DATA"
}
trap cleanup EXIT INT TERM

busy_cores() {
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  awk -v b="$(( (b[1]+b[2]+b[3]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[6]+a[7]+a[8]) ))" 'BEGIN { printf "%.2f", b / 100 }'
}
wait_quiet() {
  [[ $WAIT_QUIET == 1 ]] || return 0
  local waited=0 b
  while :; do
    b="$(busy_cores)"
    awk -v b="$b" 'BEGIN { exit !(b < 0.3) }' && return 0
    if (( waited >= 120 )); then echo "   (machine still busy: $b cores in use by others; running anyway)"; return 0; fi
    (( waited == 0 )) && echo "   (waiting for the machine to be quiet: $b cores busy)"
    sleep 4; waited=$((waited + 5))
  done
}

need_pg() {
  [[ -n "$PG_URL" ]] && return 0
  OWN_PG="/tmp/pg-cluster-bench-$$"
  PG_URL="$(bash scripts/pg.sh start "$OWN_PG")"
  PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
}
# fresh_db NAME -> prints the database URL
fresh_db() {
  PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -q -v ON_ERROR_STOP=1 "$PG_URL" \
    -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
  echo "${PG_URL%/*}/$1"
}

# start_node STORE NAME -> sets NODE_PID, NODE_URL
start_node() {
  local store="$1" name="$2" log="$LOGS/$2.server.log" dir
  dir="$(mktemp -d "$DATA/$name-XXXX")"
  "$PLENARY" serve --addr 127.0.0.1:0 --data-dir "$dir" --store "$store" --admin-token "$ADMIN" --no-demo \
    >"$log" 2>&1 &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  NODE_URL=""
  for _ in $(seq 1 300); do
    NODE_URL="$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's#listening on ##' || true)"
    [[ -n "$NODE_URL" ]] && return 0
    kill -0 "$NODE_PID" 2>/dev/null || { echo "   $name exited at start-up: $(tail -3 "$log")" >&2; return 1; }
    sleep 0.1
  done
  echo "   $name did not start in 30 s" >&2
  return 1
}
stop_nodes() {
  local p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
}

# record LABEL LOGFILE: the loadgen wrote its JSON line to $RESULTS.tmp; tag it and keep it
record() {
  local config="$1" label="$2" log="$3"
  if [[ -s "$RESULTS.tmp" ]]; then
    node -e '
      const fs = require("fs"); const [f, config, label, store, same] = process.argv.slice(1);
      for (const l of fs.readFileSync(f, "utf8").split("\n").filter(Boolean)) {
        const r = JSON.parse(l); r.config = config; r.run = label; r.store_kind = store; r.same_node = same === "1";
        console.log(JSON.stringify(r));
      }' "$RESULTS.tmp" "$config" "$label" "${config%%-*}" "$SAME_NODE" >>"$RESULTS"
  else
    printf '{"config":"%s","run":"%s","error":%s}\n' "$config" "$label" \
      "$(tail -2 "$log" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(s.trim())))')" >>"$RESULTS"
    echo "   failed: $(tail -2 "$log")"
  fi
  rm -f "$RESULTS.tmp"
}
summary_line() {
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").pop());
    const f = (x) => x == null ? "—" : x;
    let s = `p50 ${f(r.latency_ms && r.latency_ms.p50)} ms, p99 ${f(r.latency_ms && r.latency_ms.p99)} ms`;
    if (r.hop && r.hop.remote_ms.samples) s += `; cross-node added p50 ${f(r.hop.added_ms.p50)} ms, p99 ${f(r.hop.added_ms.p99)} ms`;
    if (r.failover) s += `; clients back ${r.failover.clients_back}/${r.failover.clients_dropped} in ${f(r.failover.back_ms.all)} ms`;
    s += `; lost updates ${f(r.lost_updates)}; converged ${r.convergence && r.convergence.ok}`;
    console.log("   " + s);' "$RESULTS" 2>/dev/null || true
}

# One configuration: its nodes, the rooms prepared through node A before node B starts (nodes
# learn of meetings created elsewhere only with the directory signals of issue 13), then runs.
run_config() {
  local config="$1" store nodes=1 urls pids a b extra=()
  case "$config" in
    sqlite-1) store="sqlite" ;;
    pg-1) need_pg; store="$(fresh_db "bench_pg1_$DBSTAMP")" ;;
    pg-2) need_pg; store="$(fresh_db "bench_pg2_$DBSTAMP")"; nodes=2 ;;
    *) echo "unknown config $config" >&2; return 1 ;;
  esac
  wait_quiet
  echo "== $config: starting $nodes node(s) ($([[ $store == sqlite ]] && echo SQLite || echo PostgreSQL))"
  start_node "$store" "$config-A" || return 0
  a="$NODE_URL"; pids="$NODE_PID"; urls="$a"
  local s
  local scen="crowd plenary"
  [[ $nodes == 2 && $SAME_NODE == 0 ]] && has "$ONLY" crowd && scen="crowd crowd-both plenary"
  for s in $scen; do
    has "$ONLY" "${s%-both}" || continue
    "$LG" run --scenario "${s%-both}" --url "$a" --admin-token "$ADMIN" --prepare-only "$DATA/$config-$s.rooms.json" \
      $([[ $s == plenary ]] && echo "$PLEN" || echo "$CROWD") --quiet >"$LOGS/$config-$s.prepare.log" 2>&1 ||
      echo "   prepare $s failed: $(tail -1 "$LOGS/$config-$s.prepare.log")"
  done
  if [[ $nodes == 2 ]]; then
    start_node "$store" "$config-B" || { stop_nodes; return 0; }
    b="$NODE_URL"; urls="$a,$b"; pids="$pids,$NODE_PID"
    [[ $SAME_NODE == 1 ]] && extra=(--writer-nodes 0 --follower-nodes 0)
    # the writers on node A, the followers (and probes) on both: the same run measures the
    # same-node and the cross-node hop
    [[ $SAME_NODE == 0 ]] && extra=(--writer-nodes 0)
  fi
  for s in $scen; do
    has "$ONLY" "${s%-both}" || continue
    [[ -f "$DATA/$config-$s.rooms.json" ]] || continue
    wait_quiet
    echo "== $config: $s"
    local these=(${extra[@]+"${extra[@]}"})
    # crowd-both: the same crowd with the writers of each room on both nodes (one document
    # written from two nodes at once)
    [[ $s == crowd-both ]] && these=()
    # shellcheck disable=SC2046
    timeout 600 "$LG" run --scenario "${s%-both}" --url "$urls" --server-pid "$pids" --admin-token "$ADMIN" \
      --rooms-file "$DATA/$config-$s.rooms.json" $([[ $s == plenary ]] && echo "$PLEN" || echo "$CROWD") \
      ${these[@]+"${these[@]}"} --label "$config/$s" --json "$RESULTS.tmp" >"$LOGS/$config-$s.loadgen.log" 2>&1 || true
    record "$config" "$s" "$LOGS/$config-$s.loadgen.log"
    summary_line
  done
  stop_nodes
}

run_failover() {
  need_pg
  local store a b extra=()
  store="$(fresh_db "bench_fail_$DBSTAMP")"
  wait_quiet
  echo "== pg-2: a node's death (kill -9 node A a third into the window; its clients reconnect to B)"
  start_node "$store" "failover-A" || return 0
  a="$NODE_URL"; local pa="$NODE_PID"
  "$LG" run --scenario crowd --url "$a" --admin-token "$ADMIN" --prepare-only "$DATA/failover.rooms.json" $FAIL \
    --quiet >"$LOGS/failover.prepare.log" 2>&1 || { echo "   prepare failed: $(tail -1 "$LOGS/failover.prepare.log")"; stop_nodes; return 0; }
  start_node "$store" "failover-B" || { stop_nodes; return 0; }
  b="$NODE_URL"; local pb="$NODE_PID"
  # writers on both nodes, followers on both: node A's writers and followers move to B
  [[ $SAME_NODE == 1 ]] && extra=(--writer-nodes 0 --follower-nodes 0)
  # shellcheck disable=SC2086
  timeout 600 "$LG" run --scenario crowd --url "$a,$b" --server-pid "$pa,$pb" --admin-token "$ADMIN" \
    --rooms-file "$DATA/failover.rooms.json" $FAIL --kill-node 0 ${extra[@]+"${extra[@]}"} \
    --label "pg-2/failover" --json "$RESULTS.tmp" >"$LOGS/failover.loadgen.log" 2>&1 || true
  record "pg-2" "failover" "$LOGS/failover.loadgen.log"
  summary_line
  stop_nodes
}

run_store() {
  local kind url
  # SQLite with its default --durability process (no fsync per commit), SQLite with
  # --durability power (fsync every commit: what PostgreSQL's synchronous_commit=on does), and
  # PostgreSQL
  for kind in sqlite sqlite-power postgres; do
    wait_quiet
    local sargs=(--server-arg=--max-messages-per-sec=1000000)
    [[ $kind == sqlite-power ]] && sargs+=(--server-arg=--durability=power)
    if [[ $kind == postgres ]]; then
      need_pg
      url="$(fresh_db "bench_store_$DBSTAMP")"
      sargs+=("--server-arg=--store=$url")
    fi
    echo "== store: durable updates/s, one node on $kind (group commit)"
    # shellcheck disable=SC2086
    "$LG" store --server-bin "$PLENARY" "${sargs[@]}" --durable-only $STORE --data-dir "$(mktemp -d "$DATA/store-XXXX")" \
      --server-log "$LOGS/store-$kind.server.log" --label "store/$kind" --json "$RESULTS.tmp" \
      >"$LOGS/store-$kind.log" 2>&1 || true
    record "$([[ $kind == postgres ]] && echo pg-1 || echo sqlite-1)" "store" "$LOGS/store-$kind.log"
  done
  # Two nodes on one database at once, each with its own writers: the primary's commit rate is
  # shared (the sum is the cluster's durable updates/s)
  wait_quiet
  url="$(fresh_db "bench_store2_$DBSTAMP")"
  echo "== store: durable updates/s, two nodes on one PostgreSQL at once"
  local n pids=()
  for n in a b; do
    # shellcheck disable=SC2086
    "$LG" store --server-bin "$PLENARY" --server-arg=--max-messages-per-sec=1000000 "--server-arg=--store=$url" \
      --durable-only $STORE --data-dir "$(mktemp -d "$DATA/store2-XXXX")" --server-log "$LOGS/store2-$n.server.log" \
      --label "store/postgres-2nodes-$n" --json "$RESULTS.tmp.$n" >"$LOGS/store2-$n.log" 2>&1 &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || true; done
  for n in a b; do
    [[ -f "$RESULTS.tmp.$n" ]] && mv "$RESULTS.tmp.$n" "$RESULTS.tmp"
    record "pg-2" "store" "$LOGS/store2-$n.log"
  done
}

printf '{"meta":true,"started_at":"%s","commit":"%s","plenary_sha256":"%s","quick":%s,"same_node":%s,"machine":"%s"}\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  "$(sha256sum "$PLENARY" | cut -c1-16)" "$([[ $QUICK == 1 ]] && echo true || echo false)" \
  "$([[ $SAME_NODE == 1 ]] && echo true || echo false)" "$(nproc) cores, $(uname -r)" >>"$RESULTS"
echo "== results: $RESULTS (logs in $LOGS)"
T0=$SECONDS
IFS=, read -r -a CFG <<<"$CONFIGS"
if has "$ONLY" crowd || has "$ONLY" plenary; then
  for c in "${CFG[@]}"; do run_config "$c"; done
fi
has "$ONLY" failover && run_failover
has "$ONLY" store && run_store
if has "$ONLY" notify; then
  need_pg
  wait_quiet
  # shellcheck disable=SC2086
  bash bench/notify-commit.sh --url "$PG_URL" --clients 16 $NOTIFY --json "$RESULTS" || echo "   notify-commit failed"
fi
echo "== done in $((SECONDS - T0)) s"
node bench/cluster-report.cjs "$RESULTS" | tee ".bench/cluster-$STAMP.md"
