#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for CreatorFlow's PostgreSQL tests and
# benchmarks: a private directory, a private socket directory, a random
# loopback port, trust authentication (loopback only), one database.
#
#   eval "$(scripts/pg-test-cluster.sh start)"   # exports CREATORFLOW_TEST_PG and CREATORFLOW_PG_DIR
#   cargo test --test store_conformance
#   scripts/pg-test-cluster.sh stop "$CREATORFLOW_PG_DIR"
#
#   scripts/pg-test-cluster.sh run CMD ARGS...   # start, run CMD with the variable set, stop
#
#   scripts/pg-test-cluster.sh halt DIR     # stops the server (-m fast), keeps the cluster
#   scripts/pg-test-cluster.sh resume DIR   # starts it again, same port and data
#
# `halt` and `resume` are for tests of a store that goes away (PostgreSQL
# restarted under load): `halt` is `pg_ctl -m fast stop`, which ends every
# session with "terminating connection due to administrator command".
#
# `start` prints only `export` lines on stdout (progress goes to stderr), and
# fails loudly (non-zero, with the server log) if the cluster cannot start.
# Run as root, the cluster runs as the `postgres` OS user (initdb refuses
# root); run as anyone else, it runs as that user. The binaries come from
# $PG_BIN (default /usr/lib/postgresql/15/bin); if they are missing and we
# are root, Debian's postgresql-15 package is installed first (without its
# default cluster).
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DB_NAME=${CREATORFLOW_PG_DB:-creatorflow}
MARKER=.creatorflow-pg-cluster

say() { printf 'pg-test-cluster: %s\n' "$*" >&2; }
die() {
  say "ERROR: $*"
  exit 1
}

# Runs a command as the cluster's OS user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

install_if_missing() {
  [ -x "$PG_BIN/initdb" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    die "no PostgreSQL binaries at $PG_BIN (install postgresql-15, or set PG_BIN)"
  fi
  say "installing postgresql-15 (no default cluster)"
  mkdir -p /etc/postgresql-common/createcluster.d
  echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/creatorflow.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends postgresql-15 >&2 ||
    die "apt-get install postgresql-15 failed"
  [ -x "$PG_BIN/initdb" ] || die "postgresql-15 installed but $PG_BIN/initdb is missing"
}

start() {
  install_if_missing
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "no \`postgres\` OS user to run the cluster as"
  fi
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/creatorflow-pg.XXXXXX")
  touch "$dir/$MARKER"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$dir"
  fi
  chmod 700 "$dir"
  say "initdb in $dir/data"
  if ! as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
    --no-sync >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    die "initdb failed"
  fi
  local port started=""
  for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 40000))
    if pg_start "$dir" "$port"; then
      started=yes
      break
    fi
    say "could not start on port $port, trying another"
  done
  if [ -z "$started" ]; then
    cat "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null || true
    rm -rf "$dir"
    die "the PostgreSQL cluster did not start"
  fi
  if ! "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB_NAME" >&2; then
    stop "$dir"
    die "createdb $DB_NAME failed"
  fi
  local url="postgres://postgres@127.0.0.1:$port/$DB_NAME"
  say "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') up at $url (dir $dir)"
  printf 'export CREATORFLOW_TEST_PG=%q\n' "$url"
  printf 'export CREATORFLOW_PG_DIR=%q\n' "$dir"
}

# Starts the server of the cluster in $1 on port $2 (and remembers the port
# for `resume`).
pg_start() {
  local dir=$1 port=$2
  echo "$port" >"$dir/port"
  # -l: the server must not hold our stdout (`eval "$(… start)"` would hang).
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-k $dir -p $port -c listen_addresses=127.0.0.1" start >"$dir/pg_ctl.log" 2>&1
}

# The directory of a cluster this script started, else an error.
cluster_dir() {
  local dir=${1:-}
  [ -n "$dir" ] || die "usage: $0 $2 DIR"
  [ -f "$dir/$MARKER" ] || die "$dir is not a cluster this script started"
  printf '%s' "$dir"
}

halt() {
  local dir
  dir=$(cluster_dir "${1:-}" halt)
  as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >"$dir/pg_ctl.log" 2>&1 ||
    die "pg_ctl stop failed: $(cat "$dir/pg_ctl.log")"
  say "halted the server of $dir (the cluster is kept)"
}

resume() {
  local dir
  dir=$(cluster_dir "${1:-}" resume)
  [ -f "$dir/port" ] || die "$dir has no recorded port"
  if ! pg_start "$dir" "$(cat "$dir/port")"; then
    cat "$dir/pg_ctl.log" >&2 2>/dev/null || true
    tail -n 20 "$dir/server.log" >&2 2>/dev/null || true
    die "the PostgreSQL server of $dir did not start again"
  fi
  say "resumed the server of $dir on port $(cat "$dir/port")"
}

stop() {
  local dir=${1:-}
  [ -n "$dir" ] || die "usage: $0 stop DIR"
  [ -f "$dir/$MARKER" ] || die "$dir is not a cluster this script started"
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 ||
      say "pg_ctl stop failed (the server may already be down)"
  fi
  rm -rf "$dir"
  say "stopped and removed $dir"
}

run() {
  [ $# -gt 0 ] || die "usage: $0 run CMD [ARGS...]"
  local exports
  exports=$(start)
  eval "$exports"
  # shellcheck disable=SC2064 # expand now: the directory is known
  trap "'$0' stop '$CREATORFLOW_PG_DIR'" EXIT
  "$@"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
halt) halt "${2:-}" ;;
resume) resume "${2:-}" ;;
run)
  shift
  run "$@"
  ;;
*)
  echo "usage: $0 start | stop DIR | halt DIR | resume DIR | run CMD [ARGS...]" >&2
  exit 2
  ;;
esac
