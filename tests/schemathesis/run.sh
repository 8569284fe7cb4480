#!/usr/bin/env bash
# Property-based tests of the embedded stack against docs/openapi.yaml with schemathesis: every
# operation with examples, coverage and fuzzing, then stateful runs along the document's links
# (signup → me; service → thread → quote → lock → offer → accept → contract → payment; job →
# every job action), every check (`--checks all`, plus hooks.py's non_member_is_refused). Any
# failure fails the test; the report (JUnit, NDJSON) is kept in .cache/schemathesis/report/.
#   tests/schemathesis/run.sh AGENTLANCER_BIN [REPO]
# Environment: SCHEMATHESIS_MAX_EXAMPLES test cases per operation and phase (default: those of
# schemathesis.toml); SCHEMATHESIS_SEED to replay a run (its seed is printed); SCHEMATHESIS_WORKERS
# (default 2).
# The venv (.cache/schemathesis/venv, requirements.txt) is made once and reused while
# requirements.txt and the Python version stay the same.
set -euo pipefail
bin="$(realpath "$1")"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(realpath "${2:-$here/../..}")"
cache="$repo/.cache/schemathesis"
venv="$cache/venv"
req="$here/requirements.txt"

# shellcheck source=../support/python_venv.sh
. "$here/../support/python_venv.sh"
ensure_python_venv schemathesis "$venv" "$req" 'import schemathesis'

work="$(mktemp -d /tmp/agentlancer-schemathesis-XXXXXX)"
server=""
watchdog=""
cleanup() {
  if [[ -n "$watchdog" ]]; then kill "$watchdog" 2>/dev/null || true; fi
  if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# The rate limits (per key, per address; feedback per address) and the active keys per agent are lifted so the fuzzer reaches
# the validation and storage behind them instead of 429s. The waits for events from other
# services are kept short so ids schemathesis makes up (unknown agents, unknown threads) are
# answered quickly, yet long enough for the real flows (a just-locked quote, a new agent).
start_server() {
  port="$(python3 "$repo/scripts/free-port.py")"
  base="http://127.0.0.1:$port"
  "$bin" all --port "$port" --data_dir "$work/data" --http.access_log false \
    --ops.feedback_per_minute 1000000 --rate_limit.reads 1000000/1s --rate_limit.writes 1000000/1s \
    --rate_limit.signup 1000000/1s --rate_limit.public 1000000/1s \
    --auth.max_active_keys 1000000 \
    --job.agent_wait_ms 1000 --offers.projection_wait_ms 1000 \
    2>>"$work/server.log" &
  server=$!
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && return 0
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  server=""
  return 1
}
# The port was free when chosen; another listener may take it before the bind: try another.
for attempt in 1 2 3; do
  start_server && break
  [[ "$attempt" == 3 ]] && { echo "server not ready"; tail -30 "$work/server.log"; exit 1; }
done

# The agents hooks.py acts as, and a service, threads, offers, a contract and jobs in every state
# a flow goes through (seed.py).
"$venv/bin/python" "$here/seed.py" "$base" >"$work/keys.env"
while IFS='=' read -r name value; do export "$name=$value"; done <"$work/keys.env"
export SCHEMATHESIS_HOOKS="$here/hooks.py"
# The reports of this run (JUnit, NDJSON); those of runs that are over are removed.
backend="${STORAGE_URL:+postgres}"
report="$cache/report/${backend:-sqlite}.$$"
mkdir -p "$cache/report"
for old in "$cache/report"/*.*; do
  if [[ -d "$old" ]] && ! kill -0 "${old##*.}" 2>/dev/null; then rm -rf "$old"; fi
done
args=(--config-file "$here/schemathesis.toml" run "$repo/docs/openapi.yaml" --url "$base"
      --checks all --workers "${SCHEMATHESIS_WORKERS:-2}" --report junit,ndjson --report-dir "$report" --no-color)
if [[ -n "${SCHEMATHESIS_MAX_EXAMPLES:-}" ]]; then args+=(--max-examples "$SCHEMATHESIS_MAX_EXAMPLES"); fi
if [[ -n "${SCHEMATHESIS_SEED:-}" ]]; then args+=(--seed "$SCHEMATHESIS_SEED"); fi
cd "$work"
start=$SECONDS
"$venv/bin/schemathesis" "${args[@]}" &
schemathesis=$!
# A server that dies must fail the run at once, not leave schemathesis retrying until ctest's timeout.
( while kill -0 "$server" 2>/dev/null; do sleep 1; done; kill "$schemathesis" 2>/dev/null ) &
watchdog=$!
set +e
wait "$schemathesis"
rc=$?
set -e
echo "schemathesis: exit $rc after $((SECONDS - start)) s"
if ! kill -0 "$server" 2>/dev/null; then
  echo "the server died during the run"; tail -30 "$work/server.log"; exit 1
fi
if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$work/server.log"; then
  echo "sanitizer reports in the server log:"; grep -E -A20 'ERROR: AddressSanitizer|runtime error:' "$work/server.log" | head -60
  exit 1
fi
exit "$rc"
