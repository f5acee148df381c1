#!/usr/bin/env bash
# One-command comparative benchmark: plenary vs y-sweet 0.9.1, @y/websocket-server 0.1.1 and
# @hocuspocus/server 3.4.x, on this machine, in one run.
#
#   bench/run.sh                 # everything (about 15-25 minutes on 2 cores)
#   bench/run.sh --quick         # smaller and shorter (a few minutes)
#   bench/run.sh --scenarios typing,crowd --targets plenary,y-sweet
#
# Options:
#   --quick                 smaller loads, 5 s windows
#   --scenarios LIST        typing,crowd,storm,crowd10k,plenary,idle,store (default: all)
#   --targets LIST          plenary,y-sweet,y-websocket,hocuspocus (default: all)
#   --runs N                repeat every (scenario, target) N times; the report uses medians
#   --no-build              use the existing target/release binaries
#   --no-install            don't install the peers (skip the targets that are missing)
#   --all-peers-crowd10k    also run crowd10k against the Node peers (slow: they fall seconds behind)
#   --no-wait-quiet         don't wait (up to 5 min per run) for other processes to leave the CPU idle
#   --loadgen-arg ARG       pass ARG to every `plenary-loadgen run` (repeatable), e.g. --lite-followers
#
# The issue-14 comparison (storm and crowd, plenary against y-sweet, alternating, twice):
#   bench/run.sh --scenarios storm,crowd --targets plenary,y-sweet --runs 2
# prints, after the per-scenario tables, "issue 14: plenary ÷ y-sweet" with every run's value,
# the ratio of the medians and the target.
#
# The peers are installed into .bench/ (ignored by git) by bench/install-peers.sh. Every server is
# started fresh on 127.0.0.1 on a free port for each scenario and stopped by PID afterwards.
# Results: one JSON line per run in .bench/results-<date>.jsonl, the summary with ratios in
# .bench/results-<date>.json, logs in .bench/logs-<date>/.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

QUICK=0
SCENARIOS="typing,crowd,storm,crowd10k,plenary,idle,store"
TARGETS="plenary,y-sweet,y-websocket,hocuspocus"
RUNS=1
BUILD=1
INSTALL=1
NODE_CROWD10K=0
WAIT_QUIET=1
LG_EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --scenarios) SCENARIOS="$2"; shift ;;
    --targets) TARGETS="$2"; shift ;;
    --runs) RUNS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --no-install) INSTALL=0 ;;
    --all-peers-crowd10k) NODE_CROWD10K=1 ;;
    --no-wait-quiet) WAIT_QUIET=0 ;;
    --loadgen-arg) LG_EXTRA+=("$2"); shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
STAMP="$(date +%Y%m%d-%H%M%S)"
mkdir -p .bench
RESULTS=".bench/results-$STAMP.jsonl"
LOGS=".bench/logs-$STAMP"
DATA=".bench/data-$STAMP"
mkdir -p "$LOGS" "$DATA"
LG="$ROOT/target/release/plenary-loadgen"
PLENARY="$ROOT/target/release/plenary"

has() { [[ ",$1," == *",$2,"* ]]; }

if [[ $BUILD == 1 ]]; then
  echo "== building plenary and plenary-loadgen (release)"
  cargo build --release -p plenary-server -p plenary-loadgen
fi
if [[ $INSTALL == 1 ]]; then
  if has "$TARGETS" y-sweet; then bash bench/install-peers.sh y-sweet; fi
  if has "$TARGETS" y-websocket || has "$TARGETS" hocuspocus; then bash bench/install-peers.sh node; fi
fi

SRV_PID=""
SRV_URL=""
ADMIN="bench-admin-token-$RANDOM$RANDOM$RANDOM"
cleanup() {
  if [[ -n "$SRV_PID" ]] && kill -0 "$SRV_PID" 2>/dev/null; then
    kill -TERM "$SRV_PID" 2>/dev/null || true
    sleep 1
    kill -KILL "$SRV_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT INT TERM

available() {
  case "$1" in
    plenary) [[ -x "$PLENARY" ]] ;;
    y-sweet) [[ -x .bench/y-sweet/bin/y-sweet ]] ;;
    y-websocket) [[ -d .bench/node/node_modules/@y/websocket-server ]] ;;
    hocuspocus) [[ -d .bench/node/node_modules/@hocuspocus/server ]] ;;
    *) return 1 ;;
  esac
}

# start_server TARGET LOGFILE -> sets SRV_PID, SRV_URL
start_server() {
  local t="$1" log="$2" dir
  dir="$(mktemp -d "$DATA/$t-XXXX")"
  : > "$log"
  case "$t" in
    plenary) "$PLENARY" serve --addr 127.0.0.1:0 --data-dir "$dir" --admin-token "$ADMIN" --no-demo >"$log" 2>&1 & ;;
    y-websocket) node bench/peers/y-websocket-server.cjs >"$log" 2>&1 & ;;
    hocuspocus) node bench/peers/hocuspocus-server.cjs >"$log" 2>&1 & ;;
    y-sweet)
      local port; port="$("$LG" free-port)"
      .bench/y-sweet/bin/y-sweet serve --host 127.0.0.1 --port "$port" "$dir" >"$log" 2>&1 &
      ;;
  esac
  SRV_PID=$!
  SRV_URL=""
  for _ in $(seq 1 300); do
    if [[ "$t" == y-sweet ]]; then
      if grep -q "Listening on ws://" "$log"; then
        SRV_URL="http://$(grep -o 'Listening on ws://[0-9.:]*' "$log" | head -1 | sed 's#Listening on ws://##')"
      fi
    else
      SRV_URL="$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's#listening on ##' || true)"
    fi
    [[ -n "$SRV_URL" ]] && break
    kill -0 "$SRV_PID" 2>/dev/null || { echo "   $t exited at start-up: $(tail -3 "$log")" >&2; SRV_PID=""; return 1; }
    sleep 0.1
  done
  [[ -n "$SRV_URL" ]] || { echo "   $t did not start" >&2; stop_server; return 1; }
}

stop_server() {
  [[ -n "$SRV_PID" ]] || return 0
  kill -TERM "$SRV_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SRV_PID" 2>/dev/null || true
  wait "$SRV_PID" 2>/dev/null || true
  SRV_PID=""
}

# busy cores over one second, from /proc/stat (all processes)
busy_cores() {
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  local busy=$(( (b[1]+b[2]+b[3]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[6]+a[7]+a[8]) ))
  awk -v b="$busy" 'BEGIN { printf "%.2f", b / 100 }'
}
# The machine is shared: wait (bounded) until nothing else is using more than 0.3 cores.
wait_quiet() {
  [[ $WAIT_QUIET == 1 ]] || return 0
  local waited=0 b
  while :; do
    b="$(busy_cores)"
    if awk -v b="$b" 'BEGIN { exit !(b < 0.3) }'; then return 0; fi
    if (( waited >= 300 )); then echo "   (machine still busy: $b cores in use by others; running anyway)"; return 0; fi
    (( waited == 0 )) && echo "   (waiting for the machine to be quiet: $b cores busy)"
    sleep 4; waited=$((waited + 5))
  done
}

scenario_args() {
  local s="$1"
  if [[ $QUICK == 1 ]]; then
    case "$s" in
      typing) echo "--scenario typing --rooms 10 --writers 5 --hz 5 --followers 100 --duration 5 --drain 15" ;;
      crowd) echo "--scenario crowd --rooms 2 --writers 2 --hz 5 --followers 1000 --duration 5 --drain 20" ;;
      crowd10k) echo "--scenario crowd --rooms 2 --writers 2 --hz 5 --followers 2500 --duration 5 --drain 20" ;;
      storm) echo "--scenario storm --rooms 10 --clients 2000 --prefill 5000" ;;
      plenary) echo "--scenario plenary --rooms 3 --writers 2 --hz 5 --followers 1000 --duration 5 --drain 15" ;;
      idle) echo "--scenario idle --rooms 50 --prefill 200 --followers 500" ;;
    esac
  else
    case "$s" in
      typing) echo "--scenario typing --rooms 10 --writers 5 --hz 5 --followers 100 --duration 20 --drain 30" ;;
      crowd) echo "--scenario crowd --rooms 2 --writers 2 --hz 5 --followers 2500 --duration 20 --drain 60" ;;
      crowd10k) echo "--scenario crowd --rooms 2 --writers 2 --hz 5 --followers 5000 --sample 10 --duration 20 --drain 60 --setup-timeout 300" ;;
      storm) echo "--scenario storm --rooms 10 --clients 5000 --prefill 5000" ;;
      plenary) echo "--scenario plenary --rooms 3 --writers 2 --hz 5 --followers 5000 --duration 20 --drain 30" ;;
      idle) echo "--scenario idle --rooms 200 --prefill 200 --followers 2000" ;;
    esac
  fi
}

IFS=, read -r -a SCN <<< "$SCENARIOS"
IFS=, read -r -a TGT <<< "$TARGETS"
# Snapshot the binary: target/ is shared, and a rebuild during the run must not mix versions.
if [[ -x "$PLENARY" ]]; then
  cp "$PLENARY" "$DATA/plenary"
  PLENARY_SRC_MTIME="$(date -u -r "$PLENARY" +%Y-%m-%dT%H:%M:%SZ)"
  PLENARY="$ROOT/$DATA/plenary"
fi
echo "== results: $RESULTS (logs in $LOGS)"
printf '{"meta":true,"started_at":"%s","commit":"%s","plenary_version":"%s","plenary_binary_mtime":"%s","plenary_sha256":"%s","quick":%s}\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  "$("$PLENARY" --version 2>/dev/null || echo missing)" "${PLENARY_SRC_MTIME:-missing}" "$(sha256sum "$PLENARY" 2>/dev/null | cut -c1-16)" \
  "$([[ $QUICK == 1 ]] && echo true || echo false)" >> "$RESULTS"
for run in $(seq 1 "$RUNS"); do
  for s in "${SCN[@]}"; do
    if [[ "$s" == store ]]; then
      has "$TARGETS" plenary && available plenary || continue
      extra=""
      [[ $QUICK == 1 ]] && extra="--histories 10,10000 --duration 3"
      # Twice: with plenary's default online compaction, and with compaction pushed out of reach,
      # to see cold-load time against an uncompacted history. The per-connection rate limit is
      # lifted: this measures the store, not the limiter.
      for variant in default no-compaction; do
        wait_quiet
        echo "== [run $run] store benchmark (plenary, compaction: $variant)"
        sargs=(--server-arg=--max-messages-per-sec=1000000)
        [[ $variant == no-compaction ]] && sargs+=(--server-arg=--compact-after=100000000)
        # shellcheck disable=SC2086
        if ! "$LG" store --server-bin "$PLENARY" "${sargs[@]}" --server-log "$LOGS/store-$variant-run$run.server.log" \
            --data-dir "$(mktemp -d "$DATA/store-XXXX")" --json "$RESULTS" --label "$variant/run$run" $extra \
            >"$LOGS/store-$variant-run$run.log" 2>&1; then
          echo "   store benchmark failed: $(tail -2 "$LOGS/store-$variant-run$run.log")"
          printf '{"scenario":"store","target":"plenary","label":"%s/run%s","error":%s}\n' "$variant" "$run" \
            "$(tail -1 "$LOGS/store-$variant-run$run.log" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(s.trim())))')" >> "$RESULTS"
        fi
      done
      continue
    fi
    for t in "${TGT[@]}"; do
      available "$t" || { echo "   ($t not installed, skipped)"; continue; }
      [[ "$s" == plenary && "$t" != plenary ]] && continue
      if [[ "$s" == crowd10k && $NODE_CROWD10K == 0 && ( "$t" == y-websocket || "$t" == hocuspocus ) ]]; then continue; fi
      log="$LOGS/$s-$t-run$run"
      wait_quiet
      echo "== [run $run] $s against $t"
      start_server "$t" "$log.server.log" || { printf '{"scenario":"%s","target":"%s","label":"run%s","error":"server did not start"}\n' "$s" "$t" "$run" >> "$RESULTS"; continue; }
      sleep 0.5
      # shellcheck disable=SC2046
      if timeout 900 "$LG" run $(scenario_args "$s") --target "$t" --url "$SRV_URL" --server-pid "$SRV_PID" \
          --admin-token "$ADMIN" --json "$RESULTS.tmp" --label "$s/run$run" ${LG_EXTRA[@]+"${LG_EXTRA[@]}"} >"$log.loadgen.log" 2>&1; then
        # tag the crowd10k variant
        sed "s/\"scenario\":\"crowd\",/\"scenario\":\"$s\",/" "$RESULTS.tmp" >> "$RESULTS"
        grep -E 'latency_ms.p99|all_synced_s|conn_sync_ms.p99|cpu_(user|sys)_(s|us_per_delivery)|cpu_us_per_delivery|rss_peak|kib_per|held|other_cores' "$log.loadgen.log" | grep -v -e '^JSON' -e 'loadgen.' | sed 's/^/   /' || true
      else
        echo "   loadgen failed: $(tail -2 "$log.loadgen.log")"
        printf '{"scenario":"%s","target":"%s","label":"run%s","error":%s}\n' "$s" "$t" "$run" \
          "$(tail -1 "$log.loadgen.log" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(s.trim())))')" >> "$RESULTS"
      fi
      rm -f "$RESULTS.tmp"
      stop_server
    done
  done
done
rm -rf "$DATA"
node bench/report.cjs "$RESULTS" ".bench/results-$STAMP.json"
