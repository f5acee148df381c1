#!/usr/bin/env bash
# Runs the Node.js interop suite against the real server binary.
#
#   bash tests/interop/run.sh              # the foundation suite (issue 2): every *.test.mjs but plenary
#   bash tests/interop/run.sh --plenary    # only the plenary suite (issue 3)
#   bash tests/interop/run.sh --all        # both
#   bash tests/interop/run.sh --cluster    # only the several-nodes suite (cluster*.test.mjs, issue 13;
#                                          # needs PLENARY_TEST_PG_URL, skipped without it)
#   bash tests/interop/run.sh FILE...      # the given test files
#
# Environment:
#   PLENARY_BIN             server binary (default: <repo>/target/release/plenary; build it first with
#                           `cargo build --release -p plenary-server`)
#   PLENARY_TEST_TIMEOUT    per-test timeout in ms (default 120000)
#   PLENARY_TEST_CONCURRENCY  test files run in parallel (default 1; each file has its own servers on port 0)
#   PLENARY_TEST_SLOWDOWN   multiplies every wait deadline (default 1)
#   PLENARY_KEEP_DATA=1     keep the servers' temp data dirs
# Exits non-zero when any test fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tests_dir="$(dirname "$here")"
repo="$(dirname "$tests_dir")"

command -v node >/dev/null || { echo "run.sh: node (>= 20) is required" >&2; exit 2; }
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "run.sh: node >= 20 is required (found $(node --version))" >&2
  exit 2
fi

# npm dependencies, from the lock file
stamp="$tests_dir/node_modules/.package-lock.json"
if [ ! -d "$tests_dir/node_modules" ] || [ ! -f "$stamp" ] || [ "$tests_dir/package-lock.json" -nt "$stamp" ]; then
  (cd "$tests_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

bin="${PLENARY_BIN:-$repo/target/release/plenary}"
if [ ! -x "$bin" ]; then
  echo "run.sh: server binary $bin not found; build it with: cargo build --release -p plenary-server" >&2
  exit 2
fi
export PLENARY_BIN="$bin"

files=()
case "${1:-}" in
  --plenary) files=("$here/plenary.test.mjs") ;;
  --all) files=("$here"/*.test.mjs) ;;
  --cluster) files=("$here"/cluster*.test.mjs) ;;
  "")
    for f in "$here"/*.test.mjs; do
      [ "$(basename "$f")" = "plenary.test.mjs" ] || files+=("$f")
    done
    ;;
  *) files=("$@") ;;
esac

cd "$repo"
exec node --test \
  --test-concurrency="${PLENARY_TEST_CONCURRENCY:-1}" \
  --test-timeout="${PLENARY_TEST_TIMEOUT:-120000}" \
  "${files[@]}"
