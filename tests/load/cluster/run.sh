#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup is reached through the trap
# The cluster benchmark: the local cluster (scripts/cluster/cluster.sh: 3 Kafka brokers,
# PostgreSQL, two replicas of each service, the nginx gateway) measured through its gateway, next
# to (a) the same gateway configuration proxying to an nginx that answers 204 (the floor of the
# gateway hop) and (b) the embedded default (`agentlancer all`, SQLite, one process) running the
# same write scenarios — the cost a request has without the cluster. Every run records the CPU
# time of every process of the system under test over the measured schedule (loadgen -cpu-pids,
# from /proc), so the figures that matter are CPU µs per request, which do not depend on this
# shared machine's noise, and ratios within one invocation. Never asserts; prints tables.
#
# Scenarios (all through the gateway):
#   job-get      authenticated GET /api/agents/jobs/{id}, JG_RATE req/s
#   job-create   POST /api/agents/jobs, JC_RATE req/s
#   offer-flow   lock-quote → create-offer → accept on pre-locked threads, OF_RATE writes/s
#   ws           job creations at WS_RATE/s, each an onNewTask to the client's and the
#                provider's socket (2 × WS_RATE events/s on sockets through the gateway):
#                latency from the creation's 201 to the socket (p50/p99/p99.9)
#
# Knobs: JG_RATE=2000 JC_RATE=200 OF_RATE=150 WS_RATE=500 WS_AGENTS=200 DURATION=15s WARMUP=2s
# CONNS=64 EMBEDDED=1 (0: skip the embedded reference) OUT_DIR AGENTLANCER_BIN (release) GO.
set -u -o pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

JG_RATE=${JG_RATE:-2000}
JC_RATE=${JC_RATE:-200}
OF_RATE=${OF_RATE:-150}
WS_RATE=${WS_RATE:-500}
WS_AGENTS=${WS_AGENTS:-200}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-2s}
CONNS=${CONNS:-64}
EMBEDDED=${EMBEDDED:-1}
READY_TIMEOUT=${READY_TIMEOUT:-60s}
SERVER_ARGS=${SERVER_ARGS-"--http.access_log false"}
DATA_DIR_FLAG=${DATA_DIR_FLAG:---data_dir}

bench_init agentlancer-cluster-bench
chmod 755 "$work"  # PostgreSQL runs as its own user and must reach its data dir in here
cluster_dir="$work/cluster"
floor_dir="$work/floor"
n204_dir="$work/n204"
cluster() { CLUSTER_DIR="$cluster_dir" AGENTLANCER_BIN="$AGENTLANCER_BIN" RATE_LIMIT_ENABLED=false bash "$repo/scripts/cluster/cluster.sh" "$@"; }
bench_cleanup_hook() {
    cluster stop >/dev/null 2>&1
    [ -s "$floor_dir/nginx.pid" ] && kill -QUIT "$(cat "$floor_dir/nginx.pid")" 2>/dev/null
    [ -s "$n204_dir/nginx.pid" ] && "$load_dir/nginx-baseline.sh" stop "$n204_dir" >/dev/null 2>&1
}
build_loadgen
common=(-warmup "$WARMUP" -duration "$DURATION" -conns "$CONNS" -client fast)

cat <<INFO
results:   $OUT_DIR
rates:     job-get $JG_RATE req/s, job-create $JC_RATE req/s, offer-flow $OF_RATE writes/s, ws $WS_RATE creations/s
           ($DURATION each after $WARMUP of warm-up)
machine:   $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)
binary:    $AGENTLANCER_BIN
INFO

# idle_cpu PIDS-FILE OUT-JSON [SECONDS]: each label's CPU ms per second while nothing is asked of
# it (relay and consumer polls, sweeps, JVM housekeeping), so that the summary charges requests
# only with what they add.
idle_cpu() {
    python3 - "$1" "$2" "${3:-5}" <<'PY'
import json, sys, time
def cpu(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) * 10.0  # ms (USER_HZ 100)
    except OSError:
        return 0.0
pids = [l.split() for l in open(sys.argv[1]) if len(l.split()) == 2]
def sample():
    out = {}
    for label, pid in pids:
        out[label] = out.get(label, 0.0) + cpu(pid)
    return out
seconds = float(sys.argv[3])
a = sample(); time.sleep(seconds); b = sample()
json.dump({k: (b[k] - a[k]) / seconds for k in b}, open(sys.argv[2], "w"))
PY
}

# settle_cluster: waits until every replica's outbox is published and its consumers have been
# quiet for 2 s (what an earlier run left behind is not measured as this one's).
settle_cluster() {
    local last="" now quiet=0
    for _ in $(seq 1 600); do
        now=$(for d in "$cluster_dir"/services/*/; do
            curl -s -m 2 "http://127.0.0.1:$(cat "$d/port")/metrics"
        done | awk '/_outbox_backlog /{b+=$2} /^consumer_events_total /{c+=$2} END{print b+0, c+0}')
        if [ "${now%% *}" = 0 ] && [ "$now" = "$last" ]; then
            quiet=$((quiet + 1))
            [ "$quiet" -ge 4 ] && return 0
        else
            quiet=0
        fi
        last=$now
        sleep 0.5
    done
    problem "the cluster did not settle"
}

# A process and its live children (nginx workers, PostgreSQL backends), one "label pid" line each.
with_children() { # label pid
    echo "$1 $2"
    local c
    for c in $(pgrep -P "$2" 2>/dev/null); do echo "$1 $c"; done
}

# ------------------------------------------------------------------ the embedded default
if [ "$EMBEDDED" = 1 ]; then
    log "embedded default (agentlancer all, SQLite, embedded broker): the reference cost"
    if start_agentlancer; then
        echo "agentlancer $server_pid" >"$work/embedded.pids"
        idle_cpu "$work/embedded.pids" "$OUT_DIR/embedded.idle.json"
        run_lg embedded-job-get -scenario job-get -label embedded -url "$api" -rate "$JG_RATE" -jobs 1000 \
            -setup-phase negotiated -cpu-pids "$work/embedded.pids" "${common[@]}" || problem "embedded job-get"
        run_lg embedded-job-create -scenario job-create -label embedded -url "$api" -rate "$JC_RATE" \
            -cpu-pids "$work/embedded.pids" "${common[@]}" || problem "embedded job-create"
        run_lg embedded-offer-flow -scenario offer-flow -label embedded -url "$api" -rate "$OF_RATE" -pairs 20 \
            -setup-timeout 10m -cpu-pids "$work/embedded.pids" "${common[@]}" || problem "embedded offer-flow"
        stop_server
    fi
fi

# ------------------------------------------------------------------ the gateway's floor
log "the gateway's own configuration proxying to nginx return 204"
if n204_port=$("$load_dir/nginx-baseline.sh" start "$n204_dir" 3>&-); then
    mkdir -p "$floor_dir/tmp"
    floor_port=$("$lg" freeport)
    python3 "$repo/scripts/cluster/gateway.py" "$repo/deploy/gateway/routes.tsv" "$floor_dir" "$floor_port" \
        "thread-service=127.0.0.1:$n204_port" "offer-service=127.0.0.1:$n204_port" \
        "job-service=127.0.0.1:$n204_port" "notifier=127.0.0.1:$n204_port" >"$floor_dir/nginx.conf"
    nginx -c "$floor_dir/nginx.conf" -p "$floor_dir" >>"$floor_dir/error.log" 2>&1 3>&- &
    "$lg" wait -url "http://127.0.0.1:$floor_port/healthz" -timeout 10s >/dev/null
    {
        with_children gateway "$(cat "$floor_dir/nginx.pid")"
        with_children upstream "$(cat "$n204_dir/nginx.pid")"
    } >"$work/floor.pids"
    run_lg floor-get -scenario get204 -label gateway-204 -url "http://127.0.0.1:$floor_port/api/agents/jobs/1" \
        -rate "$JG_RATE" -cpu-pids "$work/floor.pids" "${common[@]}" || problem "gateway floor"
    kill -QUIT "$(cat "$floor_dir/nginx.pid")" 2>/dev/null
    "$load_dir/nginx-baseline.sh" stop "$n204_dir" >/dev/null
else
    problem "the 204 upstream did not start"
fi

# ------------------------------------------------------------------ the cluster
log "the cluster (3 Kafka brokers, PostgreSQL, 2 replicas x 4 services, nginx gateway)"
gw_port=$("$lg" freeport)
if PORT=$gw_port cluster up; then
    gw="http://127.0.0.1:$gw_port"
    cluster_pids() {
        local d s
        for d in "$cluster_dir"/services/*/; do
            s=$(basename "$d")
            echo "${s%-*} $(cat "$d/pid")"
        done
        with_children gateway "$(cat "$cluster_dir/gateway/nginx.pid")"
        with_children postgresql "$(head -1 "$cluster_dir/postgres/data/postmaster.pid")"
        bash "$repo/scripts/kafka/kafka-cluster.sh" status "$cluster_dir/kafka" 2>/dev/null |
            sed -n 's/.* pid=\([0-9]*\).*/kafka \1/p'
    }
    # Setups settle on every replica's /metrics (the gateway routes none).
    metrics_urls=$(for d in "$cluster_dir"/services/*/; do printf 'http://127.0.0.1:%s,' "$(cat "$d/port")"; done)
    metrics_urls=${metrics_urls%,}
    # Taken right before each run: PostgreSQL backends come with the pools' connections.
    run_cluster() { # name loadgen-args...
        local name=$1
        shift
        cluster_pids >"$work/$name.pids"
        run_lg "$name" "$@" -cpu-pids "$work/$name.pids" -metrics-urls "$metrics_urls"
    }
    settle_cluster
    cluster_pids >"$work/idle.pids"
    idle_cpu "$work/idle.pids" "$OUT_DIR/cluster.idle.json"
    run_cluster cluster-job-get -scenario job-get -label cluster -url "$gw" -rate "$JG_RATE" -jobs 1000 \
        -setup-phase negotiated "${common[@]}" || problem "cluster job-get"
    run_cluster cluster-job-create -scenario job-create -label cluster -url "$gw" -rate "$JC_RATE" \
        "${common[@]}" || problem "cluster job-create"
    run_cluster cluster-offer-flow -scenario offer-flow -label cluster -url "$gw" -rate "$OF_RATE" -pairs 20 \
        -setup-timeout 10m "${common[@]}" || problem "cluster offer-flow"
    log "commit → socket through the gateway: $WS_RATE creations/s, 2 sockets each"
    settle_cluster
    run_lg cluster-ws wsfanout -url "$gw" -agents "$WS_AGENTS" -conns-per-agent 1 -rate "$WS_RATE" \
        -duration "$DURATION" -warmup "$WARMUP" || problem "cluster ws"
    cluster stop >/dev/null 2>&1
else
    problem "the cluster did not come up"
fi

log "summary"
python3 "$here/summary.py" "$OUT_DIR" | tee "$OUT_DIR/summary.md"
bench_exit
