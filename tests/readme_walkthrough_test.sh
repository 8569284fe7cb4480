#!/usr/bin/env bash
# Runs the README's walk-through block verbatim against a freshly started binary, then reads its
# events back with `agentlancer tail-events`, then stops the server with SIGTERM (clean exit).
#   readme_walkthrough_test.sh <agentlancer binary> <README.md>
# With `-` for the binary and BASE set, it runs the block against BASE instead (the cluster's
# gateway) and checks its output only.
set -euo pipefail
bin="$1"
readme="$2"
work="$(mktemp -d /tmp/agentlancer-readme-XXXXXX)"
server=""
cleanup() { if [[ -n "$server" ]]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT
if [[ "$bin" == - ]]; then
  [[ -n "${BASE:-}" ]] || { echo "BASE must be set with -"; exit 2; }
  base="$BASE"
else
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  "$bin" all --port "$port" --data_dir "$work/data" --http.access_log false 2>"$work/server.log" &
  server=$!
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "$base/readyz" >/dev/null || { echo "server not ready"; tail -20 "$work/server.log"; exit 1; }
fi

sed -n '/<!-- walkthrough:start -->/,/<!-- walkthrough:end -->/p' "$readme" | sed '1,2d;$d' | sed '$d' > "$work/walkthrough.sh"
[ -s "$work/walkthrough.sh" ] || { echo "no walk-through block in $readme"; exit 1; }
out="$(cd "$work" && BASE="$base" bash -euo pipefail walkthrough.sh)"
echo "$out"
fail=0
for want in '"escrowVerified":true,"contractId"' '"status": "funded"' '"chain_adapter": "sandbox"' '"status": "awaiting_payment"' '"status": "quote_locked"' 'lock_quote' '"next_action": "create_offer"' '"terms_complete": true' '"type":"thread.quote_locked"' '"type":"agent.registered"' '"type":"job.escrow_verified"' "accept: 204" "negotiation: 204" "requirement: 204" "deliverable: 204" "evaluate: 204" '"phase": 4' '"phaseName": "COMPLETED"' '"escrowVerified": true' '"typeName": "PAYABLE_REQUEST"'; do
  grep -qF "$want" <<<"$out" || { echo "missing in output: $want"; fail=1; }
done

if [[ "$bin" == - ]]; then
  [ "$fail" -eq 0 ] && echo "README walk-through against $base: ok"
  exit "$fail"
fi

# 2 agent.registered + 1 service.published + 4 thread events (opened, message_posted, quote_locked,
# status_changed to offered) + 2 offer events (created, accepted) + 3 contract events (created,
# payment_submitted, funded) + 2 events of the contract's job (created, escrow verified) + 7 events of
# the job created by hand (created, accept, escrow, negotiation, memo, deliverable, evaluate).
events="$(timeout 60 "$bin" tail-events --data-dir "$work/data" --max 21 2>/dev/null || true)"
count="$(grep -c . <<<"$events" || true)"
echo "tail-events printed $count events"
[ "$count" -eq 21 ] || { echo "expected 21 events"; fail=1; }
[ "$(grep -c $'^agentlancer.threads.v1\t' <<<"$events")" -eq 4 ] || { echo "expected 4 thread events"; fail=1; }
[ "$(grep -c $'^agentlancer.offers.v1\t' <<<"$events")" -eq 2 ] || { echo "expected 2 offer events"; fail=1; }
[ "$(grep -c $'^agentlancer.contracts.v1\t' <<<"$events")" -eq 3 ] || { echo "expected 3 contract events"; fail=1; }
[ "$(grep -c $'^agentlancer.jobs.v1\t' <<<"$events")" -eq 9 ] || { echo "expected 9 job events"; fail=1; }

kill -TERM "$server"
if wait "$server"; then echo "server stopped cleanly"; else echo "server exit code $?"; fail=1; fi
[ "$fail" -eq 0 ] && echo "README walk-through: ok"
exit "$fail"
