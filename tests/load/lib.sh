# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154,SC2317  # variables are the drivers'; functions are reached through traps
# Shared plumbing of the benchmark drivers (job-service/run.sh, notifier/run.sh): the binary and Go
# to use, the work and output directories, messages, a server stopped on exit, loadgen children
# that an interrupt stops at once, and the loadgen build. Source it after `set -u -o pipefail`,
# with $repo set; then call bench_init <name>.

# AGENTLANCER_BIN: the first executable of the release build's known places.
if [ -z "${AGENTLANCER_BIN:-}" ]; then
    AGENTLANCER_BIN=$repo/build/release/agentlancer
    for candidate in "$repo/build/release/agentlancer" "$repo/build/release/app/agentlancer"; do
        if [ -f "$candidate" ] && [ -x "$candidate" ]; then
            AGENTLANCER_BIN=$candidate
            break
        fi
    done
fi
if [ -z "${GO:-}" ]; then
    GO=$(command -v go || echo /usr/local/go/bin/go)
fi
KEEP_WORK=${KEEP_WORK:-0}
load_dir=$(cd "$repo/tests/load" && pwd)

log() { printf '\n### %s\n' "$*"; }
problems=()
problem() { echo "!!! $*" >&2; problems+=("$*"); }

server_pid=""
child=""        # loadgen process currently running (stopped on interrupt)
bench_cleanup_hook() { :; }   # a driver redefines it to stop what else it started

# stop_server: SIGTERM the server in $server_pid, SIGKILL after 15 s.
stop_server() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null
        for _ in $(seq 1 150); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    server_pid=""
}
bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server
    bench_cleanup_hook
    if [ "$KEEP_WORK" = 1 ]; then
        echo "work dir kept: $work"
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
bench_on_signal() {
    echo "interrupted; stopping what this script started" >&3
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null   # loadgen stops early and exits
        wait "$child" 2>/dev/null
    fi
    exit 130
}

# run_child CMD...: runs CMD in the background and waits for it, so that a signal reaches the
# trap at once instead of after CMD finishes.
run_child() {
    "$@" &
    child=$!
    wait "$child"
    local rc=$?
    child=""
    return "$rc"
}

# bench_init NAME: work dir /tmp/NAME-work.*, OUT_DIR (default /tmp/NAME.*), traps.
bench_init() {
    exec 3>&2   # the original stderr, for messages printed inside redirected calls
    work=$(mktemp -d "/tmp/$1-work.XXXXXX") || exit 1
    OUT_DIR=${OUT_DIR:-$(mktemp -d "/tmp/$1.XXXXXX")}
    mkdir -p "$OUT_DIR" || exit 1
    OUT_DIR=$(cd "$OUT_DIR" && pwd)
    trap bench_cleanup EXIT
    trap bench_on_signal INT TERM
}

# build_loadgen: builds tests/load/loadgen into $work/loadgen and sets $lg (exits on failure).
build_loadgen() {
    log "building loadgen ($("$GO" version 2>/dev/null || echo "no go at $GO"))"
    lg="$work/loadgen"
    if ! (cd "$load_dir/loadgen" && GOTOOLCHAIN=local CGO_ENABLED=0 "$GO" build -o "$lg" .); then
        problem "loadgen build failed"
        exit 1
    fi
}

# run_lg NAME LOADGEN-ARGS...: one load-generator run; the human table goes to stdout and
# $OUT_DIR/NAME.txt, the JSON line to $OUT_DIR/NAME.json (removed when the run failed).
# Needs $lg (the built loadgen, see build_loadgen) and $OUT_DIR.
run_lg() {
    local name=$1 rc
    shift
    run_child "$lg" "$@" -json "$OUT_DIR/$name.json" >"$OUT_DIR/$name.out" 2>&1
    rc=$?
    grep -v '^{' "$OUT_DIR/$name.out" | tee "$OUT_DIR/$name.txt"
    rm -f "$OUT_DIR/$name.out"
    [ "$rc" = 0 ] || rm -f "$OUT_DIR/$name.json"
    return "$rc"
}

# start_agentlancer [SERVER-OPTION...]: starts "$AGENTLANCER_BIN all" on a free port with a fresh
# data directory under $work ($DATA_DIR_FLAG, then the given options, then $SERVER_ARGS), logs
# to $OUT_DIR/server.log and waits for GET /readyz == 200 ($READY_TIMEOUT). Sets server_pid and
# api (the base URL). Returns 1, with the problem noted and the log's tail shown, when the binary
# is missing or the server does not become ready.
# shellcheck disable=SC2120  # the options are optional
start_agentlancer() {
    local port data extra_args server_cmd
    if [ ! -x "$AGENTLANCER_BIN" ]; then
        problem "server binary $AGENTLANCER_BIN not found or not executable (build it, or set AGENTLANCER_BIN)"
        return 1
    fi
    port=$("$lg" freeport)
    data="$work/data"
    mkdir -p "$data"
    read -r -a extra_args <<<"$SERVER_ARGS"
    # A benchmark drives one key and one address far past the per-client limits, which it does
    # not measure: they are off here (rate_limit.enabled; SERVER_ARGS may turn them back on).
    server_cmd=("$AGENTLANCER_BIN" all --port "$port" "$DATA_DIR_FLAG" "$data" --rate_limit.enabled false "$@" "${extra_args[@]}")
    echo "${server_cmd[*]}"
    "${server_cmd[@]}" >"$OUT_DIR/server.log" 2>&1 3>&- &
    server_pid=$!
    echo "pid $server_pid, log $OUT_DIR/server.log"
    if ! run_child "$lg" wait -url "http://127.0.0.1:$port/readyz" -timeout "$READY_TIMEOUT" -pid "$server_pid"; then
        problem "agentlancer did not become ready (GET /readyz != 200)"
        echo "--- last lines of $OUT_DIR/server.log:"
        tail -n 30 "$OUT_DIR/server.log"
        return 1
    fi
    api="http://127.0.0.1:$port"
}

# has SCENARIO: whether $SCENARIOS (space-separated) names it.
has() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }

# compare_pair NAME TITLE: agentlancer's NAME run ($OUT_DIR/server-NAME.json) next to the nginx
# baseline's (baseline-NAME.json), or whichever of the two ran.
compare_pair() {
    local run_json="$OUT_DIR/server-$1.json" base_json="$OUT_DIR/baseline-$1.json"
    if [ -s "$run_json" ] && [ -s "$base_json" ]; then
        "$lg" compare -run "$run_json" -base "$base_json" -title "$2"
    elif [ -s "$run_json" ]; then
        "$lg" compare -run "$run_json" -title "$2 (no baseline)"
    elif [ -s "$base_json" ]; then
        "$lg" compare -run "$base_json" -title "$2 (baseline only)"
    else
        return 0
    fi
    echo
}

# bench_exit: lists what could not be measured and exits 1, else exits 0.
bench_exit() {
    if [ ${#problems[@]} -gt 0 ]; then
        echo
        echo "NOT everything could be measured:"
        printf '  - %s\n' "${problems[@]}"
        exit 1
    fi
    exit 0
}
