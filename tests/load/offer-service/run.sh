#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup/on_signal are reached through trap
# Offer-service benchmark driver (open model). Builds tests/load/loadgen,
# measures the nginx `return 204` baseline at the same request rates, starts
# agentlancer on a free port with a fresh data dir, runs offer-flow (one
# durable write per arrival on threads the untimed setup took to quote_locked:
# create-offer, then accept, which also creates the contract) and
# contract-status (public GET /api/contracts/{id}/tx-status), and prints the
# results side by side with the baseline.
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
#   SCENARIOS="offers status"  which scenarios, in this order
#   OF_RATE=3000     offer-flow durable writes/s (each arrival is one write)
#   OF_DURATION=20s  offer-flow measured duration
#   OF_THREADS=0     offer-flow: locked threads made in setup; 0 = enough for the run:
#                    OF_RATE x (WARMUP + OF_DURATION) / 2 + 5% + OF_RATE
#   PAIRS=20         provider/requester pairs (one service per provider), both scenarios
#   CS_RATE=20000    contract-status requests/s
#   CS_DURATION=20s  contract-status measured duration
#   CONTRACTS=1000   contract-status: contracts made in setup (locked thread -> offer -> accept)
#   SETUP_CONCURRENCY=16  concurrent (untimed) setup requests
#   SETUP_TIMEOUT    per-scenario setup limit, passed to loadgen (default: its own, 5m)
#   WARMUP=2s        unmeasured warm-up before every measurement, same rate
#   CONNS=256        max keep-alive connections of the generator
#   MAX_INFLIGHT=10000  arrivals in flight beyond which arrivals are dropped
#   CLIENT=fast      loadgen HTTP client (fast|std)
#   BASELINE=1       0: skip the nginx baseline
#   SERVER=1         0: skip agentlancer (baseline only)
#   READY_TIMEOUT=60s  how long to wait for GET /readyz == 200
#   OUT_DIR          where results go (default: a new /tmp/agentlancer-offer-bench.*)
#   KEEP_WORK=0      1: keep the temp dir with the server data dir and nginx prefix
#   GO               go binary (default: go on PATH, else /usr/local/go/bin/go)
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

SERVER_ARGS=${SERVER_ARGS---http.access_log false}
DATA_DIR_FLAG=${DATA_DIR_FLAG:---data_dir}
SCENARIOS=${SCENARIOS:-offers status}
OF_RATE=${OF_RATE:-3000}
OF_DURATION=${OF_DURATION:-20s}
OF_THREADS=${OF_THREADS:-0}
PAIRS=${PAIRS:-20}
CS_RATE=${CS_RATE:-20000}
CS_DURATION=${CS_DURATION:-20s}
CONTRACTS=${CONTRACTS:-1000}
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
        offers | status) ;;
        *) echo "unknown scenario '$s' in SCENARIOS (want: offers status)" >&2; exit 2 ;;
    esac
done

bench_init agentlancer-offer-bench
nginx_dir="$work/nginx"
bench_cleanup_hook() {
    if [ -s "$nginx_dir/nginx.pid" ]; then
        "$load_dir/nginx-baseline.sh" stop "$nginx_dir" >/dev/null 2>&1
    fi
}

# ------------------------------------------------------------------ build
build_loadgen

common=(-warmup "$WARMUP" -conns "$CONNS" -max-inflight "$MAX_INFLIGHT" -client "$CLIENT")
of_threads_desc=$OF_THREADS
[ "$OF_THREADS" = 0 ] && of_threads_desc="enough for the run"

cat <<INFO
results:             $OUT_DIR
scenarios:           $SCENARIOS
offer-flow:          $OF_RATE writes/s (create-offer -> accept, one write per arrival) for $OF_DURATION; $PAIRS provider/requester pairs; locked threads made in setup: $of_threads_desc
contract-status:     $CS_RATE req/s (public GET /api/contracts/{id}/tx-status) for $CS_DURATION; $CONTRACTS contracts awaiting payment
warm-up:             $WARMUP per measurement (discarded); conns=$CONNS max-inflight=$MAX_INFLIGHT client=$CLIENT
machine:             $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)
INFO

# ------------------------------------------------------------------ nginx baseline
if [ "$BASELINE" = 1 ]; then
    log "nginx baseline (return 204)"
    if nginx_port=$("$load_dir/nginx-baseline.sh" start "$nginx_dir" 3>&-); then
        echo "nginx on 127.0.0.1:$nginx_port ($nginx_dir)"
        base_url="http://127.0.0.1:$nginx_port/"
        if has offers; then
            run_lg baseline-of -scenario get204 -label nginx -url "$base_url" -rate "$OF_RATE" -duration "$OF_DURATION" "${common[@]}" ||
                problem "baseline at $OF_RATE req/s did not run"
            echo
        fi
        if has status; then
            run_lg baseline-cs -scenario get204 -label nginx -url "$base_url" -rate "$CS_RATE" -duration "$CS_DURATION" "${common[@]}" ||
                problem "baseline at $CS_RATE req/s did not run"
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
        setup=(-setup-concurrency "$SETUP_CONCURRENCY" -pairs "$PAIRS")
        [ -n "${SETUP_TIMEOUT:-}" ] && setup+=(-setup-timeout "$SETUP_TIMEOUT")
        if has offers; then
            log "offer-flow: $OF_RATE writes/s for $OF_DURATION"
            run_lg server-of -scenario offer-flow -label agentlancer -url "$api" -rate "$OF_RATE" -duration "$OF_DURATION" \
                -locked-threads "$OF_THREADS" "${setup[@]}" "${common[@]}" ||
                problem "offer-flow did not run (see message above)"
        fi
        if has status; then
            log "contract-status: $CS_RATE req/s for $CS_DURATION"
            run_lg server-cs -scenario contract-status -label agentlancer -url "$api" -rate "$CS_RATE" -duration "$CS_DURATION" \
                -contracts "$CONTRACTS" "${setup[@]}" "${common[@]}" ||
                problem "contract-status did not run (see message above)"
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            problem "agentlancer exited during the benchmark; see $OUT_DIR/server.log"
        fi
    fi
fi

# ------------------------------------------------------------------ side by side
log "summary (ratio = agentlancer / nginx baseline at the same request rate)"
has offers && compare_pair of "offer-flow ($OF_RATE writes/s: create-offer, accept) vs nginx get204 @ $OF_RATE req/s"
has status && compare_pair cs "contract-status (public tx-status) @ $CS_RATE req/s vs nginx get204 @ $CS_RATE req/s"
echo "raw results (tables .txt, JSON lines .json): $OUT_DIR"
bench_exit
