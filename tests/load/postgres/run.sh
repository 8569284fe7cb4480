#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup is reached through trap
# PostgreSQL benchmark driver: agentlancer on PostgreSQL beside PostgreSQL's own ceiling, measured
# in the same run on the same throwaway cluster (tests/pg_fixture.sh):
#   pgbench -N (simple update, durable)  vs  job-create (POST /api/agents/jobs: a job + its event)
#   pgbench -S (select only)             vs  job-get    (authenticated GET /api/agents/jobs/{id})
# with the same client count. The agentlancer rates are the pgbench figures times RATIO (open
# model: loadgen asks for that rate and reports what it achieved and the latencies).
#
# It reports; it never asserts on timing. Exit status: 0 when every planned measurement ran, 1 when
# something could not run, 2 on bad usage.
#
# Knobs (environment):
#   AGENTLANCER_BIN  server binary (default: the release build)
#   CLIENTS=8        pgbench clients (= storage.pool_size of the server)
#   SCALE=10         pgbench scale factor
#   PGBENCH_TIME=20  seconds of each pgbench run
#   RATIO=0.5        agentlancer rate = RATIO x the pgbench figure
#   DURATION=20s     each agentlancer measurement; WARMUP=2s before it
#   JOBS=1000        jobs that job-get reads
#   READ_CACHE=off   storage.read_cache of the server (off: every GET reads PostgreSQL)
#   CONNS=256 MAX_INFLIGHT=10000 PAIRS=20 CLIENT=fast READY_TIMEOUT=60s OUT_DIR KEEP_WORK GO
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

CLIENTS=${CLIENTS:-8}
SCALE=${SCALE:-10}
PGBENCH_TIME=${PGBENCH_TIME:-20}
RATIO=${RATIO:-0.5}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-2s}
JOBS=${JOBS:-1000}
READ_CACHE=${READ_CACHE:-off}
CONNS=${CONNS:-256}
MAX_INFLIGHT=${MAX_INFLIGHT:-10000}
PAIRS=${PAIRS:-20}
CLIENT=${CLIENT:-fast}
READY_TIMEOUT=${READY_TIMEOUT:-60s}
SERVER_ARGS=${SERVER_ARGS---http.access_log false}
DATA_DIR_FLAG=--data_dir

bench_init agentlancer-bench-pg
pg_state="$work/pg"
chmod 755 "$work"  # the server runs as the postgres OS user when we are root: it must reach $pg_state
bench_cleanup_hook() { bash "$repo/tests/pg_fixture.sh" stop "$pg_state" >/dev/null 2>&1; }

build_loadgen
log "PostgreSQL (tests/pg_fixture.sh)"
if ! PG_FIXTURE_WATCH_PID=0 bash "$repo/tests/pg_fixture.sh" start "$pg_state" >"$OUT_DIR/pg_fixture.log" 2>&1; then
    problem "PostgreSQL did not start"
    tail -20 "$OUT_DIR/pg_fixture.log"
    exit 1
fi
admin=$(cat "$pg_state/url")
bindir=$(cat "$pg_state/bindir" 2>/dev/null || echo /usr/lib/postgresql/15/bin)
base=${admin%/*}
psql_admin() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$admin" "$@"; }
psql_admin -c "CREATE DATABASE pgbench" -c "CREATE DATABASE agentlancer" || { problem "cannot create databases"; exit 1; }
pg_settings=$(psql_admin -At -c "SELECT string_agg(name || '=' || setting, ' ') FROM pg_settings WHERE name IN ('fsync','synchronous_commit','shared_buffers','max_connections')")

cat <<INFO
results:   $OUT_DIR
machine:   $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)
postgres:  $("$bindir/postgres" --version) ($pg_settings)
pgbench:   $CLIENTS clients, scale $SCALE, ${PGBENCH_TIME}s per run
agentlancer: rate = $RATIO x pgbench; $DURATION per run after $WARMUP warm-up; storage.read_cache=$READ_CACHE
INFO

# pgbench_tps MODE: runs pgbench -MODE, tees its report, prints the tps.
pgbench_tps() {
    local out="$OUT_DIR/pgbench$1.txt"
    run_child "$bindir/pgbench" "$1" -c "$CLIENTS" -j 2 -T "$PGBENCH_TIME" -M prepared "$base/pgbench" >"$out" 2>&1 ||
        { problem "pgbench $1 failed (see $out)"; echo 0; return; }
    grep -E "latency average|tps" "$out" >&3
    awk '/^tps = / { print int($3); exit }' "$out"
}

log "pgbench -i -s $SCALE"
run_child "$bindir/pgbench" -i -q -s "$SCALE" "$base/pgbench" >"$OUT_DIR/pgbench-init.txt" 2>&1 || problem "pgbench -i failed"
log "pgbench -N (durable simple update)"
tps_n=$(pgbench_tps -N)
log "pgbench -S (select only)"
tps_s=$(pgbench_tps -S)
echo "pgbench: -N $tps_n tps, -S $tps_s tps"

rate_w=$(awk -v t="$tps_n" -v r="$RATIO" 'BEGIN { v = int(t * r); print (v < 1 ? 1 : v) }')
rate_r=$(awk -v t="$tps_s" -v r="$RATIO" 'BEGIN { v = int(t * r); print (v < 1 ? 1 : v) }')
common=(-warmup "$WARMUP" -conns "$CONNS" -max-inflight "$MAX_INFLIGHT" -client "$CLIENT")

log "agentlancer on PostgreSQL: $AGENTLANCER_BIN"
if start_agentlancer --storage.url "$base/agentlancer" --storage.pool_size "$CLIENTS" --storage.read_cache "$READ_CACHE"; then
    log "job-create: $rate_w req/s for $DURATION"
    run_lg server-create -scenario job-create -label agentlancer -url "$api" -rate "$rate_w" -duration "$DURATION" -pairs "$PAIRS" "${common[@]}" ||
        problem "job-create did not run"
    log "job-get: $rate_r req/s for $DURATION"
    run_lg server-get -scenario job-get -label agentlancer -url "$api" -rate "$rate_r" -duration "$DURATION" -jobs "$JOBS" -setup-phase created "${common[@]}" ||
        problem "job-get did not run"
    kill -0 "$server_pid" 2>/dev/null || problem "agentlancer exited during the benchmark; see $OUT_DIR/server.log"
fi

log "summary (agentlancer beside PostgreSQL's own ceiling, same cluster, same run)"
summary() {  # NAME PGBENCH-TPS LABEL
    local json="$OUT_DIR/server-$1.json"
    [ -s "$json" ] || { echo "$3: not measured"; return; }
    python3 - "$json" "$2" "$3" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().splitlines()[-1])
o = r["overall"]
tps = float(sys.argv[2])
ok = o["ok_per_sec"]
print(f"{sys.argv[3]}: asked {r['rate_target']:.0f}/s, achieved {ok:.0f}/s 2xx "
      f"({ok / tps:.2f} x pgbench {tps:.0f} tps), p50 {o['p50_ms']:.1f} ms, p99 {o['p99_ms']:.1f} ms, "
      f"non-2xx {o['non_2xx']}, errors {o['errors']}, dropped {r['dropped']}")
PY
}
summary create "$tps_n" "job-create vs pgbench -N"
summary get "$tps_s" "job-get    vs pgbench -S"
echo "raw results: $OUT_DIR"
bench_exit
