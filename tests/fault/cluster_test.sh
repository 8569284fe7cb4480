#!/usr/bin/env bash
# The local cluster end to end (ctest label `cluster`): `scripts/cluster/cluster.sh up` (3 Kafka
# brokers, PostgreSQL, two replicas of each service, the nginx gateway), then through the gateway:
#   - the gateway's route table matches the services (every path reaches a handler of its service
#     and only there), unknown paths get the JSON 404;
#   - X-Request-Id is made when absent and kept when sent;
#   - the README walk-through and the README's socket.io snippet, unchanged, with BASE = gateway;
#   - sockets through the gateway get every event once, in order;
#   - a revoked API key is refused by every service (learnt from Kafka), both replicas;
#   - kill -9 of a replica: GETs through the gateway keep answering 200, the replica comes back;
#   - a graceful stop leaves no process behind.
#   cluster_test.sh <agentlancer binary> <repo>
set -euo pipefail
bin="$1"
repo="$2"
work="$(mktemp -d /tmp/agentlancer-cluster-XXXXXX)"
chmod 755 "$work"  # PostgreSQL runs as its own user and must reach its data dir in here
export CLUSTER_DIR="$work/cluster" AGENTLANCER_BIN="$bin"
export PORT="$(python3 "$repo/scripts/free-port.py")"  # below the ephemeral range
cluster() { bash "$repo/scripts/cluster/cluster.sh" "$@"; }
# shellcheck source=lib.sh
source "$repo/tests/fault/lib.sh"
cleanup() {
  local rc=$?
  if (( rc != 0 || fail != 0 )); then LINES_PER_LOG=25 cluster logs services || true; LINES_PER_LOG=10 cluster logs gateway || true; fi
  cluster stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

cluster up
cluster status
base="http://127.0.0.1:$PORT"

# --- the route table against the services ------------------------------------------------------
port_of() { cat "$CLUSTER_DIR/services/$1-1/port"; }
router_404='{"error":"Not found","code":"not_found"}'
routes_ok=1
while IFS=$'\t' read -r pattern owner; do
  [[ -z "$pattern" || "$pattern" == \#* ]] && continue
  path="${pattern//\{id\}/x1}"; path="${path//\{memoId\}/m1}"; path="${path//\{key_id\}/k1}"
  for service in thread-service offer-service job-service notifier; do
    body="$(curl -s -m 5 "http://127.0.0.1:$(port_of "$service")$path")"
    if [[ "$service" == "$owner" && "$body" == "$router_404" ]]; then
      echo "route $pattern: $owner has no handler for it"; routes_ok=0
    elif [[ "$service" != "$owner" && "$body" != "$router_404" ]]; then
      echo "route $pattern: $service answers it too ($body)"; routes_ok=0
    fi
  done
done <"$repo/deploy/gateway/routes.tsv"
check "every route of deploy/gateway/routes.tsv is its service's, and only its" test "$routes_ok" = 1
check "an unknown path gets the gateway's JSON 404" test "$(curl -s "$base/api/nope")" = "$router_404"

# --- request ids --------------------------------------------------------------------------------
made="$(curl -s -D - -o /dev/null "$base/api/services" | tr -d '\r' | sed -n 's/^x-request-id: //Ip')"
check "X-Request-Id made by the gateway when absent ($made)" grep -Eq '^[0-9a-f]{32}$' <<<"$made"
kept="$(curl -s -D - -o /dev/null -H 'X-Request-Id: cluster-test-1' "$base/api/services" | tr -d '\r' | sed -n 's/^x-request-id: //Ip')"
check "X-Request-Id kept when sent" test "$kept" = "cluster-test-1"

# --- the README, unchanged, against the gateway --------------------------------------------------
check "README walk-through through the gateway" env BASE="$base" bash "$repo/tests/readme_walkthrough_test.sh" - "$repo/README.md"
check "socket.io through the gateway (README snippet; every event once, in order)" \
  env CLUSTER_BASE="$base" node --test "$repo/tests/socketio/cluster.test.js"

# --- a revoked API key: every service (its own process and database) refuses it ----------------
check "a revoked key is refused by every service through the gateway" python3 "$repo/tests/fault/revocation_check.py" "$base"

# --- a replica killed: the gateway keeps answering ----------------------------------------------
cluster kill thread-service 1
statuses=""
for i in $(seq 1 40); do statuses+="$(curl -s -o /dev/null -w '%{http_code}' "$base/api/services") "; done
check "40 GETs through the gateway with thread-service-1 killed: all 200" \
  test -z "$(tr ' ' '\n' <<<"$statuses" | grep -v '^200$' | grep -v '^$' || true)"
check "status names the killed replica" bash -c "bash '$repo/scripts/cluster/cluster.sh' status | grep -q 'thread-service-1 .*stopped'"
cluster start-replica thread-service 1
cluster_ready() { cluster status >/dev/null 2>&1; }
wait_for 120 cluster_ready || true
check "the replica is back and everything ready" cluster status

# --- a graceful stop ----------------------------------------------------------------------------
pids="$(cat "$CLUSTER_DIR"/services/*/pid "$CLUSTER_DIR/gateway/nginx.pid" 2>/dev/null | tr '\n' ' ')"
cluster stop
left=""
for p in $pids; do kill -0 "$p" 2>/dev/null && left+="$p "; done
check "cluster stop leaves no service or gateway process ($pids)" test -z "$left"
(( fail == 0 )) && echo "cluster: ok"
exit "$fail"
