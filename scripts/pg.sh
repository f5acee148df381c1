#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (issue 13), on a free 127.0.0.1 port.
#
#   scripts/pg.sh start DIR   # install PostgreSQL if absent, make a cluster in DIR, start it,
#                             # print its URL (postgres://postgres@127.0.0.1:PORT/postgres)
#   scripts/pg.sh url DIR     # print the URL of the cluster running in DIR
#   scripts/pg.sh stop DIR    # stop it by its PID (fast shutdown, then SIGKILL past a deadline)
#                             # and remove DIR
#
# PostgreSQL comes from Debian's packages (`apt-get install postgresql`, as root) when no
# /usr/lib/postgresql/*/bin/initdb exists. initdb refuses to run as root, so as root the cluster
# belongs to the unprivileged `postgres` user (created if absent); as any other user it is
# that user's. Authentication is `trust` on 127.0.0.1 only: the cluster is for the tests and
# lives as long as they do. DIR must be absent or empty; logs go to DIR/postgres.log.
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 2; }

pg_bin() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; fi
}

install_pg() {
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed (apt-get install postgresql, as root)"
  command -v apt-get >/dev/null || die "PostgreSQL is not installed and apt-get is absent"
  echo "pg.sh: installing PostgreSQL from Debian's packages" >&2
  # No system cluster: the tests make their own.
  mkdir -p /etc/postgresql-common
  [ -f /etc/postgresql-common/createcluster.conf ] ||
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
}

# Runs a command as the cluster's owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd_start() {
  local dir="$1" bin port pid attempt
  bin="$(pg_bin)"
  if [ -z "$bin" ]; then
    install_pg
    bin="$(pg_bin)"
    [ -n "$bin" ] || die "installed PostgreSQL but found no /usr/lib/postgresql/*/bin/initdb"
  fi
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  if [ "$(id -u)" = 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
    fi
    chown postgres: "$dir"
    # The owner must reach DIR through its parents (mktemp makes 0700 folders).
    [ "$(runuser -u postgres -- test -x "$dir" && echo ok)" = ok ] ||
      die "the postgres user cannot enter $dir: put it under a world-searchable folder"
  fi
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  for attempt in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    port_free "$port" || continue
    # synchronous_commit=on and fsync=on are PostgreSQL's defaults: the tests measure the real
    # durability path. Enough connections for several servers' pools at once.
    if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=400 -c synchronous_commit=on -c fsync=on" \
      start >/dev/null 2>&1; then
      pid="$(head -n 1 "$dir/data/postmaster.pid")"
      echo "$pid" >"$dir/pid"
      echo "postgres://postgres@127.0.0.1:$port/postgres" >"$dir/url"
      cat "$dir/url"
      return 0
    fi
    # Most likely the port was taken between the check and the bind: try another.
    tail -n 5 "$dir/postgres.log" >&2 2>/dev/null || true
  done
  die "could not start PostgreSQL (see $dir/postgres.log)"
}

cmd_url() {
  [ -f "$1/url" ] || die "no cluster in $1"
  cat "$1/url"
}

cmd_stop() {
  local dir="$1" pid i
  if [ -f "$dir/pid" ]; then
    pid="$(cat "$dir/pid")"
    # SIGINT: PostgreSQL's fast shutdown (roll back open transactions, checkpoint, exit).
    kill -INT "$pid" 2>/dev/null || true
    for i in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "pg.sh: PostgreSQL $pid did not stop in 30 s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$dir"
}

[ $# -eq 2 ] || die "usage: pg.sh start|url|stop DIR"
case "$1" in
  start) cmd_start "$2" ;;
  url) cmd_url "$2" ;;
  stop) cmd_stop "$2" ;;
  *) die "usage: pg.sh start|url|stop DIR" ;;
esac
