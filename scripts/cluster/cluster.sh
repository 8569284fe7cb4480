#!/usr/bin/env bash
# The cluster, locally: a 3-broker Kafka (KRaft), PostgreSQL 15 (one database per service), two
# replicas of each service (each its own process of the one binary) and nginx as the gateway on
# 127.0.0.1:$PORT. Loopback only; everything lives under $CLUSTER_DIR.
#
#   cluster.sh up                 start everything in the background, wait until all is ready
#   cluster.sh status             every process, its port, ready or not (exit 1 if any is not)
#   cluster.sh logs [NAME]        the last lines of every log (or of NAME, e.g. job-service-1)
#   cluster.sh stop               graceful: gateway, then services (SIGTERM, drained), Kafka, PostgreSQL
#   cluster.sh kill SERVICE [N]   kill -9 replica N (default 1) of SERVICE
#   cluster.sh start-replica SERVICE N   start a replica again (same port, same settings)
#   cluster.sh rolling-restart [SERVICE]  every replica (of SERVICE, or of all), one at a time:
#                                 SIGTERM (drained), start, ready, then GATEWAY_SETTLE_S before
#                                 the next, so the gateway has taken it back
#   cluster.sh env                the addresses, as shell assignments (BASE, KAFKA_BOOTSTRAP, …)
#
# Environment:
#   PORT=8080            the gateway's port
#   CLUSTER_DIR          state (default <repo>/data/cluster); `up` starts from a clean one
#   AGENTLANCER_BIN      the binary (default <repo>/build/release/app/agentlancer)
#   REPLICAS=2           processes per service
#   RATE_LIMIT_SIGNUP    signups per client address (default 100000/1m: local clients share one)
#   RATE_LIMIT_ENABLED   true (default) or false: the per-client rate limits
#   KAFKA_NODES=3        Kafka brokers (each also a KRaft controller)
#   READY_TIMEOUT=180    seconds `up` waits for everything
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
PORT="${PORT:-8080}"
CLUSTER_DIR="${CLUSTER_DIR:-$repo/data/cluster}"
AGENTLANCER_BIN="${AGENTLANCER_BIN:-$repo/build/release/app/agentlancer}"
REPLICAS="${REPLICAS:-2}"
# Every local client signs up from 127.0.0.1: the public default (20/1h per address) would stop a
# load or fault run after 20 agents. Reads and writes per key keep their public defaults.
RATE_LIMIT_SIGNUP="${RATE_LIMIT_SIGNUP:-100000/1m}"
RATE_LIMIT_ENABLED="${RATE_LIMIT_ENABLED:-true}"  # benchmarks turn the per-client limits off
KAFKA_NODES="${KAFKA_NODES:-3}"
READY_TIMEOUT="${READY_TIMEOUT:-180}"
# The gateway leaves a replica it saw fail alone for 3 s (fail_timeout): a rolling restart waits
# longer than that after each replica, or the next stop could leave it no replica to send to.
GATEWAY_SETTLE_S="${GATEWAY_SETTLE_S:-4}"
SERVICES=(thread-service offer-service job-service notifier)
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"

die() { echo "cluster: $*" >&2; exit 1; }
log() { echo "cluster: $*" >&2; }

mkdir -p "$CLUSTER_DIR"
CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
kafka_dir="$CLUSTER_DIR/kafka"
pg_dir="$CLUSTER_DIR/postgres"
gw_dir="$CLUSTER_DIR/gateway"
svc_dir() { echo "$CLUSTER_DIR/services/$1-$2"; }
# Every command but `up` talks to the gateway `up` started, and starts replicas of the binary it
# started, whatever PORT and AGENTLANCER_BIN say now.
if [[ "${1:-}" != up && -s "$CLUSTER_DIR/gateway.port" ]]; then PORT="$(cat "$CLUSTER_DIR/gateway.port")"; fi
if [[ "${1:-}" != up && -s "$CLUSTER_DIR/agentlancer.bin" ]]; then AGENTLANCER_BIN="$(cat "$CLUSTER_DIR/agentlancer.bin")"; fi

free_port() { python3 "$repo/scripts/free-port.py"; }

alive() {  # <pid-file>: the pid when that process runs
  local pid
  [[ -f "$1" ]] || return 1
  pid="$(cat "$1")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # A killed process nobody has reaped yet is a zombie: gone for our purposes.
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
  echo "$pid"
}

http_status() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true; }

database_of() { echo "agentlancer_${1//-/_}"; }

start_replica() {  # <service> <n>: same port and settings as before when it ran already
  local service="$1" n="$2" dir port
  dir="$(svc_dir "$service" "$n")"
  mkdir -p "$dir/data"
  [[ -s "$dir/port" ]] || free_port >"$dir/port"
  port="$(cat "$dir/port")"
  if alive "$dir/pid" >/dev/null; then log "$service-$n already runs"; return 0; fi
  # Settings as flags (they win over any stray environment); the signing secret through the
  # environment (flags are visible in ps).
  local gateway="http://127.0.0.1:$PORT"
  (
    unset PORT DATA_DIR KAFKA_BOOTSTRAP STORAGE_URL PUBLIC_BASE_URL
    export AGENTLANCER_AUTH_SECRETS="$(cat "$CLUSTER_DIR/auth.secrets")"
    nohup "$AGENTLANCER_BIN" "$service" --port "$port" --data_dir "$dir/data" \
      --kafka.bootstrap "$(cat "$kafka_dir/bootstrap")" --storage.url "$(cat "$CLUSTER_DIR/storage.url.$service")" \
      --http.public_base_url "$gateway" --http.trusted_proxies 127.0.0.1/32 \
      --rate_limit.replicas "$REPLICAS" --rate_limit.signup "$RATE_LIMIT_SIGNUP" --rate_limit.enabled "$RATE_LIMIT_ENABLED" \
      --webhooks.allowed_cidrs none \
      >>"$dir/log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
  )
}

wait_until() {  # <what> <command…>: polls until it succeeds or READY_TIMEOUT passes
  local what="$1" deadline=$(( $(date +%s) + READY_TIMEOUT )); shift
  until "$@"; do
    (( $(date +%s) < deadline )) || { log "$what not ready after ${READY_TIMEOUT}s"; return 1; }
    sleep 0.5
  done
}

replica_ready() { [[ "$(http_status "http://127.0.0.1:$(cat "$(svc_dir "$1" "$2")/port")/readyz")" == 200 ]]; }

all_ready() {
  local s n
  for s in "${SERVICES[@]}"; do
    for ((n = 1; n <= REPLICAS; n++)); do replica_ready "$s" "$n" || return 1; done
  done
  # Our nginx, not whatever else answers on the port.
  alive "$gw_dir/nginx.pid" >/dev/null && [[ "$(http_status "http://127.0.0.1:$PORT/healthz")" == 200 ]]
}

port_taken() { python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null && return 1 || return 0; }

cmd_up() {
  [[ -x "$AGENTLANCER_BIN" ]] || die "no binary at $AGENTLANCER_BIN (make build-release, or set AGENTLANCER_BIN)"
  [[ -x "$NGINX" ]] || die "nginx not found (apt-get install nginx-light)"
  if alive "$gw_dir/nginx.pid" >/dev/null || [[ -f "$CLUSTER_DIR/up" ]]; then
    log "a cluster runs in $CLUSTER_DIR: stopping it first"; cmd_stop
  fi
  port_taken "$PORT" && die "127.0.0.1:$PORT is already in use (another gateway or cluster?): stop it, or choose another PORT"
  rm -rf "$CLUSTER_DIR"/services "$gw_dir" "$CLUSTER_DIR"/storage.url.* "$kafka_dir"
  AGENTLANCER_BIN="$(cd "$(dirname "$AGENTLANCER_BIN")" && pwd)/$(basename "$AGENTLANCER_BIN")"
  echo "$AGENTLANCER_BIN" >"$CLUSTER_DIR/agentlancer.bin"
  local t0; t0=$(date +%s)

  log "PostgreSQL 15 …"
  PG_FIXTURE_WATCH_PID=0 bash "$repo/tests/pg_fixture.sh" stop "$pg_dir" >/dev/null 2>&1 || true
  PG_FIXTURE_WATCH_PID=0 bash "$repo/tests/pg_fixture.sh" start "$pg_dir" >/dev/null
  local admin; admin="$(cat "$pg_dir/url")"
  local s
  for s in "${SERVICES[@]}"; do
    "$(cat "$pg_dir/bindir")/psql" -q -X -v ON_ERROR_STOP=1 "$admin" -c "CREATE DATABASE $(database_of "$s")" >/dev/null
    echo "${admin%/*}/$(database_of "$s")" >"$CLUSTER_DIR/storage.url.$s"
  done

  log "Kafka: $KAFKA_NODES brokers (KRaft) …"
  bash "$repo/scripts/kafka/kafka-cluster.sh" start "$kafka_dir" "$KAFKA_NODES" >/dev/null
  bash "$repo/scripts/kafka/kafka-cluster.sh" create-topics "$kafka_dir" "$repo/deploy/topics.tsv"

  [[ -s "$CLUSTER_DIR/auth.secrets" ]] || { echo "k1:$(openssl rand -hex 32)" >"$CLUSTER_DIR/auth.secrets"; chmod 600 "$CLUSTER_DIR/auth.secrets"; }
  log "services: ${#SERVICES[@]} × $REPLICAS replicas …"
  local n
  for s in "${SERVICES[@]}"; do
    for ((n = 1; n <= REPLICAS; n++)); do start_replica "$s" "$n"; done
  done

  log "gateway (nginx) on 127.0.0.1:$PORT …"
  mkdir -p "$gw_dir/tmp"
  local upstreams=() servers
  for s in "${SERVICES[@]}"; do
    servers=""
    for ((n = 1; n <= REPLICAS; n++)); do servers+="${servers:+,}127.0.0.1:$(cat "$(svc_dir "$s" "$n")/port")"; done
    upstreams+=("$s=$servers")
  done
  python3 "$here/gateway.py" "$repo/deploy/gateway/routes.tsv" "$gw_dir" "$PORT" "${upstreams[@]}" >"$gw_dir/nginx.conf"
  "$NGINX" -t -q -c "$gw_dir/nginx.conf" -p "$gw_dir" 2>>"$gw_dir/error.log" || die "nginx refused its configuration (see $gw_dir/error.log)"
  nohup "$NGINX" -c "$gw_dir/nginx.conf" -p "$gw_dir" >>"$gw_dir/error.log" 2>&1 </dev/null &
  touch "$CLUSTER_DIR/up"
  echo "$PORT" >"$CLUSTER_DIR/gateway.port"

  wait_until "the cluster" all_ready || { cmd_status || true; exit 1; }
  log "ready in $(( $(date +%s) - t0 ))s: BASE=http://127.0.0.1:$PORT"
}

cmd_status() {
  local ok=0 s n dir pid state
  printf '%-18s %-8s %-7s %s\n' PROCESS PID PORT STATE
  if pid="$(alive "$gw_dir/nginx.pid")"; then
    state=$([[ "$(http_status "http://127.0.0.1:$PORT/healthz")" == 200 ]] && echo ready || echo "not ready")
  else pid="-"; state="stopped"; fi
  [[ "$state" == ready ]] || ok=1
  printf '%-18s %-8s %-7s %s\n' gateway "$pid" "$PORT" "$state"
  for s in "${SERVICES[@]}"; do
    for ((n = 1; n <= REPLICAS; n++)); do
      dir="$(svc_dir "$s" "$n")"
      if pid="$(alive "$dir/pid")"; then
        local code; code="$(http_status "http://127.0.0.1:$(cat "$dir/port")/readyz")"
        state=$([[ "$code" == 200 ]] && echo ready || echo "not ready ($code)")
      else pid="-"; state="stopped"; fi
      [[ "$state" == ready ]] || ok=1
      printf '%-18s %-8s %-7s %s\n' "$s-$n" "$pid" "$(cat "$dir/port" 2>/dev/null || echo -)" "$state"
    done
  done
  if [[ -f "$kafka_dir/nodes" ]]; then
    local line
    local name state rest pid addr
    while read -r name state rest; do
      if [[ "$state" == running ]]; then pid="${rest%% *}"; pid="${pid#pid=}"; addr="${rest##* }"; else pid="-"; addr="$rest"; ok=1; fi
      printf '%-18s %-8s %-7s %s\n' "$name" "$pid" "${addr##*:}" "$([[ $state == running ]] && echo ready || echo stopped)"
    done < <(bash "$repo/scripts/kafka/kafka-cluster.sh" status "$kafka_dir" || true)
  fi
  if [[ -f "$pg_dir/port" ]] && timeout 5 "$(cat "$pg_dir/bindir")/pg_isready" -q -h 127.0.0.1 -p "$(cat "$pg_dir/port")" -U postgres -d postgres -t 2; then
    printf '%-18s %-8s %-7s %s\n' postgresql "$(head -1 "$pg_dir/data/postmaster.pid" 2>/dev/null || echo -)" "$(cat "$pg_dir/port")" ready
  else
    printf '%-18s %-8s %-7s %s\n' postgresql - "$(cat "$pg_dir/port" 2>/dev/null || echo -)" stopped; ok=1
  fi
  return $ok
}

cmd_logs() {
  local name="${1:-}" f
  for f in "$gw_dir/error.log" "$gw_dir/access.log" "$CLUSTER_DIR"/services/*/log "$kafka_dir"/node*/kafka.log "$pg_dir/postgres.log"; do
    [[ -f "$f" ]] || continue
    [[ -z "$name" || "$f" == *"$name"* ]] || continue
    echo "==> ${f#"$CLUSTER_DIR"/} <=="
    tail -n "${LINES_PER_LOG:-20}" "$f"
  done
}

stop_pid_file() {  # <pid-file> <seconds>: SIGTERM, then SIGKILL after the grace period
  local pid i
  pid="$(alive "$1")" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  log "pid $pid still alive after $2 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true
}

cmd_stop() {
  local s n
  # The gateway first (no new requests), then the services drain what they have, then the rest.
  stop_pid_file "$gw_dir/nginx.pid" 10
  for s in "${SERVICES[@]}"; do
    for ((n = 1; n <= REPLICAS; n++)); do stop_pid_file "$(svc_dir "$s" "$n")/pid" 30 & done
  done
  wait
  bash "$repo/scripts/kafka/kafka-cluster.sh" stop "$kafka_dir" >/dev/null 2>&1 || true
  PG_FIXTURE_WATCH_PID=0 bash "$repo/tests/pg_fixture.sh" stop "$pg_dir" >/dev/null 2>&1 || true
  rm -f "$CLUSTER_DIR/up"
  log "stopped (logs kept in $CLUSTER_DIR)"
}

cmd_kill() {
  local service="${1:-}" n="${2:-1}" pid
  [[ " ${SERVICES[*]} " == *" $service "* ]] || die "SERVICE must be one of: ${SERVICES[*]}"
  pid="$(alive "$(svc_dir "$service" "$n")/pid")" || die "$service-$n is not running"
  kill -KILL "$pid"
  log "killed $service-$n (pid $pid)"
}

cmd_rolling_restart() {
  local services=("${SERVICES[@]}") s n
  if [[ -n "${1:-}" ]]; then
    [[ " ${SERVICES[*]} " == *" $1 "* ]] || die "SERVICE must be one of: ${SERVICES[*]}"
    services=("$1")
  fi
  for s in "${services[@]}"; do
    for ((n = 1; n <= REPLICAS; n++)); do
      log "restarting $s-$n"
      stop_pid_file "$(svc_dir "$s" "$n")/pid" 30
      start_replica "$s" "$n"
      wait_until "$s-$n" replica_ready "$s" "$n"
      sleep "$GATEWAY_SETTLE_S"
    done
  done
  log "rolling restart done"
}

cmd_env() {
  echo "BASE=http://127.0.0.1:$PORT"
  echo "KAFKA_BOOTSTRAP=$(cat "$kafka_dir/bootstrap" 2>/dev/null)"
  echo "POSTGRES_URL=$(cat "$pg_dir/url" 2>/dev/null)"
}

case "${1:-}" in
  up) cmd_up ;;
  status) cmd_status ;;
  logs) shift; cmd_logs "$@" ;;
  stop) cmd_stop ;;
  kill) shift; cmd_kill "$@" ;;
  start-replica) shift; start_replica "$@" ;;
  rolling-restart) shift; cmd_rolling_restart "$@" ;;
  env) cmd_env ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
