#!/usr/bin/env bash
# A real N-broker Apache Kafka cluster in KRaft mode (every node broker and controller), from the
# same Maven Central jars as kafka.sh, on loopback only.
#
#   kafka-cluster.sh start <dir> [nodes=3]       -> prints the bootstrap list (host:port,…)
#   kafka-cluster.sh stop <dir>
#   kafka-cluster.sh stop-node <dir> <n>         (SIGTERM; its data stays)
#   kafka-cluster.sh start-node <dir> <n>        (same ports, same data)
#   kafka-cluster.sh status <dir>
#   kafka-cluster.sh create-topics <dir> <topics.tsv>   (name, partitions, replicas, min.insync.replicas)
#
# Environment: as kafka.sh (KAFKA_HEAP_OPTS defaults to -Xmx384m here: three JVMs on one machine).
set -euo pipefail
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx384m}"
# shellcheck source=kafka.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/kafka.sh"

node_dir() { echo "$1/node$2"; }
nodes_of() { cat "$1/nodes"; }

free_port_list() { python3 "$REPO_ROOT/scripts/free-port.py" "$1"; }  # <count> free loopback ports

write_node_properties() {  # <node-dir> <id> <port> <controller-port> <voters>
  local nd="$1" id="$2" port="$3" cport="$4" voters="$5"
  cat >"$nd/server.properties" <<PROPS
# Written by scripts/kafka/kafka-cluster.sh: node $id of a KRaft cluster, loopback only.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$nd/data
# Topics come from deploy/topics.tsv, never from a typo in a client.
auto.create.topics.enable=false
num.partitions=6
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=6
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
PROPS
  echo "127.0.0.1:$port" >"$nd/bootstrap"
}

# Starts the given nodes at once (a KRaft node is ready only once a quorum of controllers
# runs), then waits for each. Returns 2 when a port was taken before a node bound it.
launch_nodes() {
  local dir="$1"; shift
  local pids=() n status=0 s
  for n in "$@"; do
    ( launch "$(node_dir "$dir" "$n")" ) & pids+=($!)
  done
  for p in "${pids[@]}"; do
    s=0; wait "$p" || s=$?
    (( s > status )) && status=$s
  done
  return "$status"
}

cmd_cluster_start() {
  local dir="${1:-}" count="${2:-3}" attempt status ports voters n id cid
  [[ -n "$dir" ]] || usage
  mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  cmd_fetch
  cmd_cluster_stop "$dir" 2>/dev/null || true
  for attempt in 1 2 3; do
    rm -rf "$dir"/node* "$dir/bootstrap"
    read -r -a ports < <(free_port_list $((2 * count)))
    voters=""
    for ((id = 1; id <= count; id++)); do
      voters+="${voters:+,}$id@127.0.0.1:${ports[$((2 * id - 1))]}"
    done
    cid="$(run_tool "$dir" kafka.tools.StorageTool random-uuid | tail -n1)"
    for ((id = 1; id <= count; id++)); do
      n="$(node_dir "$dir" "$id")"; mkdir -p "$n"
      write_node_properties "$n" "$id" "${ports[$((2 * id - 2))]}" "${ports[$((2 * id - 1))]}" "$voters"
      write_log4j "$n"
      run_tool "$n" kafka.tools.StorageTool format -t "$cid" -c "$n/server.properties" >"$n/format.log" 2>&1 \
        || { cat "$n/format.log" >&2; die "storage format failed (node $id)"; }
    done
    echo "$count" >"$dir/nodes"; echo "$cid" >"$dir/cluster.id"
    status=0
    launch_nodes "$dir" $(seq 1 "$count") || status=$?
    (( status == 0 )) && break
    for ((id = 1; id <= count; id++)); do cmd_stop "$(node_dir "$dir" "$id")" >/dev/null 2>&1 || true; done
    (( status == 2 )) || die "the cluster did not start"
    log "a port was taken before a node bound it (attempt $attempt); choosing others"
  done
  (( status == 0 )) || die "the cluster could not bind free ports in 3 attempts"
  local list=""
  for ((id = 1; id <= count; id++)); do list+="${list:+,}$(cat "$(node_dir "$dir" "$id")/bootstrap")"; done
  echo "$list" >"$dir/bootstrap"
  echo "$list"
}

cmd_cluster_stop() {
  local dir="${1:-}" id
  [[ -n "$dir" && -f "$dir/nodes" ]] || return 0
  for ((id = 1; id <= $(nodes_of "$dir"); id++)); do cmd_stop "$(node_dir "$dir" "$id")" || true; done
}

cmd_stop_node() {
  [[ -n "${1:-}" && -n "${2:-}" ]] || usage
  cmd_stop "$(node_dir "$(cd "$1" && pwd)" "$2")"
}

cmd_start_node() {
  [[ -n "${1:-}" && -n "${2:-}" ]] || usage
  local dir; dir="$(cd "$1" && pwd)"
  [[ -f "$(node_dir "$dir" "$2")/server.properties" ]] || die "no node $2 in $dir"
  launch_nodes "$dir" "$2"
}

cmd_cluster_status() {
  local dir="${1:-}" id pid up=0
  [[ -n "$dir" && -f "$dir/nodes" ]] || { echo "stopped"; return 1; }
  dir="$(cd "$dir" && pwd)"
  for ((id = 1; id <= $(nodes_of "$dir"); id++)); do
    if pid="$(running_pid "$(node_dir "$dir" "$id")")"; then
      echo "kafka-$id running pid=$pid $(cat "$(node_dir "$dir" "$id")/bootstrap")"; up=$((up + 1))
    else
      echo "kafka-$id stopped $(cat "$(node_dir "$dir" "$id")/bootstrap")"
    fi
  done
  (( up == $(nodes_of "$dir") ))
}

cmd_create_topics() {
  local dir="${1:-}" file="${2:-}" name parts replicas isr
  [[ -n "$dir" && -f "$file" ]] || usage
  dir="$(cd "$dir" && pwd)"
  while IFS=$'\t' read -r name parts replicas isr; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    run_tool "$dir" org.apache.kafka.tools.TopicCommand --bootstrap-server "$(cat "$dir/bootstrap")" \
      --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor "$replicas" \
      --config "min.insync.replicas=$isr" >/dev/null
  done <"$file"
}

case "${1:-}" in
  start) shift; cmd_cluster_start "$@" ;;
  stop) shift; cmd_cluster_stop "$@" ;;
  stop-node) shift; cmd_stop_node "$@" ;;
  start-node) shift; cmd_start_node "$@" ;;
  status) shift; cmd_cluster_status "$@" ;;
  create-topics) shift; cmd_create_topics "$@" ;;
  *) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
