#!/usr/bin/env bash
# End-to-end tests of webhooks against the real server (tests/webhooks/webhooks_test.py): starts
# `agentlancer all` on a free port with short webhook timings, registers endpoints pointing at
# local receivers, makes events happen through the API and checks every delivery (order, retries,
# timeouts, catch-up, rotation, SSRF refusals, disabling, replay, isolation, ownership, limits);
# every signature is verified with the official `standardwebhooks` package (PyPI).
#   tests/webhooks/run.sh AGENTLANCER_BIN [REPO] [-k PATTERN]
# Environment: STORAGE_URL runs the server on PostgreSQL (tests/with_pg_db.sh sets it); PYTHON
# (default python3) makes the venv.
#   tests/webhooks/run.sh --selftest [REPO]   checks the receivers and standardwebhooks only (no server)
# The venv (.cache/webhooks/venv, requirements.txt) is made once and reused while
# requirements.txt and the Python version stay the same.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
usage="usage: $0 AGENTLANCER_BIN [REPO] [-k PATTERN]   or   $0 --selftest [REPO]"
[[ $# -ge 1 && -n "$1" ]] || { echo "webhooks: missing the agentlancer binary; $usage" >&2; exit 2; }
selftest=""
if [[ "$1" == "--selftest" ]]; then
  selftest=1
else
  [[ -f "$1" && -x "$1" ]] || { echo "webhooks: $1 is not an executable agentlancer binary (build it first); $usage" >&2; exit 2; }
  bin="$(realpath "$1")"
fi
shift
repo="$(realpath "${1:-$here/../..}")"
[[ $# -ge 1 ]] && shift
cache="$repo/.cache/webhooks"
venv="$cache/venv"
req="$here/requirements.txt"

# shellcheck source=../support/python_venv.sh
. "$here/../support/python_venv.sh"
ensure_python_venv webhooks "$venv" "$req" 'from standardwebhooks.webhooks import Webhook'

# The suite's own parts first (a few seconds, no server): a broken receiver or verifier must not
# pass for a broken server.
"$venv/bin/python" "$here/selftest.py"
[[ -n "$selftest" ]] && exit 0

export AGENTLANCER_BIN="$bin"
exec "$venv/bin/python" -u "$here/webhooks_test.py" "$@"
