#!/usr/bin/env bash
# Test fixture: two real local Ethereum chains (anvil, from npm) with ERC-20 test tokens deployed.
#   anvil_fixture.sh start <state-dir> | stop <state-dir>
#
# start: (stops a previous run in <state-dir> first) starts, on 127.0.0.1 free ports,
#   anvil A (chain id 31337) and anvil B (chain id 31338), automine, default mnemonic/10 accounts;
#   deploys TestToken.sol: TOKEN_A "Test USD Coin"/tUSDC/6 and OTHER_A "Other Token"/OTHER/6 on A,
#   TOKEN_B "Test USD Coin"/tUSDC/6 on B, minting 1,000,000 tokens (10^12 base units) of each to
#   account 0; writes <state-dir>/chain.env (KEY=VALUE, addresses lowercase):
#     ANVIL_A_URL ANVIL_B_URL ANVIL_A_CHAIN_ID ANVIL_B_CHAIN_ID BUYER OTHER_ACCOUNT PAY_TO
#     TOKEN_A OTHER_A TOKEN_B
#   Logs: <state-dir>/anvil-a.log, anvil-b.log. Pids: <state-dir>/anvil-a.pid, anvil-b.pid.
# stop: TERM (then KILL after 5 s) the anvils recorded in <state-dir>, only if the pid still is
#   that anvil (binary + port checked), and removes the pid files.
#
# Needs node >= 18, curl, python3 and `npm ci` run once in tests/chain.
# Environment: ANVIL_START_TIMEOUT (seconds to wait for each node's RPC, default 30).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
START_TIMEOUT="${ANVIL_START_TIMEOUT:-30}"
MINT=1000000000000 # 1,000,000 * 10^6

die() { echo "anvil_fixture.sh: $*" >&2; exit 1; }

find_anvil() {
  local a
  for a in "$here"/node_modules/@foundry-rs/anvil-*/bin/anvil; do
    [[ -f "$a" ]] || continue
    case "$a" in # pick the package matching this machine
      *linux-amd64*) [[ "$(uname -sm)" == "Linux x86_64" ]] || continue ;;
      *linux-arm64*) [[ "$(uname -sm)" =~ ^Linux\ (aarch64|arm64)$ ]] || continue ;;
      *darwin-amd64*) [[ "$(uname -sm)" == "Darwin x86_64" ]] || continue ;;
      *darwin-arm64*) [[ "$(uname -sm)" == "Darwin arm64" ]] || continue ;;
    esac
    [[ -x "$a" ]] || chmod +x "$a" 2>/dev/null || die "$a is not executable"
    echo "$a"; return 0
  done
  die "anvil binary not found under $here/node_modules/@foundry-rs/anvil-<os>-<arch>/bin/ - run: (cd $here && npm ci --no-audit --no-fund --loglevel=error)"
}

# Two distinct free loopback TCP ports (bound at the same time, then released).
free_ports() {
  python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
for s in ss: s.close()'
}

rpc() { # rpc <url> <method> <params-json>
  curl -sS --max-time 5 -H 'content-type: application/json' \
    --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":$3}" "$1"
}

# is_ours <pid> <port>: the pid still is an anvil process listening on that port (pid reuse safe).
is_ours() {
  local cmd
  cmd="$( { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null)" || return 1
  [[ "$cmd" == *"/anvil "* && "$cmd" == *" --port $2 "* ]]
}

stop_one() { # stop_one <state-dir> <a|b>
  local pidf="$1/anvil-$2.pid" pid port i
  [[ -f "$pidf" ]] || return 0
  read -r pid port <"$pidf" || true
  if [[ -n "${pid:-}" && -n "${port:-}" ]] && is_ours "$pid" "$port"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do is_ours "$pid" "$port" || break; sleep 0.1; done
    if is_ours "$pid" "$port"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.1; fi
  fi
  rm -f "$pidf"
}

cmd_stop() {
  stop_one "$1" a
  stop_one "$1" b
}

# start_one <state-dir> <a|b> <port> <chain-id>: background anvil, pid file "<pid> <port>".
start_one() {
  # All fds redirected: a ctest fixture must not leave its stdout/stderr pipes held open.
  "$ANVIL" --host 127.0.0.1 --port "$3" --chain-id "$4" >"$1/anvil-$2.log" 2>&1 </dev/null &
  echo "$! $3" >"$1/anvil-$2.pid"
}

wait_ready() { # wait_ready <state-dir> <a|b> <url> <chain-id-hex>
  local pid port deadline=$((SECONDS + START_TIMEOUT)) out
  read -r pid port <"$1/anvil-$2.pid"
  while :; do
    out="$(rpc "$3" eth_chainId '[]' 2>/dev/null || true)"
    [[ "$out" == *"\"result\":\"$4\""* ]] && return 0
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$1/anvil-$2.log" >&2; return 1; }
    ((SECONDS < deadline)) || { echo "anvil $2 at $3: no eth_chainId=$4 after ${START_TIMEOUT}s (last: $out)" >&2; return 1; }
    sleep 0.05
  done
}

json_field() { node -e 'const o=JSON.parse(process.argv[1]); process.stdout.write(String(o[process.argv[2]]))' "$1" "$2"; }

cmd_start() {
  local sd="$1" pa pb urla urlb attempt accounts buyer other payto
  ANVIL="$(find_anvil)"
  command -v node >/dev/null || die "node not found"
  command -v curl >/dev/null || die "curl not found"
  [[ -d "$here/node_modules/solc" ]] || die "solc not installed - run: (cd $here && npm ci --no-audit --no-fund --loglevel=error)"
  cmd_stop "$sd"
  rm -f "$sd/chain.env"
  STARTED=""
  trap '[[ -n "$STARTED" ]] || cmd_stop "$sd"' EXIT # never leave half a fixture running

  for attempt in 1 2 3; do # a free port may be taken between probe and bind: retry
    read -r pa pb <<<"$(free_ports)"
    urla="http://127.0.0.1:$pa"; urlb="http://127.0.0.1:$pb"
    start_one "$sd" a "$pa" 31337
    start_one "$sd" b "$pb" 31338
    if wait_ready "$sd" a "$urla" 0x7a69 && wait_ready "$sd" b "$urlb" 0x7a6a; then break; fi
    cmd_stop "$sd"
    ((attempt < 3)) || die "anvil did not start (see $sd/anvil-a.log, $sd/anvil-b.log)"
  done

  accounts="$(rpc "$urla" eth_accounts '[]')"
  read -r buyer other payto < <(node -e '
    const a = JSON.parse(process.argv[1]).result || [];
    if (a.length < 3) process.exit(1);
    console.log(a.slice(0, 3).map((x) => x.toLowerCase()).join(" "));' "$accounts") \
    || die "eth_accounts on $urla: $accounts"

  export TESTTOKEN_ARTIFACT="$sd/TestToken.artifact.json"
  local ta oa tb
  # First deploy compiles (and caches); the other two then run in parallel on the two chains.
  ta="$(node "$here/deploy.js" "$urla" "Test USD Coin" tUSDC 6 "$buyer" "$MINT")"
  node "$here/deploy.js" "$urla" "Other Token" OTHER 6 "$buyer" "$MINT" >"$sd/deploy-other-a.json" & local p1=$!
  node "$here/deploy.js" "$urlb" "Test USD Coin" tUSDC 6 "$buyer" "$MINT" >"$sd/deploy-token-b.json" & local p2=$!
  wait "$p1" || die "deploy of OTHER_A failed"
  wait "$p2" || die "deploy of TOKEN_B failed"
  oa="$(cat "$sd/deploy-other-a.json")"; tb="$(cat "$sd/deploy-token-b.json")"
  rm -f "$sd/deploy-other-a.json" "$sd/deploy-token-b.json"

  cat >"$sd/chain.env.tmp" <<EOF
ANVIL_A_URL=$urla
ANVIL_B_URL=$urlb
ANVIL_A_CHAIN_ID=31337
ANVIL_B_CHAIN_ID=31338
BUYER=$buyer
OTHER_ACCOUNT=$other
PAY_TO=$payto
TOKEN_A=$(json_field "$ta" address)
OTHER_A=$(json_field "$oa" address)
TOKEN_B=$(json_field "$tb" address)
EOF
  mv "$sd/chain.env.tmp" "$sd/chain.env"
  STARTED=1
  echo "anvil ready: A $urla (31337), B $urlb (31338); env in $sd/chain.env"
}

case "${1:-}" in
  start|stop)
    [[ -n "${2:-}" ]] || { echo "usage: $0 start|stop <state-dir>" >&2; exit 2; }
    mkdir -p "$2"; sd="$(cd "$2" && pwd)"
    "cmd_$1" "$sd" ;;
  *) echo "usage: $0 start|stop <state-dir>" >&2; exit 2 ;;
esac
