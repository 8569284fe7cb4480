#!/usr/bin/env bash
# Fetch, start, use and stop a real single-node Apache Kafka broker (KRaft combined mode)
# built from Maven Central jars. Loopback (127.0.0.1) only. See README.md beside this file.
#
#   kafka.sh fetch
#   kafka.sh start <state-dir>                      -> prints 127.0.0.1:<port>
#   kafka.sh stop <state-dir>
#   kafka.sh restart-broker <state-dir> [down-s]    (same ports, same data, no reformat;
#                                                    optionally stay down for down-s seconds)
#   kafka.sh status <state-dir>
#   kafka.sh create-topic <state-dir> <name> [partitions]
#   kafka.sh produce <state-dir> <topic>            (stdin lines "key<TAB>value")
#   kafka.sh consume <state-dir> <topic> <max-messages> [timeout-ms]
#
# Environment:
#   KAFKA_LIB_DIR     jar folder (default <repo>/.cache/kafka/lib)
#   KAFKA_VERSION     force a Kafka version (default: 3.9.1, falling back to 3.9.0)
#   KAFKA_HEAP_OPTS   broker heap (default -Xmx512m)
#   KAFKA_START_TIMEOUT  seconds to wait for "Kafka Server started" (default 90)
#   JAVA              java binary (default: $JAVA_HOME/bin/java, else java on PATH)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
POM="$SCRIPT_DIR/pom.xml"
LIB_DIR="${KAFKA_LIB_DIR:-$REPO_ROOT/.cache/kafka/lib}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
if [[ -n "${JAVA:-}" ]]; then :
elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"
else JAVA=java; fi
# Small, fast-starting JVM for the command-line tools.
TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)
# Broker JVM (G1 as in Kafka's own kafka-run-class.sh).
BROKER_JVM_OPTS=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true -Dfile.encoding=UTF-8)

die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*" >&2; }

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# ---------------------------------------------------------------------------------------------
# fetch

# Marker content: identifies the pom + requested version the lib dir was built from.
pom_stamp() {
  local sum
  sum="$(sha256sum "$POM" | cut -d' ' -f1)"
  echo "pom=$sum version=${KAFKA_VERSION:-default}"
}

lib_complete() {
  [[ -f "$LIB_DIR/.complete" ]] || return 1
  [[ "$(head -n1 "$LIB_DIR/.complete")" == "$(pom_stamp)" ]] || return 1
  compgen -G "$LIB_DIR/kafka_2.13-*.jar" >/dev/null && compgen -G "$LIB_DIR/kafka-tools-*.jar" >/dev/null
}

# mvn_copy <version> <outdir> <logfile>
mvn_copy() {
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  mvn -B -q -f "$POM" -Dkafka.version="$1" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$2" >"$3" 2>&1
}

cmd_fetch() {
  if lib_complete; then return 0; fi
  local parent tmp mlog version ok=""
  parent="$(dirname "$LIB_DIR")"
  mkdir -p "$parent"
  # Serialise concurrent fetches (parallel test runs); re-check once we hold the lock.
  exec 9>"$parent/.fetch.lock"
  flock 9
  if lib_complete; then exec 9>&-; return 0; fi
  tmp="$(mktemp -d "$parent/.lib.tmp.XXXXXX")"
  mlog="$tmp.mvn.log"
  local versions=("${KAFKA_VERSION:-3.9.1}")
  [[ -z "${KAFKA_VERSION:-}" ]] && versions+=(3.9.0)
  for version in "${versions[@]}"; do
    log "fetching Kafka $version jars via maven into $LIB_DIR ..."
    rm -rf "$tmp" && mkdir -p "$tmp"
    if mvn_copy "$version" "$tmp" "$mlog"; then ok="$version"; break; fi
    log "maven failed for Kafka $version:"; tail -n 20 "$mlog" >&2
  done
  [[ -n "$ok" ]] || { rm -rf "$tmp" "$mlog"; die "could not fetch Kafka jars"; }
  { pom_stamp; echo "kafka.version=$ok"; } >"$tmp/.complete"
  rm -rf "$LIB_DIR" "$mlog"
  mv "$tmp" "$LIB_DIR"
  log "fetched Kafka $ok ($(find "$LIB_DIR" -maxdepth 1 -name '*.jar' | wc -l) jars)"
  exec 9>&-
}

kafka_version() { sed -n 's/^kafka.version=//p' "$LIB_DIR/.complete"; }

# class_exists <fully.qualified.Name>: looks inside the Kafka jars of the lib dir.
class_exists() {
  python3 - "$1" "$LIB_DIR" <<'EOF'
import sys, glob, zipfile
entry = sys.argv[1].replace('.', '/') + '.class'
for jar in glob.glob(sys.argv[2] + '/kafka*.jar'):
    with zipfile.ZipFile(jar) as z:
        if entry in z.namelist():
            sys.exit(0)
sys.exit(1)
EOF
}

first_class() {
  local c
  for c in "$@"; do if class_exists "$c"; then echo "$c"; return 0; fi; done
  die "none of these classes found in $LIB_DIR: $*"
}

# ---------------------------------------------------------------------------------------------
# state dir helpers

abs_dir() { [[ -n "${1:-}" ]] || usage; mkdir -p "$1"; (cd "$1" && pwd); }

write_log4j() {
  local sd="$1"
  cat >"$sd/log4j.properties" <<'EOF'
# Broker logging (stdout -> kafka.log), like Kafka's config/log4j.properties, a bit quieter.
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
EOF
  cat >"$sd/tools-log4j.properties" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.appender.stderr.Target=System.err
EOF
}

# run_tool <state-dir> <main-class> args...
run_tool() {
  local sd="$1" cls="$2"; shift 2
  [[ -f "$sd/tools-log4j.properties" ]] || write_log4j "$sd"
  "$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j.configuration="file:$sd/tools-log4j.properties" \
    -cp "$LIB_DIR/*" "$cls" "$@"
}

free_ports() { python3 "$REPO_ROOT/scripts/free-port.py" 2; }  # two free loopback ports

# pid of the broker of this state dir if it is running (and really is our broker), else fails.
running_pid() {
  local sd="$1" pid
  [[ -f "$sd/kafka.pid" ]] || return 1
  pid="$(cat "$sd/kafka.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$sd/server.properties" || return 1
  echo "$pid"
}

bootstrap_of() {
  [[ -f "$1/bootstrap" ]] || die "no broker state in $1 (run: kafka.sh start $1)"
  cat "$1/bootstrap"
}

write_server_properties() {
  local sd="$1" port="$2" cport="$3"
  cat >"$sd/server.properties" <<EOF
# Written by scripts/kafka/kafka.sh: single-node KRaft (combined broker+controller), loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$sd/data
num.partitions=3
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
}

# launch <state-dir>: start kafka.Kafka in the background and wait until it is ready.
launch() {
  local sd="$1" pid t0 deadline
  [[ -s "$sd/kafka.log" ]] && mv -f "$sd/kafka.log" "$sd/kafka.log.1"
  : >"$sd/kafka.log"
  t0=$(date +%s.%N)
  local heap_opts
  read -r -a heap_opts <<<"$HEAP_OPTS"
  nohup "$JAVA" "${heap_opts[@]}" "${BROKER_JVM_OPTS[@]}" \
    -Dlog4j.configuration="file:$sd/log4j.properties" -Dkafka.logs.dir="$sd" \
    -cp "$LIB_DIR/*" kafka.Kafka "$sd/server.properties" >>"$sd/kafka.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$sd/kafka.pid"
  deadline=$(( $(date +%s) + START_TIMEOUT ))
  while ! grep -q "Kafka Server started" "$sd/kafka.log"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$sd/kafka.pid"
      # Another listener took a port between the choice and the bind: the caller picks others.
      if grep -q "Address already in use" "$sd/kafka.log"; then return 2; fi
      log "broker exited during startup; last lines of $sd/kafka.log:"
      tail -n 40 "$sd/kafka.log" >&2
      exit 1
    fi
    if (( $(date +%s) >= deadline )); then
      log "broker not ready after ${START_TIMEOUT}s; last lines of $sd/kafka.log:"
      tail -n 40 "$sd/kafka.log" >&2
      stop_pid "$sd" "$pid"
      exit 1
    fi
    sleep 0.2
  done
  log "broker pid $pid ready in $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")s"
}

stop_pid() {
  local sd="$1" pid="$2" i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker pid $pid still alive after 30s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$sd/kafka.pid"
}

# ---------------------------------------------------------------------------------------------
# commands

cmd_start() {
  local sd pid port cport cid
  sd="$(abs_dir "${1:-}")"
  cmd_fetch
  if pid="$(running_pid "$sd")"; then
    log "a broker (pid $pid) is running in $sd; stopping it first"
    stop_pid "$sd" "$pid"
  fi
  local attempt status
  for attempt in 1 2 3; do
    rm -rf "$sd/data" "$sd/bootstrap"
    read -r port cport < <(free_ports)
    write_server_properties "$sd" "$port" "$cport"
    write_log4j "$sd"
    cid="$(run_tool "$sd" kafka.tools.StorageTool random-uuid | tail -n1)"
    run_tool "$sd" kafka.tools.StorageTool format -t "$cid" -c "$sd/server.properties" >"$sd/format.log" 2>&1 \
      || { cat "$sd/format.log" >&2; die "storage format failed"; }
    echo "$cid" >"$sd/cluster.id"
    status=0
    launch "$sd" || status=$?
    (( status == 0 )) && break
    log "port $port or $cport was taken before the broker bound it (attempt $attempt); choosing others"
  done
  (( status == 0 )) || die "broker could not bind free ports in 3 attempts"
  echo "127.0.0.1:$port" >"$sd/bootstrap"
  echo "127.0.0.1:$port"
}

cmd_stop() {
  local sd pid
  [[ -n "${1:-}" ]] || usage
  [[ -d "$1" ]] || return 0
  sd="$(cd "$1" && pwd)"
  if pid="$(running_pid "$sd")"; then
    stop_pid "$sd" "$pid"
    log "broker pid $pid stopped"
  else
    rm -f "$sd/kafka.pid"
  fi
}

cmd_restart_broker() {
  local sd down="${2:-0}"
  [[ -n "${1:-}" ]] || usage
  [[ "$down" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "down-seconds must be a number: $down"
  [[ -f "$1/server.properties" && -d "$1/data" ]] || die "no broker state in $1 (run: kafka.sh start $1)"
  sd="$(cd "$1" && pwd)"
  cmd_fetch
  cmd_stop "$sd"
  if [[ "$down" != 0 ]]; then log "broker down for ${down}s"; sleep "$down"; fi
  launch "$sd"
  cat "$sd/bootstrap"
}

cmd_status() {
  local sd pid
  [[ -n "${1:-}" && -d "$1" ]] || { echo "stopped"; return 1; }
  sd="$(cd "$1" && pwd)"
  if pid="$(running_pid "$sd")"; then echo "running pid=$pid bootstrap=$(cat "$sd/bootstrap")"
  else echo "stopped"; return 1; fi
}

cmd_create_topic() {
  local sd="${1:-}" name="${2:-}" parts="${3:-3}"
  [[ -n "$sd" && -n "$name" ]] || usage
  sd="$(cd "$sd" && pwd)"
  cmd_fetch
  run_tool "$sd" org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap_of "$sd")" \
    --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1
}

cmd_produce() {
  local sd="${1:-}" topic="${2:-}" cls
  [[ -n "$sd" && -n "$topic" ]] || usage
  sd="$(cd "$sd" && pwd)"
  cmd_fetch
  cls="$(first_class org.apache.kafka.tools.ConsoleProducer kafka.tools.ConsoleProducer)"
  run_tool "$sd" "$cls" --bootstrap-server "$(bootstrap_of "$sd")" --topic "$topic" \
    --property parse.key=true --property "key.separator=$(printf '\t')" \
    --producer-property acks=all --producer-property enable.idempotence=true
}

cmd_consume() {
  local sd="${1:-}" topic="${2:-}" max="${3:-}" timeout="${4:-30000}" cls
  [[ -n "$sd" && -n "$topic" && -n "$max" ]] || usage
  sd="$(cd "$sd" && pwd)"
  cmd_fetch
  cls="$(first_class org.apache.kafka.tools.consumer.ConsoleConsumer kafka.tools.ConsoleConsumer)"
  run_tool "$sd" "$cls" --bootstrap-server "$(bootstrap_of "$sd")" --topic "$topic" \
    --from-beginning --max-messages "$max" --timeout-ms "$timeout" \
    --property print.key=true --property "key.separator=$(printf '\t')"
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    fetch) cmd_fetch ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart-broker) cmd_restart_broker "$@" ;;
    status) cmd_status "$@" ;;
    create-topic) cmd_create_topic "$@" ;;
    produce) cmd_produce "$@" ;;
    consume) cmd_consume "$@" ;;
    version) cmd_fetch; kafka_version ;;
    *) usage ;;
  esac
}

# Sourced (by kafka-cluster.sh) for its functions; run as a command otherwise.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then main "$@"; fi
