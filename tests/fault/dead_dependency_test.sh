#!/usr/bin/env bash
# Behaviour under a dead dependency (ctest label `cluster`), one service process of each kind in
# one `agentlancer all` on its own PostgreSQL and its own real Kafka broker:
#   - PostgreSQL down: writes and reads get 503 with Retry-After promptly (no hang, no 500),
#     /readyz says the database is missing; when it is back the service recovers by itself;
#   - Kafka fully down: writes are still accepted (the outbox holds them), /readyz says the broker
#     is missing; when it is back the held events are published.
#   dead_dependency_test.sh <agentlancer binary> <repo>
set -euo pipefail
bin="$1"
repo="$2"
work="$(mktemp -d /tmp/agentlancer-deaddep-XXXXXX)"
chmod 755 "$work"  # PostgreSQL runs as its own user and must reach its data dir in here
server=""
# shellcheck source=lib.sh
source "$repo/tests/fault/lib.sh"
cleanup() {
  local rc=$?
  if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  (( fail == 0 && rc == 0 )) || tail -n 30 "$work/server.log" 2>/dev/null || true
  bash "$repo/tests/kafka_fixture.sh" stop "$work/kafka" >/dev/null 2>&1 || true
  PG_FIXTURE_WATCH_PID=0 bash "$repo/tests/pg_fixture.sh" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

PG_FIXTURE_WATCH_PID=0 bash "$repo/tests/pg_fixture.sh" start "$work/pg" >/dev/null
bash "$repo/tests/kafka_fixture.sh" start "$work/kafka" >/dev/null
port="$(python3 "$repo/scripts/free-port.py")"
base="http://127.0.0.1:$port"
"$bin" all --port "$port" --data_dir "$work/data" --storage.url "$(cat "$work/pg/url")" \
  --kafka.bootstrap "$(cat "$work/kafka/bootstrap")" 2>"$work/server.log" &
server=$!
ready() { [[ "$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$base/readyz")" == 200 ]]; }
wait_for 90 ready || { echo "server not ready"; tail -30 "$work/server.log"; exit 1; }

signup() { curl -sS -X POST "$base/api/agent/signup" -H 'content-type: application/json' -d "{\"name\":\"$1\"}"; }
client="$(signup dead-dep-client)"; provider="$(signup dead-dep-provider)"
client_key="$(jq -r .api_key <<<"$client")"; provider_id="$(jq -r .agent_id <<<"$provider")"
create() {  # prints "<status> <seconds>" and leaves headers and body in $work/last.*
  curl -s -o "$work/last.body" -D "$work/last.headers" -m 30 -w '%{http_code} %{time_total}\n' \
    -X POST "$base/api/agents/jobs" -H 'content-type: application/json' -H "x-api-key: $client_key" \
    -d "{\"providerId\":\"$provider_id\",\"serviceRequirement\":\"x\",\"budget\":\"1\",\"tokenAddress\":\"0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913\"}"
}
created_ok() { [[ "$(create | cut -d' ' -f1)" == 201 ]]; }
wait_for 30 created_ok || { echo "the agents never became known to job-service"; exit 1; }
job_id="$(jq -r .id "$work/last.body")"

# --- PostgreSQL down ----------------------------------------------------------------------------
PG_FIXTURE_WATCH_PID=0 bash "$repo/tests/pg_fixture.sh" pause "$work/pg"
read -r status seconds < <(create)
check "a write while PostgreSQL is down: 503 (got $status in ${seconds}s)" test "$status" = 503
check "… within 3 s" python3 -c "import sys; sys.exit(0 if $seconds < 3 else 1)"
check "… with Retry-After" grep -qi '^retry-after: ' "$work/last.headers"
check "… and the error code unavailable" test "$(jq -r .code "$work/last.body")" = unavailable
read -r status seconds < <(curl -s -o "$work/last.body" -D "$work/last.headers" -m 30 -w '%{http_code} %{time_total}\n' \
  -H "x-api-key: $client_key" "$base/api/agents/jobs/$job_id")
check "a read while PostgreSQL is down: 503 with Retry-After (got $status in ${seconds}s)" \
  bash -c "[[ $status == 503 ]] && grep -qi '^retry-after: ' '$work/last.headers'"
not_ready_db() { [[ "$(curl -s -m 2 "$base/readyz")" == *"database unavailable"* ]]; }
check "/readyz says the database is missing" wait_for 10 not_ready_db
check "… and so does /readyz?exclude=kafka (the Kubernetes readiness probe)" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$base/readyz?exclude=kafka")" = 503
PG_FIXTURE_WATCH_PID=0 bash "$repo/tests/pg_fixture.sh" resume "$work/pg"
check "PostgreSQL back: writes succeed again by themselves" wait_for 30 created_ok
check "… and /readyz is 200" wait_for 30 ready

# --- Kafka fully down ---------------------------------------------------------------------------
bash "$repo/scripts/kafka/kafka.sh" stop "$work/kafka" >/dev/null
held=""
for i in 1 2 3 4 5; do
  read -r status seconds < <(create)
  [[ "$status" == 201 ]] && held+="$(jq -r .id "$work/last.body") "
done
check "writes while Kafka is down are accepted (201 ×5: ids $held)" test "$(wc -w <<<"$held")" -eq 5
not_ready_kafka() { [[ "$(curl -s -m 2 "$base/readyz")" == *"cannot reach the Kafka broker"* ]]; }
check "/readyz says the broker is missing" wait_for 15 not_ready_kafka
check "… while /readyz?exclude=kafka (the Kubernetes readiness probe) is 200: the replica takes writes" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$base/readyz?exclude=kafka")" = 200
check "/readyz?exclude= names only checks it has (400 otherwise)" \
  test "$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$base/readyz?exclude=etcd")" = 400
bash "$repo/scripts/kafka/kafka.sh" restart-broker "$work/kafka" >/dev/null
check "Kafka back: /readyz is 200" wait_for 60 ready
events="$(bash "$repo/scripts/kafka/kafka.sh" consume "$work/kafka" agentlancer.jobs.v1 200 20000 2>/dev/null || true)"
missing=""
for id in $held; do grep -q "\"id\":$id[,}]" <<<"$events" || grep -q "\"subject\":\"$id\"" <<<"$events" || missing+="$id "; done
check "every job created while Kafka was down has its event on the topic (missing: ${missing:-none})" test -z "$missing"
(( fail == 0 )) && echo "dead dependencies: ok"
exit "$fail"
