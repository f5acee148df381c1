#!/usr/bin/env bash
# Installs the peer servers compared by bench/run.sh into .bench/ (ignored by git).
# Idempotent: skips what is already installed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="$ROOT/.bench"
mkdir -p "$BENCH/node"
want="${1:-all}"

if [[ "$want" == all || "$want" == y-sweet ]]; then
  if [[ ! -x "$BENCH/y-sweet/bin/y-sweet" ]]; then
    echo "installing y-sweet 0.9.1 into .bench/y-sweet (cargo install, takes a while)" >&2
    cargo install y-sweet --version 0.9.1 --locked --root "$BENCH/y-sweet" \
      || cargo install y-sweet --version 0.9.1 --root "$BENCH/y-sweet"
  fi
fi

if [[ "$want" == all || "$want" == node ]]; then
  if [[ ! -d "$BENCH/node/node_modules/@y/websocket-server" || ! -d "$BENCH/node/node_modules/@hocuspocus/server" ]]; then
    echo "installing @y/websocket-server@0.1.1 and @hocuspocus/server@3.4 into .bench/node" >&2
    cd "$BENCH/node"
    [[ -f package.json ]] || echo '{"name":"plenary-bench-peers","private":true}' > package.json
    npm install --no-audit --no-fund --loglevel=error @y/websocket-server@0.1.1 "@hocuspocus/server@~3.4.0" yjs@13
  fi
fi
