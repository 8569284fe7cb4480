#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup/on_signal are reached through trap
# Notifier WebSocket fan-out benchmark (GET /ws/agent, socket.io v4). Builds
# tests/load/loadgen, measures the in-memory Go baseline (`loadgen
# wsbaseline`: the same API surface with no durability, the ceiling on this
# machine), then starts agentlancer on a free port with a fresh data dir and
# measures the same scenarios, and prints both side by side with ratios.
#
# Scenarios (SCENARIOS, in this order):
#   live        delivery latency: LIVE_AGENTS x LIVE_CONNS_PER_AGENT sockets,
#               LIVE_RATE job creations/s for LIVE_DURATION (each creation is
#               one onNewTask to every socket of the client and of the provider)
#   throughput  fewer agents with many sockets each (one creation = 2 x
#               TP_CONNS_PER_AGENT messages), creation rate stepped through
#               TP_RATES; stepping stops once a step delivers less than
#               TP_STOP_BELOW of the asked message rate or loses messages
#   catchup     CU_BACKLOG events per agent logged with no socket open, then
#               CU_AGENTS x CU_CONNS_PER_AGENT sockets connect with since=0
#
# It reports; it never asserts on timing. Exit status: 0 when every planned
# measurement ran, 1 when something could not run (build failure, server did
# not become ready, a scenario's setup failed), 2 on bad usage.
#
# Knobs (environment):
#   AGENTLANCER_BIN   server binary (default: the first executable of
#                     <repo>/build/release/agentlancer, <repo>/build/release/app/agentlancer)
#   SERVER_ARGS       extra server options (default "--http.access_log false"; "" keeps the defaults)
#   DATA_DIR_FLAG     option naming the data dir (default --data_dir)
#   SCENARIOS="live throughput catchup"
#   LIVE_AGENTS=2000 LIVE_CONNS_PER_AGENT=5 LIVE_RATE=1000 LIVE_DURATION=20s
#   TP_AGENTS=100 TP_CONNS_PER_AGENT=100 TP_RATES="125 250 375 500 750 1000" TP_DURATION=10s TP_STOP_BELOW=0.9
#   CU_AGENTS=2000 CU_CONNS_PER_AGENT=5 CU_BACKLOG=50 CU_CONNECT_RATE=$CONNECT_RATE
#   WARMUP=2s         unmeasured creations before each live/throughput measurement
#   DRAIN=10s         after the schedule, wait at most this long for missing messages
#   CONNECT_RATE=2000 sockets opened per second (no SYN flood)
#   ACK=0             1: the clients acknowledge every event (43<id>[true])
#   HTTP_CONNS=64     generator keep-alive connections for signup/creation
#   WS_MAX_PER_AGENT  --notifier.ws.max_connections_per_agent (and the
#                     baseline's limit); default: the largest *_CONNS_PER_AGENT
#   BASELINE=1        0: skip the Go baseline
#   SERVER=1          0: skip agentlancer (baseline only)
#   READY_TIMEOUT=60s how long to wait for GET /readyz == 200
#   OUT_DIR           where results go (default: a new /tmp/agentlancer-ws-bench.*)
#   KEEP_WORK=0       1: keep the temp dir with the server data dir
#   GO                go binary (default: go on PATH, else /usr/local/go/bin/go)
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

SERVER_ARGS=${SERVER_ARGS---http.access_log false}
DATA_DIR_FLAG=${DATA_DIR_FLAG:---data_dir}
SCENARIOS=${SCENARIOS:-live throughput catchup}
LIVE_AGENTS=${LIVE_AGENTS:-2000}
LIVE_CONNS_PER_AGENT=${LIVE_CONNS_PER_AGENT:-5}
LIVE_RATE=${LIVE_RATE:-1000}
LIVE_DURATION=${LIVE_DURATION:-20s}
TP_AGENTS=${TP_AGENTS:-100}
TP_CONNS_PER_AGENT=${TP_CONNS_PER_AGENT:-100}
TP_RATES=${TP_RATES:-125 250 375 500 750 1000}
TP_DURATION=${TP_DURATION:-10s}
TP_STOP_BELOW=${TP_STOP_BELOW:-0.9}
CONNECT_RATE=${CONNECT_RATE:-2000}
CU_AGENTS=${CU_AGENTS:-2000}
CU_CONNS_PER_AGENT=${CU_CONNS_PER_AGENT:-5}
CU_BACKLOG=${CU_BACKLOG:-50}
CU_CONNECT_RATE=${CU_CONNECT_RATE:-$CONNECT_RATE}
WARMUP=${WARMUP:-2s}
DRAIN=${DRAIN:-10s}
ACK=${ACK:-0}
HTTP_CONNS=${HTTP_CONNS:-64}
BASELINE=${BASELINE:-1}
SERVER=${SERVER:-1}
READY_TIMEOUT=${READY_TIMEOUT:-60s}

for sc in $SCENARIOS; do
    case $sc in
        live | throughput | catchup) ;;
        *)
            echo "unknown scenario '$sc' in SCENARIOS (want live, throughput, catchup)" >&2
            exit 2
            ;;
    esac
done

# The per-agent limit must admit the largest per-agent socket count asked for.
max_cpa=1
has live && [ "$LIVE_CONNS_PER_AGENT" -gt "$max_cpa" ] && max_cpa=$LIVE_CONNS_PER_AGENT
has throughput && [ "$TP_CONNS_PER_AGENT" -gt "$max_cpa" ] && max_cpa=$TP_CONNS_PER_AGENT
has catchup && [ "$CU_CONNS_PER_AGENT" -gt "$max_cpa" ] && max_cpa=$CU_CONNS_PER_AGENT
WS_MAX_PER_AGENT=${WS_MAX_PER_AGENT:-$max_cpa}

bench_init agentlancer-ws-bench

# ------------------------------------------------------------------ build, limits
build_loadgen

# Every socket is a file descriptor on both sides (generator and server are
# children of this shell and inherit the limit).
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then
    ulimit -n 1048576 2>/dev/null || true
else
    ulimit -n "$hard" 2>/dev/null || true
fi
nofile=$(ulimit -n)
max_conns=0
has live && max_conns=$((LIVE_AGENTS * LIVE_CONNS_PER_AGENT))
has throughput && [ $((TP_AGENTS * TP_CONNS_PER_AGENT)) -gt "$max_conns" ] && max_conns=$((TP_AGENTS * TP_CONNS_PER_AGENT))
has catchup && [ $((CU_AGENTS * CU_CONNS_PER_AGENT)) -gt "$max_conns" ] && max_conns=$((CU_AGENTS * CU_CONNS_PER_AGENT))
if [ "$nofile" != unlimited ] && [ "$nofile" -lt $((max_conns + 1000)) ]; then
    echo "WARNING: open-file limit $nofile (hard $hard) is below the $max_conns sockets asked for + 1000; expect failed connections" >&2
fi

ack_flag=()
[ "$ACK" = 1 ] && ack_flag=(-ack)
common=(-connect-rate "$CONNECT_RATE" -conns "$HTTP_CONNS" -drain "$DRAIN" "${ack_flag[@]}")

cat <<INFO
results:     $OUT_DIR
scenarios:   $SCENARIOS
live:        $LIVE_AGENTS agents x $LIVE_CONNS_PER_AGENT sockets = $((LIVE_AGENTS * LIVE_CONNS_PER_AGENT)); $LIVE_RATE creations/s x $((2 * LIVE_CONNS_PER_AGENT)) = $((LIVE_RATE * 2 * LIVE_CONNS_PER_AGENT)) msgs/s for $LIVE_DURATION (warm-up $WARMUP)
throughput:  $TP_AGENTS agents x $TP_CONNS_PER_AGENT sockets = $((TP_AGENTS * TP_CONNS_PER_AGENT)); creations/s stepped through $TP_RATES (x $((2 * TP_CONNS_PER_AGENT)) msgs each) for $TP_DURATION
catch-up:    $CU_AGENTS agents x $CU_CONNS_PER_AGENT sockets = $((CU_AGENTS * CU_CONNS_PER_AGENT)); $CU_BACKLOG events per agent, reconnect with since=0 at $CU_CONNECT_RATE sockets/s
sockets:     opened at $CONNECT_RATE/s; per-agent limit $WS_MAX_PER_AGENT; ack=$ACK; open-file limit $nofile
machine:     $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)
INFO

# run_ws NAME ARGS... : runs loadgen wsfanout, tees its table to
# $OUT_DIR/NAME.txt, writes $OUT_DIR/NAME.json; returns loadgen's status.
run_ws() {
    local name=$1 rc
    shift
    run_child "$lg" wsfanout "$@" -json "$OUT_DIR/$name.json" >"$OUT_DIR/$name.out" 2>&1
    rc=$?
    grep -v '^{' "$OUT_DIR/$name.out" | tee "$OUT_DIR/$name.txt"
    rm -f "$OUT_DIR/$name.out"
    [ "$rc" = 0 ] || rm -f "$OUT_DIR/$name.json"
    return "$rc"
}

# measure WHO URL PID: every scenario against one server.
measure() {
    local who=$1 url=$2 pid=$3 rate
    local base=(-url "$url" -server-pid "$pid" -label "$who" "${common[@]}")
    if has live; then
        log "$who: live latency ($LIVE_AGENTS x $LIVE_CONNS_PER_AGENT sockets, $LIVE_RATE creations/s)"
        run_ws "$who-live" -mode live -agents "$LIVE_AGENTS" -conns-per-agent "$LIVE_CONNS_PER_AGENT" \
            -rate "$LIVE_RATE" -duration "$LIVE_DURATION" -warmup "$WARMUP" "${base[@]}" ||
            problem "$who live did not run"
        sleep 2 # let the server tear the sockets down
    fi
    if has throughput; then
        for rate in $TP_RATES; do
            log "$who: throughput step $rate creations/s ($TP_AGENTS x $TP_CONNS_PER_AGENT sockets = $((rate * 2 * TP_CONNS_PER_AGENT)) msgs/s asked)"
            if ! run_ws "$who-tp-$rate" -mode live -agents "$TP_AGENTS" -conns-per-agent "$TP_CONNS_PER_AGENT" \
                -rate "$rate" -duration "$TP_DURATION" -warmup "$WARMUP" "${base[@]}"; then
                problem "$who throughput step $rate did not run"
                break
            fi
            sleep 2
            # shellcheck disable=SC2046
            set -- $("$lg" jsonfield "$OUT_DIR/$who-tp-$rate.json" delivered_per_sec msg_rate_target lost conns_closed_during_run)
            if awk -v d="$1" -v a="$2" -v l="$3" -v c="$4" -v s="$TP_STOP_BELOW" 'BEGIN { exit !(d < s * a || l > 0 || c > 0) }'; then
                echo "(saturated at this step: delivered $1 of $2 msgs/s asked, lost $3, sockets closed $4; no higher step)"
                break
            fi
        done
    fi
    if has catchup; then
        log "$who: catch-up ($CU_AGENTS x $CU_CONNS_PER_AGENT sockets, $CU_BACKLOG events per agent, since=0)"
        run_ws "$who-catchup" -mode catchup -agents "$CU_AGENTS" -conns-per-agent "$CU_CONNS_PER_AGENT" \
            -backlog "$CU_BACKLOG" "${base[@]}" -connect-rate "$CU_CONNECT_RATE" ||
            problem "$who catch-up did not run"
        sleep 2
    fi
}

# wait_ready PORT: GET /readyz answers 200 while the server is alive.
wait_ready() {
    run_child "$lg" wait -url "http://127.0.0.1:$1/readyz" -timeout "$READY_TIMEOUT" -pid "$server_pid"
}

# ------------------------------------------------------------------ baseline
if [ "$BASELINE" = 1 ]; then
    log "Go baseline (loadgen wsbaseline: in-memory, no durability)"
    port=$("$lg" freeport)
    "$lg" wsbaseline -addr "127.0.0.1:$port" -max-conns-per-agent "$WS_MAX_PER_AGENT" >"$OUT_DIR/baseline.log" 2>&1 3>&- &
    server_pid=$!
    echo "wsbaseline on 127.0.0.1:$port, pid $server_pid, log $OUT_DIR/baseline.log"
    if wait_ready "$port"; then
        measure baseline "http://127.0.0.1:$port" "$server_pid"
    else
        problem "wsbaseline did not become ready"
        tail -n 20 "$OUT_DIR/baseline.log"
    fi
    stop_server
fi

# ------------------------------------------------------------------ agentlancer
if [ "$SERVER" = 1 ]; then
    log "agentlancer: $AGENTLANCER_BIN"
    if start_agentlancer --notifier.ws.max_connections_per_agent "$WS_MAX_PER_AGENT"; then
        measure agentlancer "$api" "$server_pid"
        if ! kill -0 "$server_pid" 2>/dev/null; then
            problem "agentlancer exited during the benchmark; see $OUT_DIR/server.log"
        fi
    fi
    stop_server
fi

# ------------------------------------------------------------------ side by side
log "summary (ratio = agentlancer / Go baseline)"
pair() { # NAME TITLE
    local run_json="$OUT_DIR/agentlancer-$1.json" base_json="$OUT_DIR/baseline-$1.json"
    if [ -s "$run_json" ] && [ -s "$base_json" ]; then
        "$lg" compare -run "$run_json" -base "$base_json" -title "$2"
    elif [ -s "$run_json" ]; then
        "$lg" compare -run "$run_json" -title "$2 (no baseline)"
    elif [ -s "$base_json" ]; then
        "$lg" compare -run "$base_json" -title "$2 (baseline only)"
    else
        return
    fi
    echo
}
has live && pair live "live: $((LIVE_AGENTS * LIVE_CONNS_PER_AGENT)) sockets, $LIVE_RATE creations/s = $((LIVE_RATE * 2 * LIVE_CONNS_PER_AGENT)) msgs/s asked"

if has throughput; then
    best=()
    for who in baseline agentlancer; do
        files=()
        for rate in $TP_RATES; do
            [ -s "$OUT_DIR/$who-tp-$rate.json" ] && files+=("$OUT_DIR/$who-tp-$rate.json")
        done
        [ ${#files[@]} -gt 0 ] || continue
        echo "throughput steps, $who ($TP_AGENTS agents x $TP_CONNS_PER_AGENT sockets):"
        printf '  %8s %8s %11s %11s %7s %5s %6s %8s %8s %8s %8s %7s %7s %7s\n' \
            "create/s" "created" "asked msg/s" "deliv msg/s" lost dup closed "p50 ms" "p99 ms" "e2e p50" "e2e p99" "gen cpu" "srv cpu" "us/msg"
        top="" topv=0
        for f in "${files[@]}"; do
            # shellcheck disable=SC2046
            set -- $("$lg" jsonfield "$f" rate_target creates_per_sec msg_rate_target delivered_per_sec lost duplicates conns_closed_during_run \
                latency.p50_ms latency.p99_ms latency_from_request.p50_ms latency_from_request.p99_ms \
                generator_cpu_cores server_cpu_cores server_us_per_msg)
            printf '  %8.0f %8.1f %11.0f %11.1f %7s %5s %6s %8.3f %8.3f %8.3f %8.3f %7.2f %7.2f %7.2f\n' "$@"
            if awk -v a="$4" -v b="$topv" 'BEGIN { exit !(a > b) }'; then
                top=$f topv=$4
            fi
        done
        echo "  highest delivered: $(printf '%.1f' "$topv") msgs/s (figures of that step: $(basename "$top" .json))"
        echo
        best+=("$who=$top")
    done
    run_best="" base_best=""
    for b in "${best[@]}"; do
        case $b in
            agentlancer=*) run_best=${b#agentlancer=} ;;
            baseline=*) base_best=${b#baseline=} ;;
        esac
    done
    if [ -n "$run_best" ] && [ -n "$base_best" ]; then
        "$lg" compare -run "$run_best" -base "$base_best" \
            -title "throughput: best step of each ($(basename "$run_best" .json) vs $(basename "$base_best" .json))"
        echo
    fi
fi

has catchup && pair catchup "catch-up: $((CU_AGENTS * CU_CONNS_PER_AGENT)) sockets, $CU_BACKLOG events per agent, since=0"

echo "raw results (tables .txt, JSON lines .json, server logs): $OUT_DIR"
bench_exit
