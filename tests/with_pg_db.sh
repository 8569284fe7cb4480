#!/usr/bin/env bash
# Runs a command against a fresh PostgreSQL database of the test cluster (tests/pg_fixture.sh):
#   AGENTLANCER_TEST_PG_STATE=<state-dir> with_pg_db.sh CMD ARGS...
# Creates a database with a random name on the cluster whose admin URL is in <state-dir>/url,
# exports STORAGE_URL=postgresql://postgres@127.0.0.1:<port>/<name> (every agentlancer process
# the command starts picks it up), runs the command, drops the database (WITH (FORCE)) whatever
# happens, and exits with the command's status.
set -euo pipefail

die() { echo "with_pg_db.sh: $*" >&2; exit 2; }
[[ $# -gt 0 ]] || die "usage: AGENTLANCER_TEST_PG_STATE=<state-dir> $0 CMD ARGS..."
state="${AGENTLANCER_TEST_PG_STATE:-}"
[[ -n "$state" ]] || die "AGENTLANCER_TEST_PG_STATE is not set (ctest sets it and starts PostgreSQL: tests/pg_fixture.sh)"
[[ -s "$state/url" ]] || die "no admin URL in $state/url: is the postgres fixture running? (bash tests/pg_fixture.sh start $state)"
admin="$(head -n1 "$state/url")"
[[ "$admin" =~ ^postgres(ql)?://[^/?]+/[^/?]*$ ]] || die "unexpected admin URL in $state/url: $admin"

# Only our own URLs reach the server; keep stray libpq settings of the caller out of it.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGSERVICEFILE PGOPTIONS \
      PGSSLMODE PGREQUIRESSL PGTARGETSESSIONATTRS 2>/dev/null || true
bindir="$(cat "$state/bindir" 2>/dev/null || echo /usr/lib/postgresql/15/bin)"
if [[ -x "$bindir/psql" ]]; then psql="$bindir/psql"
elif command -v psql >/dev/null; then psql="$(command -v psql)"
else die "psql not found in $bindir nor on PATH"; fi

admin_sql() {  # bounded: a server that does not answer fails the test instead of hanging it
  PGCONNECT_TIMEOUT=10 timeout 60 "$psql" "$admin" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"
}

name="w_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
admin_sql "CREATE DATABASE \"$name\"" >/dev/null || die "could not create database $name on $admin"

child=""
drop() {
  admin_sql "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null \
    || echo "with_pg_db.sh: warning: could not drop database $name" >&2
}
forward() {  # ctest (timeout) or a user stops us: stop the command too, then clean up on EXIT
  [[ -n "$child" ]] && kill -TERM "$child" 2>/dev/null || true
}
trap drop EXIT
trap forward TERM INT HUP

export STORAGE_URL="${admin%/*}/$name"
echo "with_pg_db.sh: STORAGE_URL=$STORAGE_URL" >&2
# In the background so that a signal to this script reaches the command (a foreground child
# would keep running while bash waits for it).
"$@" &
child=$!
status=0
while :; do
  wait "$child" && status=0 || status=$?
  # wait returns early (status > 128) when a trapped signal arrives: wait again until it is gone.
  kill -0 "$child" 2>/dev/null || break
done
exit "$status"
