#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup/on_signal are reached through trap
# Job-service benchmark driver (open model). Builds tests/load/loadgen,
# measures the nginx `return 204` baseline at the same request rates, starts
# agentlancer on a free port with a fresh data dir, runs provider-flow and
# job-get, and prints the results side by side with the baseline.
#
# It reports; it never asserts on timing. Exit status: 0 when every planned
# measurement ran, 1 when something could not run (build failure, server did
# not become ready, scenario setup failed), 2 on bad usage.
#
# Knobs (environment):
#   AGENTLANCER_BIN  server binary (default: the first executable of
#                    <repo>/build/release/agentlancer, <repo>/build/release/app/agentlancer)
#   SERVER_ARGS      extra server options (default "--http.access_log false",
#                    like the nginx baseline's access_log off; "" keeps the default)
#   DATA_DIR_FLAG    option naming the data dir (default --data_dir, the config key)
#   PF_RATE=450      provider-flow walk-throughs/s (each = 7 durable writes: 3,150 writes/s)
#   PF_DURATION=20s  provider-flow measured duration
#   JG_RATE=20000    job-get requests/s
#   JG_DURATION=20s  job-get measured duration
#   WARMUP=2s        unmeasured warm-up before every measurement, same rate
#   CONNS=256        max keep-alive connections of the generator
#   MAX_INFLIGHT=10000  arrivals in flight beyond which arrivals are dropped
#   JOBS=1000 SETUP_PHASE=negotiated   job-get setup
#   PAIRS=20         provider-flow client/provider pairs
#   CLIENT=fast      loadgen HTTP client (fast|std)
#   BASELINE=1       0: skip the nginx baseline
#   SERVER=1         0: skip agentlancer (baseline only)
#   READY_TIMEOUT=60s  how long to wait for GET /readyz == 200
#   OUT_DIR          where results go (default: a new /tmp/agentlancer-bench.*)
#   KEEP_WORK=0      1: keep the temp dir with the server data dir and nginx prefix
#   GO               go binary (default: go on PATH, else /usr/local/go/bin/go)
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

SERVER_ARGS=${SERVER_ARGS---http.access_log false}
DATA_DIR_FLAG=${DATA_DIR_FLAG:---data_dir}
PF_RATE=${PF_RATE:-450}
PF_DURATION=${PF_DURATION:-20s}
JG_RATE=${JG_RATE:-20000}
JG_DURATION=${JG_DURATION:-20s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-256}
MAX_INFLIGHT=${MAX_INFLIGHT:-10000}
JOBS=${JOBS:-1000}
SETUP_PHASE=${SETUP_PHASE:-negotiated}
PAIRS=${PAIRS:-20}
CLIENT=${CLIENT:-fast}
BASELINE=${BASELINE:-1}
SERVER=${SERVER:-1}
READY_TIMEOUT=${READY_TIMEOUT:-60s}

bench_init agentlancer-bench
nginx_dir="$work/nginx"
bench_cleanup_hook() {
    if [ -s "$nginx_dir/nginx.pid" ]; then
        "$load_dir/nginx-baseline.sh" stop "$nginx_dir" >/dev/null 2>&1
    fi
}

# ------------------------------------------------------------------ build
build_loadgen

steps=$("$lg" steps)
PF_REQ_RATE=$(awk -v r="$PF_RATE" -v s="$steps" 'BEGIN { printf "%g", r * s }')
common=(-warmup "$WARMUP" -conns "$CONNS" -max-inflight "$MAX_INFLIGHT" -client "$CLIENT")

cat <<INFO
results:        $OUT_DIR
provider-flow:  $PF_RATE walk-throughs/s x $steps writes = $PF_REQ_RATE req/s for $PF_DURATION
job-get:        $JG_RATE req/s for $JG_DURATION ($JOBS jobs in phase $SETUP_PHASE)
warm-up:        $WARMUP per measurement (discarded); conns=$CONNS max-inflight=$MAX_INFLIGHT client=$CLIENT
machine:        $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)
INFO

# run_lg NAME ARGS... : runs loadgen, tees its output to $OUT_DIR/NAME.txt,
# writes $OUT_DIR/NAME.json; returns loadgen's exit status.

# ------------------------------------------------------------------ nginx baseline
if [ "$BASELINE" = 1 ]; then
    log "nginx baseline (return 204)"
    if nginx_port=$("$load_dir/nginx-baseline.sh" start "$nginx_dir" 3>&-); then
        echo "nginx on 127.0.0.1:$nginx_port ($nginx_dir)"
        base_url="http://127.0.0.1:$nginx_port/"
        run_lg baseline-pf -scenario get204 -label nginx -url "$base_url" -rate "$PF_REQ_RATE" -duration "$PF_DURATION" "${common[@]}" ||
            problem "baseline at $PF_REQ_RATE req/s did not run"
        echo
        run_lg baseline-jg -scenario get204 -label nginx -url "$base_url" -rate "$JG_RATE" -duration "$JG_DURATION" "${common[@]}" ||
            problem "baseline at $JG_RATE req/s did not run"
        "$load_dir/nginx-baseline.sh" stop "$nginx_dir"
    else
        problem "nginx baseline did not start"
    fi
fi

# ------------------------------------------------------------------ agentlancer
if [ "$SERVER" = 1 ]; then
    log "agentlancer: $AGENTLANCER_BIN"
    if start_agentlancer; then
        log "provider-flow: $PF_RATE walk-throughs/s for $PF_DURATION"
        run_lg server-pf -scenario provider-flow -label agentlancer -url "$api" -rate "$PF_RATE" -duration "$PF_DURATION" -pairs "$PAIRS" "${common[@]}" ||
            problem "provider-flow did not run (see message above)"
        log "job-get: $JG_RATE req/s for $JG_DURATION"
        run_lg server-jg -scenario job-get -label agentlancer -url "$api" -rate "$JG_RATE" -duration "$JG_DURATION" -jobs "$JOBS" -setup-phase "$SETUP_PHASE" "${common[@]}" ||
            problem "job-get did not run (see message above)"
        if ! kill -0 "$server_pid" 2>/dev/null; then
            problem "agentlancer exited during the benchmark; see $OUT_DIR/server.log"
        fi
    fi
fi

# ------------------------------------------------------------------ side by side
log "summary (ratio = agentlancer / nginx baseline at the same request rate)"
compared=0
if [ -s "$OUT_DIR/server-pf.json" ] && [ -s "$OUT_DIR/baseline-pf.json" ]; then
    "$lg" compare -run "$OUT_DIR/server-pf.json" -base "$OUT_DIR/baseline-pf.json" \
        -title "provider-flow ($PF_RATE walk-throughs/s = $PF_REQ_RATE req/s) vs nginx get204 @ $PF_REQ_RATE req/s"
    echo
    compared=1
fi
if [ -s "$OUT_DIR/server-jg.json" ] && [ -s "$OUT_DIR/baseline-jg.json" ]; then
    "$lg" compare -run "$OUT_DIR/server-jg.json" -base "$OUT_DIR/baseline-jg.json" \
        -title "job-get @ $JG_RATE req/s vs nginx get204 @ $JG_RATE req/s"
    echo
    compared=1
fi
if [ "$compared" = 0 ]; then
    # Nothing to pair up: show what was measured on its own.
    for f in "$OUT_DIR"/*.json; do
        [ -s "$f" ] || continue
        "$lg" compare -run "$f" -title "$(basename "$f" .json) (no counterpart to compare with)"
        echo
    done
fi
echo "raw results (tables .txt, JSON lines .json): $OUT_DIR"
bench_exit
