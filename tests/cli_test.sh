#!/usr/bin/env bash
# The command line as a newcomer tries it: `agentlancer --version` names the version (VERSION) and
# the commit; every command answers --help (exit 0, a usage line, and for the services every
# configuration key); bare `agentlancer` prints the usage (exit 2); unknown commands and options
# exit 2 with a message.
#   cli_test.sh <agentlancer binary> <repo>
set -uo pipefail
bin="$1"
repo="$2"
fail=0
check() {  # <description> <command…>
  local what="$1"; shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; fail=1; fi
}

version="$(head -1 "$repo/VERSION")"
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
out="$("$bin" --version)"; rc=$?
check "--version exits 0 ($out)" test "$rc" = 0
pattern="^agentlancer ${version//./\\.} \\(commit [0-9a-f]{7,}(-dirty)?\\)$"
check "--version names VERSION ($version) and the commit the binary was built from" grep -Eq "$pattern" <<<"$out"
check "'version' is the same" test "$("$bin" version)" = "$out"

for command in all thread-service offer-service job-service notifier tail-events config-table routes topics; do
  text="$("$bin" "$command" --help 2>&1)"; rc=$?
  check "$command --help exits 0" test "$rc" = 0
  first="$(head -1 <<<"$text")"
  check "$command --help starts with its usage" test "${first#"usage: agentlancer $command"}" != "$first"
done
keys="$("$bin" config-table | awk -F'|' 'NR > 2 {gsub(/[ `]/, "", $2); print $2}')"
help_all="$("$bin" all --help)"
missing=""
for key in $keys; do grep -q -- "--$key" <<<"$help_all" || missing+=" $key"; done
check "all --help lists every configuration key (missing:${missing:- none})" test -z "$missing"

"$bin" >/dev/null 2>&1; rc=$?
check "no command: usage, exit 2" test "$rc" = 2
err="$("$bin" frobnicate 2>&1)"; rc=$?
check "an unknown command: exit 2 ($rc)" test "$rc" = 2
check "an unknown command: says so" grep -q 'unknown command: frobnicate' <<<"$err"
err="$("$bin" all --no_such_key 1 2>&1)"; rc=$?
check "an unknown option: exit 2 ($rc)" test "$rc" = 2
check "an unknown option: names it" grep -q 'unknown option --no_such_key' <<<"$err"
exit $fail
