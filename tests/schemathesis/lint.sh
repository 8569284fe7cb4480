#!/usr/bin/env bash
# Lints docs/openapi.yaml with @redocly/cli (the recommended ruleset, redocly.yaml): any error or
# warning fails. The CLI comes from tests/schemathesis/node_modules (`npm ci` there, as make test
# does; run here when it is missing).
#   tests/schemathesis/lint.sh [REPO]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${1:-$(cd "$here/../.." && pwd)}"
if [[ ! -x "$here/node_modules/.bin/redocly" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
# No telemetry, no update check, no banners: the test's output is the lint's.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true REDOCLY_SUPPRESS_NOTIFICATIONS=true
cd "$repo"
exec "$here/node_modules/.bin/redocly" lint --config "$here/redocly.yaml" --max-problems 1000 docs/openapi.yaml
