#!/usr/bin/env bash
# The two example agents against a real server, as users of the API would run them:
#   examples/run.sh AGENTLANCER_BIN [REPO]
# Starts `agentlancer all` on a free port with a temporary data directory, installs what the agents
# need (npm ci + build of examples/provider-ts, a venv for examples/requester-py, both cached
# under .cache/examples), starts the TypeScript provider, runs the Python requester, and checks
# that the requester exits 0 with both its jobs COMPLETED and that the provider saw them over its
# socket (onNewTask) and exited 0 after them. The agents talk only through the API, socket.io
# and webhooks; this script only starts them and reads their summaries.
# Environment: PYTHON (default python3) makes the venv; NODE/NPM (default node/npm);
# SOCKET_TRANSPORTS=websocket is passed to the provider (default: socket.io-client's own); KEEP=1 keeps the work directory.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage="usage: $0 AGENTLANCER_BIN [REPO]"
[[ $# -ge 1 && -f "$1" && -x "$1" ]] || { echo "examples: ${1:-(none)} is not an executable agentlancer binary; $usage" >&2; exit 2; }
bin="$(realpath "$1")"
repo="$(realpath "${2:-$here/..}")"
cache="$repo/.cache/examples"
python="${PYTHON:-python3}"
node="${NODE:-node}"
npm="${NPM:-npm}"
provider_dir="$here/provider-ts"
requester_dir="$here/requester-py"

work="$(mktemp -d /tmp/agentlancer-examples-XXXXXX)"
server_pid=""
provider_pid=""
stop_pid() {  # SIGTERM, then SIGKILL after $2 seconds
  local pid="$1" grace="$2"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((grace * 10))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
failed=1
cleanup() {
  stop_pid "$provider_pid" 5
  stop_pid "$server_pid" 30
  if [[ "$failed" -ne 0 ]]; then
    for f in server provider requester; do
      [[ -s "$work/$f.log" ]] && { echo "--- last lines of $f.log"; tail -n 30 "$work/$f.log"; }
    done
  fi
  if [[ "$failed" -ne 0 || -n "${KEEP:-}" ]]; then echo "examples: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "examples: FAILED: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# Dependencies: made once, reused while their lock files and the runtimes stay the same.
mkdir -p "$cache"
venv="$cache/venv"
# shellcheck source=../tests/support/python_venv.sh
. "$repo/tests/support/python_venv.sh"
ensure_python_venv examples "$venv" "$requester_dir/requirements.txt" 'import httpx, standardwebhooks'
(
  flock 9
  want="$(sha256sum "$provider_dir/package-lock.json" | cut -d' ' -f1) $("$node" --version)"
  if [[ "$(cat "$provider_dir/node_modules/.examples-installed" 2>/dev/null)" != "$want" ]]; then
    echo "examples: npm ci in examples/provider-ts"
    (cd "$provider_dir" && timeout 300 "$npm" ci --cache "$cache/npm" --no-audit --no-fund --loglevel=error >/dev/null)
    printf '%s\n' "$want" >"$provider_dir/node_modules/.examples-installed"
  fi
  # The client types come from docs/openapi.yaml at every build: a changed API fails here.
  (cd "$provider_dir" && timeout 180 "$npm" run --silent build >"$work/build.log" 2>&1) \
    || { cat "$work/build.log"; fail "npm run build in examples/provider-ts"; }
) 9>"$cache/deps.lock"

# ---------------------------------------------------------------------------------------------
# The server
for attempt in 1 2 3; do
  port="$("$python" "$repo/scripts/free-port.py")"
  base="http://127.0.0.1:$port"
  "$bin" all --port "$port" --data_dir "$work/data" --http.access_log false --rate_limit.signup 10000/1m \
    </dev/null >/dev/null 2>>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 1 600); do
    curl -fsS -m 2 "$base/readyz" >/dev/null 2>&1 && break 2
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  stop_pid "$server_pid" 10
  server_pid=""
  [[ "$attempt" -eq 3 ]] && fail "agentlancer did not become ready"
done
echo "examples: agentlancer ready on $base"

# ---------------------------------------------------------------------------------------------
# The provider (its own tag, so only its service is found), then the requester.
tag="examples-$$"
start_ns=$(date +%s%N)
(cd "$provider_dir" && AGENTLANCER_BASE="$base" SERVICE_TAG="$tag" EXIT_AFTER_COMPLETED=2 \
  exec timeout 180 "$node" dist/provider.js) >"$work/provider.log" 2>&1 &
provider_pid=$!
for _ in $(seq 1 300); do
  grep -q '^READY ' "$work/provider.log" && break
  kill -0 "$provider_pid" 2>/dev/null || fail "the provider exited before it was ready"
  sleep 0.1
done
grep -q '^READY ' "$work/provider.log" || fail "the provider was not ready within 30 s"
echo "examples: provider $(grep '^READY ' "$work/provider.log")"

set +e
AGENTLANCER_BASE="$base" SERVICE_TAG="$tag" STEP_TIMEOUT=30 \
  timeout 120 "$venv/bin/python" -u "$requester_dir/requester.py" >"$work/requester.log" 2>&1
requester_rc=$?
set -e
end_ns=$(date +%s%N)
sed 's/^/  /' "$work/requester.log"

# The provider exits 0 by itself once it has seen both jobs COMPLETED on its socket.
provider_rc=""
for _ in $(seq 1 300); do
  kill -0 "$provider_pid" 2>/dev/null || { set +e; wait "$provider_pid"; provider_rc=$?; set -e; break; }
  sleep 0.1
done
if [[ -n "$provider_rc" ]]; then provider_pid=""; fi
echo "  --- provider (socket.io)"
sed 's/^/  /' "$work/provider.log"

# ---------------------------------------------------------------------------------------------
# The verdict, from the agents' own summaries.
[[ "$requester_rc" -eq 0 ]] || fail "the requester exited $requester_rc"
[[ -n "$provider_rc" ]] || fail "the provider did not exit within 30 s of the story"
[[ "$provider_rc" -eq 0 ]] || fail "the provider exited $provider_rc"
"$python" - "$work/requester.log" "$work/provider.log" "$start_ns" "$end_ns" <<'EOF' || fail "the summaries"
import json, sys
def summary(path, prefix):
    for line in open(path):
        if line.startswith(prefix):
            return json.loads(line[len(prefix):])
    sys.exit(f"no '{prefix}' line in {path}")
r = summary(sys.argv[1], "requester summary ")
p = summary(sys.argv[2], "provider summary ")
wall = (int(sys.argv[4]) - int(sys.argv[3])) / 1e9
problems = []
if not r["ok"]: problems.append("the requester did not finish")
if r["events"].get("job.phase_changed", 0) < 7: problems.append("the requester's webhooks missed job phase changes")
if r["webhooks_refused"]: problems.append("a webhook failed its signature check")
if p["jobs_completed"] != 2 or p["jobs_delivered"] != 2: problems.append("the provider did not deliver and complete 2 jobs")
if p["events"].get("onNewTask", 0) < 8: problems.append("the provider did not get every job phase as onNewTask")
def counts(events):
    return ", ".join(f"{k} {v}" for k, v in events.items())
print(f"examples: story {r['story_s']:.2f} s (marketplace hire {r['marketplace_s']:.2f} s, direct hire {r['direct_s']:.2f} s); "
      f"provider start to requester exit {wall:.2f} s")
print(f"examples: requester webhooks: {r['webhooks_verified']} verified with standardwebhooks, "
      f"{r['webhooks_refused']} refused, {r['webhooks_duplicates']} duplicates: {counts(r['events'])}")
print(f"examples: provider socket events: {sum(p['events'].values())} ({counts(p['events'])})")
for problem in problems: print(f"examples: {problem}")
sys.exit(1 if problems else 0)
EOF
failed=0
echo "examples: ok (socket.io transports: ${SOCKET_TRANSPORTS:-socket.io-client defaults})"
