#!/usr/bin/env bash
# The fault suite (ctest `cluster_faults`, label cluster): on the local cluster (3 Kafka brokers,
# PostgreSQL, two replicas of each service, the nginx gateway), a client load runs whole stories at
# a fixed rate through the gateway with socket.io peers (tests/fault/storyload.js) while, one phase
# after another:
#   baseline    nothing fails (the reference figures)
#   kill9       kill -9 one replica of each service in turn (the outbox publisher's, where there is
#               one), then start it again
#   broker      one Kafka broker stopped for 60 s, then started
#   postgres    PostgreSQL stopped for 10 s, then started
#   rolling     every replica restarted with SIGTERM, one at a time (GETs must see no error)
# After each phase the reconciliation checker (tests/fault/reconcile.py) proves, over everything
# so far, that nothing acknowledged was lost and nothing was duplicated, and prints the figures.
#
#   fault_suite.sh <agentlancer binary> <repo>
# Environment: FAULT_RATE (stories per second, default 1), FAULT_PHASES (default: all five, in
# order), BROKER_DOWN_S (60), POSTGRES_DOWN_S (10), FAULT_KEEP=1 (keep the load records). With CLUSTER_DIR naming a running cluster
# (`make cluster`) and FAULT_USE_RUNNING=1 it runs against that one and leaves it running (and
# skips the sabotage step, which would leave its planted breaks in that cluster).
set -euo pipefail
bin="$1"
repo="$2"
rate="${FAULT_RATE:-1}"
phases="${FAULT_PHASES:-baseline kill9 broker postgres rolling}"
broker_down="${BROKER_DOWN_S:-60}"
postgres_down="${POSTGRES_DOWN_S:-10}"
cluster() { bash "$repo/scripts/cluster/cluster.sh" "$@"; }
# shellcheck source=lib.sh
source "$repo/tests/fault/lib.sh"

if [[ "${FAULT_USE_RUNNING:-0}" == 1 ]]; then
  [[ -n "${CLUSTER_DIR:-}" ]] || { echo "FAULT_USE_RUNNING needs CLUSTER_DIR" >&2; exit 2; }
  work="$(mktemp -d /tmp/agentlancer-faults-XXXXXX)"
  own_cluster=0
else
  work="$(mktemp -d /tmp/agentlancer-faults-XXXXXX)"
  chmod 755 "$work"  # PostgreSQL runs as its own user and must reach its data dir in here
  export CLUSTER_DIR="$work/cluster" AGENTLANCER_BIN="$bin"
  export PORT="$(python3 "$repo/scripts/free-port.py")"
  own_cluster=1
fi
cleanup() {
  local rc=$?
  if (( rc != 0 || fail != 0 )); then LINES_PER_LOG=15 cluster logs services || true; fi
  (( own_cluster )) && cluster stop >/dev/null 2>&1 || true
  if [[ "${FAULT_KEEP:-0}" == 1 ]]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

(( own_cluster )) && cluster up
base="$(cluster env | sed -n 's/^BASE=//p')"
kafka_dir="$CLUSTER_DIR/kafka"
pg_dir="$CLUSTER_DIR/postgres"
services=(thread-service offer-service job-service notifier)
say() { echo "[$(date +%H:%M:%S)] $*"; }

replica_ready() { [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$(cat "$CLUSTER_DIR/services/$1-$2/port")/readyz")" == 200 ]]; }
all_ready() { cluster status >/dev/null 2>&1; }

# The replica whose relay holds the outbox publisher lease (its pid is in the holder's name), so
# that the kill lands on the process that was publishing; 1 for the notifier, which publishes nothing.
publisher_of() {
  local service="$1" holder n
  [[ "$service" == notifier ]] && { echo 1; return; }
  holder="$(PGOPTIONS="-c search_path=${service//-/_}" "$(cat "$pg_dir/bindir")/psql" -X -At \
    "$(cat "$CLUSTER_DIR/storage.url.$service")" -c "SELECT holder FROM relay_leases WHERE expires_at > 0 LIMIT 1" 2>/dev/null || true)"
  for n in 1 2; do
    [[ "$holder" == *"@$(cat "$CLUSTER_DIR/services/$service-$n/pid")."* ]] && { echo "$n"; return; }
  done
  echo 1
}

fault_kill9() {
  local s n
  for s in "${services[@]}"; do
    n="$(publisher_of "$s")"
    say "kill -9 $s-$n"
    cluster kill "$s" "$n"
    sleep 6
    cluster start-replica "$s" "$n"
    wait_for 120 replica_ready "$s" "$n" || say "$s-$n not ready after 120 s"
    say "$s-$n back"
    sleep 3
  done
}

fault_broker() {
  say "Kafka broker 1 stopped for ${broker_down} s"
  bash "$repo/scripts/kafka/kafka-cluster.sh" stop-node "$kafka_dir" 1 >/dev/null
  sleep "$broker_down"
  bash "$repo/scripts/kafka/kafka-cluster.sh" start-node "$kafka_dir" 1 >/dev/null
  say "Kafka broker 1 started"
  sleep 5
}

fault_postgres() {
  say "PostgreSQL stopped for ${postgres_down} s"
  PG_FIXTURE_WATCH_PID=0 bash "$repo/tests/pg_fixture.sh" pause "$pg_dir" >/dev/null
  sleep "$postgres_down"
  PG_FIXTURE_WATCH_PID=0 bash "$repo/tests/pg_fixture.sh" resume "$pg_dir" >/dev/null
  say "PostgreSQL started"
  wait_for 120 all_ready || say "not every replica ready 120 s after PostgreSQL returned"
  sleep 5
}

fault_rolling() {
  cluster rolling-restart
  sleep 3
}

fault_baseline() { sleep 15; }

loads=()
for phase in $phases; do
  say "=== phase $phase (load: $rate stories/s) ==="
  out="$work/load-$phase.json"
  stop="$work/stop-$phase"
  node "$repo/tests/fault/storyload.js" --base "$base" --phase "$phase" --rate "$rate" --seconds 600 \
    --stop-file "$stop" --out "$out" &
  load_pid=$!
  sleep 3  # the load is running when the fault starts
  "fault_$phase"
  touch "$stop"
  wait "$load_pid" || { echo "FAILED: the load of phase $phase crashed"; fail=1; continue; }
  loads+=("$out")
  quiet=()
  [[ "$phase" == rolling ]] && quiet=(--quiet-gets rolling)
  say "reconciliation after $phase"
  # The checker's report goes to the log and (the latest, which covers every phase so far) to
  # $work/figures.txt, printed by `make test` after ctest (FAULT_FIGURES_FILE).
  check "reconciliation after $phase: nothing lost, nothing twice" \
    bash -c '"$@" | tee "$0"; exit "${PIPESTATUS[0]}"' "$work/figures.txt" \
    python3 "$repo/tests/fault/reconcile.py" --cluster-dir "$CLUSTER_DIR" --bin "$bin" --base "$base" "${quiet[@]}" "${loads[@]}"
done
# --- the checker catches what it is there to catch ----------------------------------------------
# With everything reconciled, break each guarantee once on purpose and require the checker to
# name every break: an acknowledged write that is not in the database, an event published twice,
# an entry gone from an agent's log, and a socket that missed an event.
if (( ${#loads[@]} > 0 && fail == 0 )) && [[ "${FAULT_USE_RUNNING:-0}" != 1 ]]; then
  say "sabotage: the checker must find four planted faults"
  last="${loads[${#loads[@]}-1]}"
  sabotaged="$work/load-sabotaged.json"
  python3 - "$last" "$sabotaged" <<'PY'
import json, sys
load = json.load(open(sys.argv[1]))
acked = next(r for r in load["requests"] if r["write"] and r["kind"] == "ok")
load["requests"].append({**acked, "request_id": "fs-sabotage-never-sent"})
socket = next(w for w in load["sockets"] if len(w["ids"]) > 2)
del socket["ids"][1]
load["phase"] = "sabotaged"
json.dump(load, open(sys.argv[2], "w"))
PY
  # One event produced a second time, as a relay without the read-back would after a crash.
  victim="$("$bin" tail-events --bootstrap "$(cat "$kafka_dir/bootstrap")" --to-end --topic agentlancer.jobs.v1 --max 1)"
  cut -f2- <<<"$victim" | "${JAVA:-java}" -Xmx128m -cp "${KAFKA_LIB_DIR:-$repo/.cache/kafka/lib}/*" kafka.tools.ConsoleProducer \
    --bootstrap-server "$(cat "$kafka_dir/bootstrap")" --topic agentlancer.jobs.v1 \
    --property parse.key=true --property "key.separator=$(printf '\t')" >/dev/null 2>&1
  # One agent-log entry lost.
  PGOPTIONS="-c search_path=notifier" "$(cat "$pg_dir/bindir")/psql" -X -q "$(cat "$CLUSTER_DIR/storage.url.notifier")" \
    -c "DELETE FROM agent_events WHERE ctid = (SELECT ctid FROM agent_events ORDER BY created_at DESC LIMIT 1)" >/dev/null
  verdict="$(python3 "$repo/tests/fault/reconcile.py" --cluster-dir "$CLUSTER_DIR" --bin "$bin" --base "$base" \
    "${loads[@]:0:${#loads[@]}-1}" "$sabotaged" 2>&1 || true)"
  check "sabotage: the checker fails the run" grep -q "^reconciliation: [0-9]* problems" <<<"$verdict"
  check "sabotage: a 2xx write missing from the database is found" grep -q "writes answered 2xx but their change is not in the database" <<<"$verdict"
  check "sabotage: an event twice on Kafka is found" grep -q "events are on Kafka more than once" <<<"$verdict"
  check "sabotage: an entry missing from an agent's log is found" grep -q "missing from an audience member's log" <<<"$verdict"
  check "sabotage: a socket that missed an event is found" grep -q "its socket saw" <<<"$verdict"
  found=0
  for planted in "writes answered 2xx but their change is not in the database" "events are on Kafka more than once" \
      "missing from an audience member's log" "its socket saw"; do
    grep -q "$planted" <<<"$verdict" && found=$((found + 1))
  done
  echo "sabotage: the checker named $found of the 4 planted breaks" >>"$work/figures.txt"
  (( fail == 0 )) || echo "$verdict" | tail -12
fi
verdict_line="cluster_faults: $( (( fail == 0 )) && echo ok || echo FAILED)"
echo "$verdict_line"
if [[ -n "${FAULT_FIGURES_FILE:-}" ]]; then
  { cat "$work/figures.txt" 2>/dev/null; echo "$verdict_line"; } >"$FAULT_FIGURES_FILE"
fi
exit "$fail"
