#!/usr/bin/env bash
# Builds the libFuzzer targets (CMake preset fuzz: clang-14, ASan + UBSan, build/fuzz) and runs
# each: first every committed regression input (fuzz/regressions/<target>/) once, then fuzzing for
# a while from a scratch copy of its seed corpus (fuzz/corpus/<target>/; nothing is ever written
# back into the repository). Prints per target: executions, exec/s, coverage (cov: and ft: of
# libFuzzer's last status line) and the corpus size. Exits non-zero on any crash, leak, timeout,
# out-of-memory or broken invariant, with the input that caused it (docs/fuzzing.md: copy it to
# fuzz/regressions/<target>/ and fix the bug).
#   scripts/fuzz/run.sh [seconds] [target ...]    seconds per target: default FUZZ_SECONDS or 30
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-${FUZZ_SECONDS:-30}}"
[ $# -gt 0 ] && shift
all_targets=(request_target json_object decimal uint256 rfc3339 api_key socketio websocket)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

build="build/fuzz"
mkdir -p "$build"
started=$SECONDS
# ccache, when there is one, only on the first configure (CMake reads the variable from the
# environment then).
if [ -z "${CMAKE_CXX_COMPILER_LAUNCHER:-}" ] && command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
echo "== build (cmake --preset fuzz, 2 jobs)"
if ! cmake --preset fuzz >"$build/configure.log" 2>&1; then
  cat "$build/configure.log"
  exit 1
fi
if ! cmake --build --preset fuzz >"$build/build.log" 2>&1; then
  tail -n 60 "$build/build.log"
  exit 1
fi
echo "built in $((SECONDS - started)) s"

scratch="$(mktemp -d /tmp/agentlancer-fuzz.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$build/logs"
failed=()
summary=()
for target in "${targets[@]}"; do
  bin="$build/fuzz/fuzz_$target"
  if [ ! -x "$bin" ]; then
    echo "no such target: $target (one of: ${all_targets[*]})" >&2
    exit 2
  fi
  artifacts="$build/artifacts/$target"
  mkdir -p "$artifacts"
  log="$build/logs/$target.log"
  echo "== $target"

  # Every committed regression input, once each.
  regressions=()
  if [ -d "fuzz/regressions/$target" ]; then
    while IFS= read -r -d '' file; do regressions+=("$file"); done \
      < <(find "fuzz/regressions/$target" -type f ! -name '*.md' -print0 | sort -z)
  fi
  if [ ${#regressions[@]} -gt 0 ]; then
    if "$bin" -artifact_prefix="$artifacts/" "${regressions[@]}" >"$build/logs/$target.regressions.log" 2>&1; then
      echo "regressions: ${#regressions[@]} inputs pass"
    else
      echo "REGRESSION FAILED: $target (log: $build/logs/$target.regressions.log)"
      grep -E '^Running: |invariant failed|^==[0-9]+==ERROR|SUMMARY' "$build/logs/$target.regressions.log" | tail -n 8
      failed+=("$target (regression)")
    fi
  fi

  corpus="$scratch/$target"
  mkdir -p "$corpus"
  cp fuzz/corpus/"$target"/* "$corpus"/
  seeds=$(find "$corpus" -type f | wc -l)
  # FUZZ_SEED: a fixed libFuzzer seed (ctest sets one, so CI judges the code, not the draw).
  "$bin" "$corpus" -max_total_time="$seconds" -print_final_stats=1 -timeout=25 ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
    -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  status_line=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status_line")
  size=$(find "$corpus" -type f | wc -l)
  line=$(printf '%-15s %12s execs %8s exec/s  cov %6s  ft %6s  corpus %5s (%s seeds)' \
    "$target" "${executions:-?}" "${per_second:-?}" "${cov:-?}" "${ft:-?}" "$size" "$seeds")
  echo "$line"
  summary+=("$line")
  if [ $rc -ne 0 ]; then
    echo "FAILED: $target (exit $rc; log: $log)"
    grep -E 'invariant failed|^==[0-9]+==ERROR|^SUMMARY|^== ' "$log" | head -n 6
    input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    [ -n "$input" ] && echo "input: $input  (copy it to fuzz/regressions/$target/ and fix the bug)"
    failed+=("$target")
  fi
done

echo
echo "== summary ($seconds s per target, $((SECONDS - started)) s in all)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "no crash, leak, timeout or broken invariant"
