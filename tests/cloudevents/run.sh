#!/usr/bin/env bash
# Our events as other languages' CloudEvents SDKs read them off real Kafka: starts `agentlancer all`
# against a real broker, drives a whole story through the HTTP API (story.sh: events of ~20 types),
# waits until every outbox is published, stops the server, then reads every message the story put
# on the topics with
#   - Go: github.com/cloudevents/sdk-go/v2 and its Kafka binding protocol/kafka_sarama/v2 (go/), and
#   - Python: the `cloudevents` package's Kafka binding with confluent-kafka (python/).
# First python/selftest.py checks the readers themselves on hand-made messages. Both readers must
# convert every message as a structured-mode CloudEvent (content-type header
# application/cloudevents+json), validate it, find CloudEvents-typed extensions, key == subject and
# dataschema == the $id of docs/events/<type>.schema.json; both must read all the events the server
# published, of at least MIN_TYPES (default 15) distinct types.
#   tests/cloudevents/run.sh AGENTLANCER_BIN [REPO]
# The broker: $AGENTLANCER_TEST_KAFKA_STATE/bootstrap (ctest's `kafka` fixture), else
# $KAFKA_BOOTSTRAP, else one started here with tests/kafka_fixture.sh (and stopped after). Only the
# messages past each partition's end at the start are read, so earlier tests' messages on the same
# topics do not count (ctest holds RESOURCE_LOCK kafka: nothing else writes meanwhile).
# Environment: STORAGE_URL runs the server on PostgreSQL; PYTHON (default python3) makes the venv;
# GO (default go) builds the Go reader.
# Caches (gitignored .cache/): Go modules and build cache under .cache/go (the first build of the
# Go reader, with an empty cache: about 2 minutes on two busy cores; then a few seconds); the venv
# .cache/cloudevents/venv, made again only when python/requirements.txt or Python changes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage="usage: $0 AGENTLANCER_BIN [REPO]"
[[ $# -ge 1 && -f "$1" && -x "$1" ]] || { echo "cloudevents: ${1:-(none)} is not an executable agentlancer binary; $usage" >&2; exit 2; }
bin="$(realpath "$1")"
repo="$(realpath "${2:-$here/../..}")"
min_types="${MIN_TYPES:-15}"
cache="$repo/.cache/cloudevents"
mkdir -p "$cache"
work="$(mktemp -d /tmp/agentlancer-cloudevents-XXXXXX)"
server=""
own_kafka=""
cleanup() {
  if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [[ -n "$own_kafka" ]]; then bash "$repo/tests/kafka_fixture.sh" stop "$own_kafka" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
t0=$SECONDS
say() { printf 'cloudevents: %s\n' "$*"; }

# --- the two readers -------------------------------------------------------------------------------
# Go: the user's module and build caches (shared by every clone on the machine, so a fresh CI
# clone does not compile sdk-go and sarama again); go.sum pins every module (-mod=readonly).
go_bin="$cache/cereader"
(
  flock 9
  cd "$here/go"
  export GOFLAGS="-mod=readonly -modcacherw -buildvcs=false" GOTOOLCHAIN=local
  s=$SECONDS
  "${GO:-go}" build -o "$go_bin.tmp" . && mv "$go_bin.tmp" "$go_bin"
  say "Go reader built in $((SECONDS - s)) s ($("${GO:-go}" version | cut -d' ' -f3), sdk-go $(grep -m1 'cloudevents/sdk-go/v2 ' go.mod | awk '{print $2}'))"
) 9>"$cache/go.lock"

# Python: the venv is made once and reused while requirements.txt and the Python version stay the same.
venv="$cache/venv"
req="$here/python/requirements.txt"
# shellcheck source=../support/python_venv.sh
. "$here/../support/python_venv.sh"
ensure_python_venv cloudevents "$venv" "$req" 'from cloudevents.core.bindings.kafka import from_structured; import confluent_kafka'

# --- the broker --------------------------------------------------------------------------------------
if [[ -n "${AGENTLANCER_TEST_KAFKA_STATE:-}" ]]; then
  bootstrap="$(cat "$AGENTLANCER_TEST_KAFKA_STATE/bootstrap")"
elif [[ -n "${KAFKA_BOOTSTRAP:-}" ]]; then
  bootstrap="$KAFKA_BOOTSTRAP"
else
  own_kafka="$work/kafka"
  bash "$repo/tests/kafka_fixture.sh" start "$own_kafka" >"$work/kafka-fixture.log" 2>&1 \
    || { cat "$work/kafka-fixture.log"; exit 1; }
  bootstrap="$(cat "$own_kafka/bootstrap")"
fi
topics="$("$bin" topics | paste -sd, -)"
say "broker $bootstrap; topics $topics"

# The readers' own check first (a correct message passes, each kind of wrong one fails both
# readers for its reason): a broken reader must not pass for a correct server.
"$venv/bin/python" "$here/python/selftest.py" --bootstrap "$bootstrap" --go-reader "$go_bin" \
  || { say "the readers' selftest failed"; exit 1; }

# Where the story's messages start: the end of every partition now.
"$go_bin" watermarks -bootstrap "$bootstrap" -topics "$topics" >"$work/start.json"

# --- the server and the story ------------------------------------------------------------------------
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
args=(all --port "$port" --data_dir "$work/data" --kafka.bootstrap "$bootstrap" --http.access_log false)
[[ -n "${STORAGE_URL:-}" ]] && args+=(--storage.url "$STORAGE_URL")
"$bin" "${args[@]}" 2>"$work/server.log" &
server=$!
for _ in $(seq 1 600); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || { say "server not ready"; tail -20 "$work/server.log"; exit 1; }

s=$SECONDS
bash "$here/story.sh" "$base" || { say "the story failed"; tail -20 "$work/server.log"; exit 1; }
say "story done in $((SECONDS - s)) s"

# Drained: every outbox published (backlog 0) and the consumers quiet (consumer_events_total the
# same) for 2 s, so that the events consumers cause downstream are on Kafka too.
metric_sum() { awk -v pat="$1" '!/^#/ { n = $1; sub(/\{.*/, "", n); if (n ~ pat) s += $2 } END { printf "%d\n", s }' "$work/metrics"; }
last=""; stable=0; drained=""
for _ in $(seq 1 120); do
  curl -fsS "$base/metrics" >"$work/metrics" || { sleep 0.5; continue; }
  backlog="$(metric_sum '_outbox_backlog$')"
  now="$backlog $(metric_sum '^consumer_events_total$') $(metric_sum '^outbox_published_total$')"
  if [[ "$backlog" == 0 && "$now" == "$last" ]]; then
    stable=$((stable + 1))
    if [[ $stable -ge 4 ]]; then drained=1; break; fi
  else
    stable=0
  fi
  last="$now"
  sleep 0.5
done
[[ -n "$drained" ]] || { say "the outboxes did not drain (backlog, consumed, published: $now)"; exit 1; }
published="$(metric_sum '^outbox_published_total$')"
say "outboxes drained: $published events published"
kill -TERM "$server"
wait "$server" || { say "server exit code $?"; tail -20 "$work/server.log"; }
server=""

# --- the SDKs read them ------------------------------------------------------------------------------
rc=0
"$go_bin" read -bootstrap "$bootstrap" -topics "$topics" -schemas "$repo/docs/events" -from "$work/start.json" \
  >"$work/go.json" || rc=$?
[[ -s "$work/go.json" ]] || { say "the Go reader printed nothing (exit $rc)"; exit 1; }
"$venv/bin/python" "$here/python/cereader.py" --bootstrap "$bootstrap" --topics "$topics" \
  --schemas "$repo/docs/events" --from "$work/start.json" >"$work/py.json" || rc=$?
[[ -s "$work/py.json" ]] || { say "the Python reader printed nothing (exit $rc)"; exit 1; }

fail=0
for lang in go py; do
  f="$work/$lang.json"
  name="$([[ $lang == go ]] && echo Go || echo Python)"
  say "$name: $(jq -r .sdk "$f")"
  say "$name: $(jq -r '"\(.messages) messages, \(.events) events passed, \(.distinct_types) types, \(.failure_count) failures, read in \(.seconds) s"' "$f")"
  if [[ "$(jq .failure_count "$f")" != 0 ]]; then
    fail=1
    say "$name failures by kind:"
    jq -r '.failure_kinds | to_entries[] | "  \(.value)× \(.key)"' "$f" | head -25
    say "$name first failures:"
    jq -r '.failures[:8][] | "  \(.topic)/\(.partition)@\(.offset) \(.type // ""): \(.reason)"' "$f"
  fi
  [[ "$(jq .events "$f")" -gt 0 ]] || { say "$name: no event passed"; fail=1; }
  [[ "$(jq .distinct_types "$f")" -ge "$min_types" ]] || { say "$name: $(jq .distinct_types "$f") types, want >= $min_types"; fail=1; }
  [[ "$(jq .messages "$f")" == "$published" ]] || { say "$name: read $(jq .messages "$f") messages, the server published $published"; fail=1; }
done
if ! diff <(jq -S .types "$work/go.json") <(jq -S .types "$work/py.json") >/dev/null; then
  say "the two readers saw different types:"; diff <(jq -S .types "$work/go.json") <(jq -S .types "$work/py.json") || true
  fail=1
fi
say "types: $(jq -r '.types | to_entries | map("\(.key)=\(.value)") | join(" ")' "$work/go.json")"
say "extensions seen: $(jq -r '.extensions | to_entries | map("\(.key)=\(.value)") | join(" ")' "$work/go.json")"
[[ $rc -eq 0 || $fail -eq 1 ]] || { say "a reader exited $rc"; fail=1; }
if [[ $fail -eq 0 ]]; then
  say "ok: $published events, $(jq .distinct_types "$work/go.json") types, read by sdk-go and the Python SDK ($((SECONDS - t0)) s in all)"
else
  say "FAILED ($((SECONDS - t0)) s in all)"
fi
exit "$fail"
