#!/usr/bin/env bash
# shellcheck disable=SC2317  # functions are reached through traps (lib.sh)
# Webhooks vs socket.io: the same events delivered both ways in one run.
# Builds tests/load/loadgen, starts agentlancer on a free port with a fresh
# data dir, then `loadgen webhooks`: AGENTS agents, each with one socket.io
# connection (GET /ws/agent, live) and one webhook endpoint pointing at a
# receiver loadgen runs on 127.0.0.1 (it verifies every Standard Webhooks
# signature and answers 204); thread messages at RATE/s (open model), each
# one thread.message_posted event for the thread's two members; for every
# event the arrival on the socket and at the receiver, timed from the write's
# 201. socket.io is the in-run baseline (ratio webhook / socket.io per
# percentile); a signed POST loadgen -> its own receiver is the floor of the
# HTTP hop (measured in the same run, before the schedule).
#
# It reports; it never asserts on timing. Exit status: 0 when the
# measurement ran, 1 when it could not (build failure, server missing or not
# ready, setup failed: the message says which call), 2 bad usage.
#
# Knobs (environment):
#   AGENTLANCER_BIN   server binary (default: the first executable of
#                     <repo>/build/release/agentlancer, <repo>/build/release/app/agentlancer);
#                     it must have the webhook routes (POST /api/agent/webhooks)
#   SERVER_ARGS       extra server options (default "--http.access_log false"; "" keeps the defaults)
#   DATA_DIR_FLAG     option naming the data dir (default --data_dir)
#   AGENTS=20         agents = sockets = webhook endpoints = threads (agent i on agent i+1's service)
#   RATE=50           thread messages per second (x 2 deliveries per channel)
#   DURATION=20s      measured schedule (at most 30s)
#   WARMUP=2s         unmeasured schedule before it
#   DRAIN=10s         after the schedule, wait at most this long for missing deliveries
#   FLOOR=new-conn,keep-alive   floor measurements (new-conn: a TCP connection per POST, as the server delivers)
#   FLOOR_DURATION=5s length of each floor measurement (0s: none)
#   FLOOR_RATE=0      floor POSTs/s (0: the webhook delivery rate, 2 x RATE)
#   POLL_INTERVAL_MS  the server's --webhooks.poll_interval_ms (default: the server's, 200)
#   HTTP_CONNS=64     generator keep-alive connections for the API calls
#   READY_TIMEOUT=60s how long to wait for GET /readyz == 200
#   OUT_DIR           where results go (default: a new /tmp/agentlancer-webhooks-bench.*)
#   KEEP_WORK=0       1: keep the temp dir with the server data dir
#   GO                go binary (default: go on PATH, else /usr/local/go/bin/go)
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"

SERVER_ARGS=${SERVER_ARGS---http.access_log false}
DATA_DIR_FLAG=${DATA_DIR_FLAG:---data_dir}
AGENTS=${AGENTS:-20}
RATE=${RATE:-50}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-2s}
DRAIN=${DRAIN:-10s}
FLOOR=${FLOOR:-new-conn,keep-alive}
FLOOR_DURATION=${FLOOR_DURATION:-5s}
FLOOR_RATE=${FLOOR_RATE:-0}
POLL_INTERVAL_MS=${POLL_INTERVAL_MS:-}
HTTP_CONNS=${HTTP_CONNS:-64}
READY_TIMEOUT=${READY_TIMEOUT:-60s}

bench_init agentlancer-webhooks-bench
build_loadgen

# What was measured: the binary's version and whether it is a sanitizer build.
build="release"
if [ -f "$AGENTLANCER_BIN" ] && grep -qa '__asan_init' "$AGENTLANCER_BIN" 2>/dev/null; then
    build="ASan debug build: absolute figures are not release figures, ratios are of this build"
fi
version=$("$AGENTLANCER_BIN" --version 2>/dev/null | head -n 1)

# The receiver is on 127.0.0.1: loopback must be allowed (the embedded default is; SERVER_ARGS
# or a config file could have changed it).
server_opts=(--webhooks.allowed_cidrs 127.0.0.0/8)
[ -n "$POLL_INTERVAL_MS" ] && server_opts+=(--webhooks.poll_interval_ms "$POLL_INTERVAL_MS")

cat <<INFO
results:     $OUT_DIR
server:      $AGENTLANCER_BIN (${version:-version unknown}; $build)
run:         $AGENTS agents x (1 socket.io connection + 1 webhook endpoint); $RATE thread messages/s x 2 members = $(awk -v r="$RATE" 'BEGIN { print r * 2 }') deliveries/s per channel for $DURATION (warm-up $WARMUP, drain up to $DRAIN)
floor:       $FLOOR, ${FLOOR_DURATION} each
machine:     $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)
INFO

log "agentlancer: $AGENTLANCER_BIN"
if start_agentlancer "${server_opts[@]}"; then
    log "webhooks vs socket.io ($AGENTS agents, $RATE messages/s for $DURATION)"
    run_lg webhooks webhooks -url "$api" -agents "$AGENTS" -rate "$RATE" -duration "$DURATION" \
        -warmup "$WARMUP" -drain "$DRAIN" -floor "$FLOOR" -floor-duration "$FLOOR_DURATION" \
        -floor-rate "$FLOOR_RATE" -conns "$HTTP_CONNS" -server-pid "$server_pid" -label agentlancer \
        -server-note "${version:-?}; $build; ${server_opts[*]} $SERVER_ARGS" ||
        problem "the webhooks benchmark did not run (see the message above)"
    if ! kill -0 "$server_pid" 2>/dev/null; then
        problem "agentlancer exited during the benchmark; see $OUT_DIR/server.log"
    fi
fi
stop_server

echo
echo "raw results (table .txt, JSON line .json, server log): $OUT_DIR"
bench_exit
