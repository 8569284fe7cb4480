#!/usr/bin/env bash
# ctest fixture: a throwaway PostgreSQL 15 cluster for the tests that run on PostgreSQL.
#   pg_fixture.sh start <state-dir>   create and start it (or reuse the one running there);
#                                     writes the admin URL to <state-dir>/url
#   pg_fixture.sh stop <state-dir>    stop it (fast) and remove its data
#   pg_fixture.sh pause <state-dir>   stop the server (fast shutdown), keep its data and port
#   pg_fixture.sh resume <state-dir>  start it again on the same port with the same data
#
# The cluster listens on 127.0.0.1 only (a free port), its unix socket lives in <state-dir>/sock,
# authentication is `trust` for local and loopback connections, fsync stays on. Run as root, the
# server runs as the `postgres` OS user (runuser) and <state-dir> is given to that user.
# Layout: <state-dir>/{data/, sock/, postgres.log, url, port, bindir, watchdog.pid, watchdog.log}.
# The admin URL is postgresql://postgres@127.0.0.1:<port>/postgres (tests create their own
# databases on it: tests/with_pg_db.sh, tests/support/test_stack.hpp).
#
# A watchdog follows the ctest process that ran `start`: if ctest goes away without running the
# `stop` fixture (killed, interrupted), the watchdog stops the cluster and removes its data.
#
# Environment:
#   PG_BINDIR            server binaries (default /usr/lib/postgresql/15/bin; need not be on PATH)
#   PG_START_TIMEOUT     seconds pg_ctl waits for the server to accept connections (default 60)
#   PG_FIXTURE_WATCH_PID pid the watchdog follows (default: the parent process when it is ctest;
#                        0: no watchdog)
set -euo pipefail

self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
BINDIR="${PG_BINDIR:-/usr/lib/postgresql/15/bin}"
START_TIMEOUT="${PG_START_TIMEOUT:-60}"
STOP_TIMEOUT=60
# Only our own URLs reach the servers; keep stray libpq settings of the caller out of it.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGSERVICEFILE PGOPTIONS \
      PGSSLMODE PGREQUIRESSL PGTARGETSESSIONATTRS 2>/dev/null || true

die() { echo "pg_fixture.sh: $*" >&2; exit 1; }
log() { echo "pg_fixture.sh: $*" >&2; }
usage() { echo "usage: $0 start|stop|pause|resume <state-dir>" >&2; exit 2; }

[[ "$START_TIMEOUT" =~ ^[0-9]+$ ]] || die "PG_START_TIMEOUT must be a number of seconds: $START_TIMEOUT"

check_binaries() {
  local b
  for b in initdb pg_ctl postgres pg_isready; do
    [[ -x "$BINDIR/$b" ]] || die "$BINDIR/$b not found: install PostgreSQL 15 (apt-get install postgresql-15, or scripts/install-deps.sh test) or set PG_BINDIR"
  done
  command -v python3 >/dev/null || die "python3 not found (used to pick a free port)"
}

psql_bin() {
  if [[ -x "$BINDIR/psql" ]]; then echo "$BINDIR/psql"
  elif command -v psql >/dev/null; then command -v psql
  else die "psql not found in $BINDIR nor on PATH (apt-get install postgresql-client-15)"; fi
}

# run_pg <program> args...: a PostgreSQL program as the cluster's owner (postgres when we are
# root: initdb and pg_ctl refuse to run as root), from inside the state dir (they need a readable
# working directory).
# Bounded by RUN_TIMEOUT seconds. fd 9 (the state dir lock) is closed: the postmaster would
# inherit it and hold the lock for its whole life.
RUN_TIMEOUT=120
run_pg() {
  local prog="$BINDIR/$1"; shift
  if (( EUID == 0 )); then
    (cd "$sd" && timeout "$RUN_TIMEOUT" "$RUNUSER" -u postgres -- "$prog" "$@") 9>&-
  else
    (cd "$sd" && timeout "$RUN_TIMEOUT" "$prog" "$@") 9>&-
  fi
}

setup_owner() {
  if (( EUID != 0 )); then return 0; fi
  RUNUSER="$(command -v runuser || true)"
  [[ -n "$RUNUSER" ]] || { [[ -x /usr/sbin/runuser ]] && RUNUSER=/usr/sbin/runuser; } \
    || die "runuser not found (util-linux)"
  id -u postgres >/dev/null 2>&1 || die "no 'postgres' OS user (it comes with the postgresql-15 package)"
  chown postgres: "$sd"
  chmod 0755 "$sd"
  "$RUNUSER" -u postgres -- test -w "$sd" -a -x "$sd" \
    || die "the postgres OS user cannot write to $sd: a parent directory is not searchable by it"
}

# A process that runs: a zombie (exited, not yet reaped: containers whose init reaps late keep
# one for seconds) does not count.
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

free_port() { python3 "$(dirname "$self")/../scripts/free-port.py"; }  # below the ephemeral range

# pid of the postmaster serving <state-dir>/data, if it runs; else fails.
postmaster_pid() {
  local pid
  [[ -f "$sd/data/postmaster.pid" ]] || return 1
  pid="$(head -n1 "$sd/data/postmaster.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  [[ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" == */postgres ]] || return 1
  echo "$pid"
}

# The running cluster answers on the port recorded in <state-dir>/url.
healthy() {
  local port
  postmaster_pid >/dev/null || return 1
  [[ -s "$sd/url" && -s "$sd/port" ]] || return 1
  port="$(cat "$sd/port")"
  timeout 10 "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 5
}

# ---------------------------------------------------------------------------------------------
# watchdog

watchdog_pid() {  # pid of this state dir's watchdog if it runs; else fails
  local pid
  [[ -f "$sd/watchdog.pid" ]] || return 1
  pid="$(cat "$sd/watchdog.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "__watchdog $sd " || return 1
  echo "$pid"
}

stop_watchdog() {
  local pid
  if pid="$(watchdog_pid)"; then kill -TERM "$pid" 2>/dev/null || true; fi
  rm -f "$sd/watchdog.pid"
}

start_watchdog() {
  local watch="${PG_FIXTURE_WATCH_PID:-}"
  if [[ -z "$watch" ]]; then
    watch=0
    [[ "$(cat "/proc/$PPID/comm" 2>/dev/null || true)" == ctest ]] && watch="$PPID"
  fi
  [[ "$watch" =~ ^[0-9]+$ ]] || die "PG_FIXTURE_WATCH_PID must be a pid: $watch"
  stop_watchdog
  (( watch != 0 )) || return 0
  alive "$watch" || die "PG_FIXTURE_WATCH_PID $watch is not a running process"
  # Detached (own session, no inherited pipes: ctest waits for a test's output to close, and no
  # lock fd: it would keep the state dir locked). It records its own pid.
  setsid bash "$self" __watchdog "$sd" "$watch" </dev/null >>"$sd/watchdog.log" 2>&1 9>&- &
  local i
  for ((i = 0; i < 50; i++)); do watchdog_pid >/dev/null && break; sleep 0.1; done
  if watchdog_pid >/dev/null; then
    log "watchdog pid $(cat "$sd/watchdog.pid") stops the cluster if pid $watch ($(cat "/proc/$watch/comm" 2>/dev/null || echo '?')) exits first"
  else  # not fatal: the tests can run; only an interrupted ctest would leave the cluster behind
    log "warning: the watchdog has not started after 5s; see $sd/watchdog.log"
  fi
}

cmd_watchdog() {
  local watch="$1"
  echo "$$" >"$sd/watchdog.pid"
  mine() { [[ "$(cat "$sd/watchdog.pid" 2>/dev/null || true)" == "$$" ]]; }
  while mine && [[ -f "$sd/data/postmaster.pid" ]]; do
    if ! alive "$watch"; then
      exec 9>"$sd/.lock"
      flock -w 120 9 || { log "watchdog: state dir lock busy; giving up"; exit 1; }
      mine || exit 0
      rm -f "$sd/watchdog.pid"
      log "watchdog: $(date -Is) pid $watch is gone without stopping the cluster; stopping it"
      stop_cluster
      exit 0
    fi
    sleep 2
  done
}

# ---------------------------------------------------------------------------------------------
# start / stop

stop_cluster() {  # stops the server of <state-dir>/data if it runs, then removes the data
  local pid i
  if pid="$(postmaster_pid)"; then
    if ! run_pg pg_ctl stop -D "$sd/data" -m fast -w -t "$STOP_TIMEOUT" -s; then
      log "fast shutdown failed; immediate shutdown"
      run_pg pg_ctl stop -D "$sd/data" -m immediate -w -t 30 -s || true
    fi
    for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      log "postmaster pid $pid still alive; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    fi
    log "postgres (pid $pid) stopped"
  fi
  rm -rf "$sd/data" "$sd/sock" "$sd/url" "$sd/port" "$sd/bindir"
}

write_conf() {  # write_conf <port>
  cat >"$sd/data/fixture.conf" <<EOF
# Written by tests/pg_fixture.sh: a throwaway test cluster, loopback only.
listen_addresses = '127.0.0.1'
port = $1
unix_socket_directories = '$sd/sock'
max_connections = 400
shared_buffers = 128MB
fsync = on
log_line_prefix = '%m [%p] %q%u@%d '
log_min_messages = warning
EOF
  chown --reference="$sd/data" "$sd/data/fixture.conf"
}

cmd_start() {
  local attempt port url
  if healthy; then
    log "postgres (pid $(postmaster_pid)) already running in $sd; reusing it"
    start_watchdog
    echo "postgres ready at $(cat "$sd/url")"
    return 0
  fi
  # Stale state: a server that does not answer on its recorded port, or leftovers of a run that
  # died. The cluster is throwaway: start from scratch.
  stop_watchdog
  if postmaster_pid >/dev/null; then log "a postgres in $sd does not answer; stopping it"; fi
  stop_cluster
  [[ -s "$sd/postgres.log" ]] && mv -f "$sd/postgres.log" "$sd/postgres.log.1"
  if (( EUID == 0 )); then
    "$RUNUSER" -u postgres -- mkdir -m 0700 "$sd/sock"
  else
    mkdir -m 0700 "$sd/sock"
  fi
  local sock_path="$sd/sock/.s.PGSQL.65535"
  (( ${#sock_path} <= 107 )) || die "state dir path too long for a unix socket in it (at most $((107 - ${#sock_path} + ${#sd})) characters): $sd"
  run_pg initdb -D "$sd/data" -U postgres --auth=trust -E UTF8 --locale=C --no-instructions \
    >"$sd/initdb.log" 2>&1 || { cat "$sd/initdb.log" >&2; die "initdb failed"; }
  echo "include 'fixture.conf'" >>"$sd/data/postgresql.conf"
  for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    write_conf "$port"
    if RUN_TIMEOUT=$((START_TIMEOUT + 15)) run_pg pg_ctl start -D "$sd/data" -l "$sd/postgres.log" -w -t "$START_TIMEOUT" -s \
         >>"$sd/pg_ctl.log" 2>&1; then
      break
    fi
    # The server may still be on its way up (timeout) or on its way down (bind failure).
    run_pg pg_ctl stop -D "$sd/data" -m immediate -w -t 30 -s >/dev/null 2>&1 || true
    if grep -q "could not bind\|Address already in use\|could not create any TCP/IP sockets" "$sd/postgres.log" 2>/dev/null \
       && (( attempt < 5 )); then
      log "port $port was taken; trying another"
      mv -f "$sd/postgres.log" "$sd/postgres.log.port-$port"
      continue
    fi
    log "postgres did not start (attempt $attempt, port $port, timeout ${START_TIMEOUT}s); last lines of $sd/postgres.log:"
    tail -n 40 "$sd/postgres.log" >&2 2>/dev/null || true
    tail -n 10 "$sd/pg_ctl.log" >&2 2>/dev/null || true
    stop_cluster
    exit 1
  done
  url="postgresql://postgres@127.0.0.1:$port/postgres"
  PGCONNECT_TIMEOUT=10 timeout 30 "$(psql_bin)" "$url" -X -q -A -t -v ON_ERROR_STOP=1 -c 'select 1' >/dev/null \
    || { tail -n 20 "$sd/postgres.log" >&2; stop_cluster; die "postgres started but $url does not answer"; }
  echo "$port" >"$sd/port"
  echo "$BINDIR" >"$sd/bindir"
  echo "$url" >"$sd/url.tmp" && mv -f "$sd/url.tmp" "$sd/url"
  start_watchdog
  log "postgres pid $(postmaster_pid) on 127.0.0.1:$port (data $sd/data)"
  echo "postgres ready at $url"
}

cmd_stop() {
  stop_watchdog
  stop_cluster
}

# A database outage for fault tests: clients see their connections dropped and refused, then the
# same server (port, data) comes back.
cmd_pause() {
  [[ -s "$sd/port" && -d "$sd/data" ]] || die "no cluster in $sd"
  run_pg pg_ctl stop -D "$sd/data" -m fast -w -t 60 -s >/dev/null 2>&1 || die "pg_ctl stop failed"
  log "postgres paused (port $(cat "$sd/port"), data kept)"
}

cmd_resume() {
  [[ -s "$sd/port" && -d "$sd/data" ]] || die "no cluster in $sd"
  healthy && { log "postgres already runs"; return 0; }
  RUN_TIMEOUT=$((START_TIMEOUT + 15)) run_pg pg_ctl start -D "$sd/data" -l "$sd/postgres.log" -w -t "$START_TIMEOUT" -s \
    >>"$sd/pg_ctl.log" 2>&1 || { tail -n 20 "$sd/postgres.log" >&2; die "postgres did not start again"; }
  log "postgres resumed on port $(cat "$sd/port")"
}

main() {
  local cmd="${1:-}" dir="${2:-}"
  [[ -n "$cmd" && -n "$dir" ]] || usage
  case "$cmd" in
    start)
      mkdir -p "$dir"
      sd="$(cd "$dir" && pwd)"
      check_binaries
      setup_owner
      ;;
    stop)
      [[ -d "$dir" ]] || return 0
      sd="$(cd "$dir" && pwd)"
      setup_owner
      ;;
    pause|resume)
      sd="$(cd "$dir" && pwd)"
      setup_owner
      ;;
    __watchdog)
      sd="$dir"
      setup_owner
      cmd_watchdog "${3:?}"
      return
      ;;
    *) usage ;;
  esac
  # One start/stop at a time per state dir (the watchdog takes the same lock).
  exec 9>"$sd/.lock"
  flock -w $((START_TIMEOUT + 120)) 9 || die "timed out waiting for the lock on $sd/.lock"
  case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    pause) cmd_pause ;;
    resume) cmd_resume ;;
  esac
}

main "$@"
