#!/usr/bin/env bash
# The one test command (README): sets up what it needs and runs every test.
#
#   scripts/test.sh
#
# 1. Rust: release build of the workspace (server, protocol, load generator), then unit and
#    integration tests (`cargo test --release`: one build profile for everything).
# 2. Node interop: stock `yjs` + `y-websocket` clients against the real binary (tests/interop).
# 3. Browser: the web client in Debian's chromium driven by playwright-core (web-client/e2e),
#    installing chromium from Debian's packages if absent, and checking that the committed
#    web-client/dist is the build of the current sources.
# 4. A short, bounded load-generator run against the real binary (the benchmark's smoke test).
# 5. A bounded fuzzing campaign (60 s) of the update validator with cargo-fuzz (FUZZING.md).
# PostgreSQL (scripts/pg.sh: installed from Debian's packages when absent) runs a throwaway
# cluster on a free loopback port for the stages after the build; its URL is PLENARY_TEST_PG_URL.
# Debian packages the tests use (poppler-utils for the PDF export checks, chromium for the
# browser tests) are installed with apt-get when absent.
# Exits non-zero on the first failing stage and prints a closing "N passed, N failed" line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR=never

stage() { printf '\n=== %s ===\n' "$*"; }
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
stages=0
# Counts the tests that the runners report (cargo: "test result: ok. N passed; M failed",
# node: "# pass N" / "# fail M") across all stages, for the closing line.
count() {
  local p f
  p=$(grep -hoE '^test result: [a-zA-Z]+\. [0-9]+ passed' "$LOG" | awk '{s+=$4} END {print s+0}')
  p=$((p + $(grep -hoE '^# pass [0-9]+' "$LOG" | awk '{s+=$3} END {print s+0}')))
  f=$(grep -hoE '[0-9]+ failed;' "$LOG" | awk '{s+=$1} END {print s+0}')
  f=$((f + $(grep -hoE '^# fail [0-9]+' "$LOG" | awk '{s+=$3} END {print s+0}')))
  echo "$p passed, $f failed"
}
run_stage() {
  local name="$1"; shift
  stage "$name"
  if "$@" 2>&1 | tee -a "$LOG"; then
    stages=$((stages + 1))
  else
    echo "stage failed: $name" >&2
    count
    exit 1
  fi
}

command -v cargo >/dev/null || { echo "cargo is required" >&2; exit 2; }
command -v node >/dev/null || { echo "node (>= 20) and npm are required" >&2; exit 2; }

# Debian packages the tests need, installed when absent (as root, as on CI).
need_pkgs=()
command -v pdftotext >/dev/null || need_pkgs+=(poppler-utils)
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    stage "apt-get install ${need_pkgs[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  else
    echo "missing Debian packages: ${need_pkgs[*]} (apt-get install them)" >&2
    exit 2
  fi
fi

run_stage "cargo build --release" cargo build --release --workspace --locked
# A throwaway PostgreSQL cluster for the store suite and the PostgreSQL interop stage (issue 13),
# stopped by PID on exit. PLENARY_REQUIRE_PG=1: the suites fail rather than skip without it.
PG_DIR="$(mktemp -d)"
trap 'bash "$ROOT/scripts/pg.sh" stop "$PG_DIR" >/dev/null 2>&1 || true; rm -f "$LOG"' EXIT
stage "PostgreSQL (scripts/pg.sh)"
PLENARY_TEST_PG_URL="$(bash scripts/pg.sh start "$PG_DIR")"
export PLENARY_TEST_PG_URL PLENARY_REQUIRE_PG=1
echo "PostgreSQL at $PLENARY_TEST_PG_URL"
run_stage "cargo test (unit + integration)" cargo test --release --workspace --locked
export PLENARY_BIN="$ROOT/target/release/plenary"
run_stage "Node interop (yjs + y-websocket)" bash tests/interop/run.sh --all
run_stage "Node interop on PostgreSQL (sync, durability, manage)" env PLENARY_TEST_STORE="$PLENARY_TEST_PG_URL" \
  bash tests/interop/run.sh tests/interop/sync.test.mjs tests/interop/durability.test.mjs tests/interop/manage.test.mjs
run_stage "browser (chromium + playwright-core)" bash web-client/e2e/run.sh
run_stage "load generator smoke" bash bench/smoke.sh
run_stage "fuzz: update validator (60 s)" bash protocol/fuzz/run.sh validate_update 60
echo
echo "all $stages stages passed"
count
