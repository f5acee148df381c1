#!/usr/bin/env bash
# Browser tests of the web client, run from anywhere:
#   web-client/e2e/run.sh
# 1. installs the exact npm dependencies (npm ci),
# 2. builds the client into a temporary folder and checks that the committed web-client/dist is
#    byte-identical to it (the server embeds dist/ at compile time, so it must be current),
# 3. runs the browser tests (node's test runner, playwright-core driving Debian's chromium) against
#    the server binary $PLENARY_BIN (default: <repo>/target/release/plenary).
# Exits non-zero on any failure. Screenshots go to <repo>/test-output/screenshots/.
set -euo pipefail
WC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO="$(cd "$WC/.." && pwd)"
cd "$WC"
export PLENARY_BIN="${PLENARY_BIN:-$REPO/target/release/plenary}"

echo "== web-client: npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "== web-client: type check and fresh build"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
npx tsc --noEmit
npx vite build --logLevel warn --outDir "$TMP/dist" --emptyOutDir
node scripts/sizes.mjs "$TMP/dist"

echo "== web-client: committed dist/ matches the fresh build"
if ! diff -r -q "$WC/dist" "$TMP/dist"; then
  echo "ERROR: web-client/dist is not the build of the current sources." >&2
  echo "       Run 'npm run build' in web-client/, commit web-client/dist, and rebuild the server" >&2
  echo "       (cargo build --release) so that it embeds the new files." >&2
  exit 1
fi

if [ ! -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ]; then
  echo "== installing Debian's chromium"
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "ERROR: ${CHROMIUM_BIN:-/usr/bin/chromium} is missing (apt-get install chromium)" >&2
    exit 1
  fi
fi
if [ ! -x "$PLENARY_BIN" ]; then
  echo "ERROR: server binary $PLENARY_BIN not found: run 'cargo build --release' first (or set PLENARY_BIN)" >&2
  exit 1
fi

echo "== web-client: browser tests against $PLENARY_BIN"
mkdir -p "$REPO/test-output/screenshots"
node --test --test-concurrency=1 e2e/
