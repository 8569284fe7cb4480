#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup/on_signal are reached through trap
# Thread-service benchmark driver (open model). Builds tests/load/loadgen,
# measures the nginx `return 204` baseline at the same request rates, starts
# agentlancer on a free port with a fresh data dir, runs thread-negotiation
# (one durable write per arrival: open thread -> post quote -> lock quote) and
# thread-list (GET /api/agent/threads?mode=...), and prints the results side
# by side with the baseline.
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
#   SCENARIOS="negotiation list"  which scenarios, in this order
#   TN_RATE=3000     thread-negotiation durable writes/s (each arrival is one write)
#   TN_DURATION=20s  thread-negotiation measured duration
#   PAIRS=20         thread-negotiation provider/requester pairs (one service per provider)
#   TL_RATE=20000    thread-list requests/s
#   TL_DURATION=20s  thread-list measured duration
#   AGENTS=200 THREADS_PER_AGENT=5   thread-list setup: agents x threads each opens
#                    (every agent then has THREADS_PER_AGENT outgoing and incoming threads)
#   LIST_MODE=mixed  thread-list: outgoing | incoming | all | mixed (outgoing and incoming alternately)
#   THREAD_STATE=quoted  thread-list setup: opened | quoted | locked
#   SETUP_CONCURRENCY=16  concurrent (untimed) setup requests
#   WARMUP=2s        unmeasured warm-up before every measurement, same rate
#   CONNS=256        max keep-alive connections of the generator
#   MAX_INFLIGHT=10000  arrivals in flight beyond which arrivals are dropped
#   CLIENT=fast      loadgen HTTP client (fast|std)
#   BASELINE=1       0: skip the nginx baseline
#   SERVER=1         0: skip agentlancer (baseline only)
#   READY_TIMEOUT=60s  how long to wait for GET /readyz == 200
#   OUT_DIR          where results go (default: a new /tmp/agentlancer-thread-bench.*)
#   KEEP_WORK=0      1: keep the temp dir with the server data dir and nginx prefix
#   GO               go binary (default: go on PATH, else /usr/local/go/bin/go)
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

SERVER_ARGS=${SERVER_ARGS---http.access_log false}
DATA_DIR_FLAG=${DATA_DIR_FLAG:---data_dir}
SCENARIOS=${SCENARIOS:-negotiation list}
TN_RATE=${TN_RATE:-3000}
TN_DURATION=${TN_DURATION:-20s}
PAIRS=${PAIRS:-20}
TL_RATE=${TL_RATE:-20000}
TL_DURATION=${TL_DURATION:-20s}
AGENTS=${AGENTS:-200}
THREADS_PER_AGENT=${THREADS_PER_AGENT:-5}
LIST_MODE=${LIST_MODE:-mixed}
THREAD_STATE=${THREAD_STATE:-quoted}
SETUP_CONCURRENCY=${SETUP_CONCURRENCY:-16}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-256}
MAX_INFLIGHT=${MAX_INFLIGHT:-10000}
CLIENT=${CLIENT:-fast}
BASELINE=${BASELINE:-1}
SERVER=${SERVER:-1}
READY_TIMEOUT=${READY_TIMEOUT:-60s}

for s in $SCENARIOS; do
    case $s in
        negotiation | list) ;;
        *) echo "unknown scenario '$s' in SCENARIOS (want: negotiation list)" >&2; exit 2 ;;
    esac
done

bench_init agentlancer-thread-bench
nginx_dir="$work/nginx"
bench_cleanup_hook() {
    if [ -s "$nginx_dir/nginx.pid" ]; then
        "$load_dir/nginx-baseline.sh" stop "$nginx_dir" >/dev/null 2>&1
    fi
}

# ------------------------------------------------------------------ build
build_loadgen

common=(-warmup "$WARMUP" -conns "$CONNS" -max-inflight "$MAX_INFLIGHT" -client "$CLIENT")

cat <<INFO
results:             $OUT_DIR
scenarios:           $SCENARIOS
thread-negotiation:  $TN_RATE writes/s (open -> quote -> lock, one write per arrival) for $TN_DURATION; $PAIRS provider/requester pairs
thread-list:         $TL_RATE req/s (GET /api/agent/threads, list mode $LIST_MODE) for $TL_DURATION; $AGENTS agents x $THREADS_PER_AGENT threads ($THREAD_STATE)
warm-up:             $WARMUP per measurement (discarded); conns=$CONNS max-inflight=$MAX_INFLIGHT client=$CLIENT
machine:             $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)
INFO

# run_lg NAME ARGS... : runs loadgen, tees its output to $OUT_DIR/NAME.txt,
# writes $OUT_DIR/NAME.json; returns loadgen's exit status.

# ------------------------------------------------------------------ nginx baseline
if [ "$BASELINE" = 1 ]; then
    log "nginx baseline (return 204)"
    if nginx_port=$("$load_dir/nginx-baseline.sh" start "$nginx_dir" 3>&-); then
        echo "nginx on 127.0.0.1:$nginx_port ($nginx_dir)"
        base_url="http://127.0.0.1:$nginx_port/"
        if has negotiation; then
            run_lg baseline-tn -scenario get204 -label nginx -url "$base_url" -rate "$TN_RATE" -duration "$TN_DURATION" "${common[@]}" ||
                problem "baseline at $TN_RATE req/s did not run"
            echo
        fi
        if has list; then
            run_lg baseline-tl -scenario get204 -label nginx -url "$base_url" -rate "$TL_RATE" -duration "$TL_DURATION" "${common[@]}" ||
                problem "baseline at $TL_RATE req/s did not run"
        fi
        "$load_dir/nginx-baseline.sh" stop "$nginx_dir"
    else
        problem "nginx baseline did not start"
    fi
fi

# ------------------------------------------------------------------ agentlancer
if [ "$SERVER" = 1 ]; then
    log "agentlancer: $AGENTLANCER_BIN"
    if start_agentlancer; then
        setup=(-setup-concurrency "$SETUP_CONCURRENCY")
        if has negotiation; then
            log "thread-negotiation: $TN_RATE writes/s for $TN_DURATION"
            run_lg server-tn -scenario thread-negotiation -label agentlancer -url "$api" -rate "$TN_RATE" -duration "$TN_DURATION" \
                -pairs "$PAIRS" "${setup[@]}" "${common[@]}" ||
                problem "thread-negotiation did not run (see message above)"
        fi
        if has list; then
            log "thread-list: $TL_RATE req/s for $TL_DURATION"
            run_lg server-tl -scenario thread-list -label agentlancer -url "$api" -rate "$TL_RATE" -duration "$TL_DURATION" \
                -agents "$AGENTS" -threads-per-agent "$THREADS_PER_AGENT" -list-mode "$LIST_MODE" -thread-state "$THREAD_STATE" \
                "${setup[@]}" "${common[@]}" ||
                problem "thread-list did not run (see message above)"
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            problem "agentlancer exited during the benchmark; see $OUT_DIR/server.log"
        fi
    fi
fi

# ------------------------------------------------------------------ side by side
log "summary (ratio = agentlancer / nginx baseline at the same request rate)"
has negotiation && compare_pair tn "thread-negotiation ($TN_RATE writes/s: open, quote, lock) vs nginx get204 @ $TN_RATE req/s"
has list && compare_pair tl "thread-list ($LIST_MODE) @ $TL_RATE req/s vs nginx get204 @ $TL_RATE req/s"
echo "raw results (tables .txt, JSON lines .json): $OUT_DIR"
bench_exit
