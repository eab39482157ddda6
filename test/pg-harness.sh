#!/usr/bin/env bash
# pg-harness.sh - a private PostgreSQL for the tests: started from Debian's
# binaries into a temporary directory, listening on 127.0.0.1 (and a unix
# socket inside that directory) on a free port, stopped and removed after.
# Shared by the C unit tests (ctest test_store_pg) and the node helper
# test/e2e/pg-harness.mjs.
#
#   pg-harness.sh start            start one; prints shell assignments:
#                                  HB_PG_DIR=... HB_PG_PORT=... HB_PG_URI=...
#   pg-harness.sh stop DIR         stop it (-m immediate) and remove DIR
#   pg-harness.sh pause DIR        stop the server, keep its data and port
#   pg-harness.sh resume DIR       start it again on the same port
#   pg-harness.sh createdb DIR NAME   a fresh database owned by the test role;
#                                  prints its URI
#   pg-harness.sh run CMD [ARG...] start, run CMD with HB_PG_DIR, HB_PG_URI
#                                  and HB_PG_HARNESS exported, stop; exits
#                                  with CMD's status (77 = skipped when no
#                                  PostgreSQL is installed)
#
# HB_PG_URI names a role that is not a superuser (as a deployment's would be)
# and may create databases (one per test); it has a password, so the URI has
# one. It sets connect_timeout=10: the tests assert no timing, and a machine
# shared by many jobs can take more than hubbub's default 2 s to fork a
# server process. initdb refuses to run as root: as root the server runs as the
# `postgres` user (Debian's package creates it), else as `nobody`.
# Every wait is bounded; nothing is left behind.
set -euo pipefail

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
START_TIMEOUT_S=${HB_PG_START_TIMEOUT_S:-30}
STOP_TIMEOUT_S=10
CONNECT_TIMEOUT_S=10
ROLE=hubbub
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "pg-harness: $*" >&2; exit 1; }

have_pg() { [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ]; }

# The user the server runs as, and how to run a command as that user.
owner() {
  if [ "$(id -u)" -ne 0 ]; then id -un; return; fi
  if getent passwd postgres >/dev/null; then echo postgres; else echo nobody; fi
}
as_owner() {
  if [ "$(id -u)" -ne 0 ]; then "$@"; return; fi
  runuser -u "$(owner)" -- "$@"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# psql over the unix socket in DIR as the bootstrap superuser.
psql_admin() {
  local dir=$1
  shift
  as_owner "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$(cat "$dir/port")" -U postgres -d postgres "$@"
}

server_start() {
  local dir=$1 port
  port=$(cat "$dir/port")
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t "$START_TIMEOUT_S" -s \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/sock -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
    start >/dev/null
}

server_stop() {
  local dir=$1
  [ -f "$dir/data/postmaster.pid" ] || return 0
  if ! as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -w -t "$STOP_TIMEOUT_S" -s -m immediate stop >/dev/null 2>&1; then
    # Only this cluster's postmaster, by the pid it wrote.
    local pid
    pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  fi
}

# A pause is an outage the client sees (its connections are cut), but the
# data stays: a fast stop, which writes out the WAL. An immediate stop would
# lose the last commits: the server runs with synchronous_commit=off.
server_pause() {
  local dir=$1
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -w -t "$STOP_TIMEOUT_S" -s -m fast stop >/dev/null 2>&1 || server_stop "$dir"
}

cmd_start() {
  have_pg || die "PostgreSQL is not installed (scripts/install-deps.sh all installs it)"
  local dir user pass port tries=0
  dir=$(mktemp -d /tmp/hb_pg.XXXXXX)
  user=$(owner)
  chmod 700 "$dir"
  mkdir -p "$dir/sock"
  pass=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  (umask 077; printf '%s\n' "$pass" >"$dir/password")
  [ "$(id -u)" -ne 0 ] || chown -R "$user" "$dir"
  if ! as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust --auth-host=scram-sha-256 \
       -E UTF8 --locale=C.UTF-8 --no-instructions >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    die "initdb failed"
  fi
  # A free port can be taken between the probe and the bind: retry.
  until
    port=$(free_port)
    echo "$port" >"$dir/port"
    server_start "$dir" 2>>"$dir/start.err"
  do
    tries=$((tries + 1))
    if [ $tries -ge 5 ]; then
      tail -n 20 "$dir/server.log" >&2 2>/dev/null || true
      server_stop "$dir"
      rm -rf "$dir"
      die "the server did not start"
    fi
  done
  psql_admin "$dir" -c "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$pass'" \
    -c "CREATE DATABASE $ROLE OWNER $ROLE" >/dev/null
  echo "HB_PG_DIR=$dir"
  echo "HB_PG_PORT=$port"
  echo "HB_PG_URI=postgresql://$ROLE:$pass@127.0.0.1:$port/$ROLE?connect_timeout=$CONNECT_TIMEOUT_S"
}

check_dir() { [ -n "${1:-}" ] && [ -f "$1/port" ] && [ -d "$1/data" ] || die "'${1:-}' is not a pg-harness directory"; }

cmd_stop() {
  check_dir "${1:-}"
  server_stop "$1"
  rm -rf "$1"
}

cmd_createdb() {
  check_dir "${1:-}"
  local dir=$1 name=${2:-}
  [[ $name =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "database name '$name' must be [a-z_][a-z0-9_]*"
  psql_admin "$dir" -c "CREATE DATABASE $name OWNER $ROLE" >/dev/null
  echo "postgresql://$ROLE:$(cat "$dir/password")@127.0.0.1:$(cat "$dir/port")/$name?connect_timeout=$CONNECT_TIMEOUT_S"
}

cmd_run() {
  [ $# -gt 0 ] || die "run needs a command"
  if ! have_pg; then
    echo "pg-harness: PostgreSQL is not installed: skipped (scripts/install-deps.sh all installs it)" >&2
    exit 77
  fi
  local vars rc=0
  vars=$(cmd_start)
  eval "$vars"
  export HB_PG_DIR HB_PG_PORT HB_PG_URI
  export HB_PG_HARNESS="$here/pg-harness.sh"
  # The server goes whatever happens to the command (a signal included).
  trap 'server_stop "$HB_PG_DIR"; rm -rf "$HB_PG_DIR"' EXIT
  "$@" || rc=$?
  exit $rc
}

case "${1:-}" in
  start) cmd_start ;;
  stop) shift; cmd_stop "$@" ;;
  pause) check_dir "${2:-}"; server_pause "$2"; rm -f "$2/data/postmaster.pid" ;;
  resume) check_dir "${2:-}"; server_start "$2" ;;
  createdb) shift; cmd_createdb "$@" ;;
  run) shift; cmd_run "$@" ;;
  *) die "usage: pg-harness.sh start | stop DIR | pause DIR | resume DIR | createdb DIR NAME | run CMD..." ;;
esac
