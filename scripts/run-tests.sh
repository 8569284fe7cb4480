#!/usr/bin/env bash
# `make test` after the build: every test through ctest. The fault suite's figures (phases,
# requests, errors by kind, events lost/duplicated; written by ctest cluster_faults) are printed
# after the run, then ctest's summary line again, so the output still ends with it.
#   scripts/run-tests.sh [extra ctest arguments]
set -uo pipefail
cd "$(dirname "$0")/.."
figures="build/debug/fault-figures.txt"
out="build/debug/ctest-output.txt"
rm -f "$figures"
ctest --preset debug -j "${CTEST_JOBS:-2}" "$@" | tee "$out"
rc=${PIPESTATUS[0]}
if [[ -s "$figures" ]]; then
  echo
  echo "== the fault suite's figures (ctest cluster_faults)"
  cat "$figures"
fi
grep -E '^[0-9]+% tests passed' "$out" | tail -1
exit "$rc"
