#!/usr/bin/env bash
# ctest fixture: a real single-node Kafka (KRaft) for the tests that need one.
#   kafka_fixture.sh start <state-dir> | stop <state-dir>
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kafka="$here/../scripts/kafka/kafka.sh"
case "${1:-}" in
  start)
    bash "$kafka" start "$2"
    pids=()
    for topic in agentlancer.agents.v1 agentlancer.services.v1 agentlancer.threads.v1 agentlancer.offers.v1 agentlancer.contracts.v1 agentlancer.jobs.v1; do
      bash "$kafka" create-topic "$2" "$topic" 3 >/dev/null & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    echo "kafka ready at $(cat "$2/bootstrap")"
    ;;
  stop) bash "$kafka" stop "$2" ;;
  *) echo "usage: $0 start|stop <state-dir>" >&2; exit 2 ;;
esac
