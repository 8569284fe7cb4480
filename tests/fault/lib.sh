# Shared by the shell tests of tests/fault (sourced). Each records failures in $fail and goes on,
# so one run reports every check.
fail=0

check() {  # <description> <command…>: runs the command; prints ok or FAILED
  local what="$1"; shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; fail=1; fi
}

wait_for() {  # <seconds> <command…>: polls the command until it succeeds or the time is up
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@"; do (( $(date +%s) < deadline )) || return 1; sleep 0.2; done
}
