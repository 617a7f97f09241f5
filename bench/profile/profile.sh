#!/usr/bin/env bash
# Flame graphs of chat-gateway and chat-server under /chat load, on the path
# a user takes: wrk -> chat-gateway -> chat-server -> the anthropic provider
# over HTTP -> the fake upstream -> the store.
#
# Usage: bench/profile/profile.sh [memory|sqlite] [OUT_DIR]
#   SECONDS_RECORDED=4 (perf's window per process), CONNECTIONS=64.
#   EMBEDDED=1: one process, chat-server --http_listen serving the REST
#   routes itself (what scripts/run.sh starts); only server.svg is written
#   (a gateway.svg in OUT_DIR is then from an earlier run).
# Writes OUT_DIR/{server,gateway}.svg and .folded (default bench/out/profile)
# and prints the top inclusive frames of each. Needs perf (Debian's
# linux-perf) and a build (scripts/build.sh). The upstream is build/bin/
# fast_upstream when it was built, else tests/fake_upstream/server.mjs.
set -euo pipefail
cd "$(dirname "$0")/../.."
store=${1:-memory}
store_name=$store
out=${2:-bench/out/profile}
secs=${SECONDS_RECORDED:-4}
conns=${CONNECTIONS:-64}
bin=${BIN:-build/bin}
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 2; }
mkdir -p "$out"
tmp=$(mktemp -d /tmp/chatd-profile.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
source bench/lib.sh

if [[ -x "$bin/fast_upstream" ]]; then
  "$bin/fast_upstream" --listen=127.0.0.1:0 2>"$tmp/up.log" &
else
  node tests/fake_upstream/server.mjs 2>"$tmp/up.log" &
fi
pids+=($!)
up=$(wait_listen "$tmp/up.log")
[[ "$store" == sqlite ]] && store="sqlite:$tmp/chat.db"
embedded=false
[[ ${EMBEDDED:-0} == 1 ]] && embedded=true
http=()
$embedded && http=(--http_listen=127.0.0.1:0 --http_web_root=clients --http_access_log)
ANTHROPIC_API_KEY=bench ANTHROPIC_BASE_URL="http://$up" "$bin/chat-server" \
  --listen=127.0.0.1:0 --store="$store" --provider=anthropic --model=ok@bench \
  "${http[@]}" 2>"$tmp/server.log" &
server_pid=$!; pids+=("$server_pid")
addr=$(wait_listen "$tmp/server.log")
processes=(server)
if $embedded; then
  gw=$(grep -o 'REST/JSON on http://[0-9.:]*' "$tmp/server.log" | sed 's|.*http://||')
else
  "$bin/chat-gateway" --listen=127.0.0.1:0 --backend="$addr" --web_root=clients \
    --access_log 2>"$tmp/gateway.log" &
  gateway_pid=$!; pids+=("$gateway_pid")
  gw=$(wait_listen "$tmp/gateway.log")
  processes+=(gateway)
fi

wrk -t2 -c"$conns" -d$((2 * secs + 4))s -s bench/gateway_chat.lua "http://$gw" >"$tmp/wrk.out" &
wrk_pid=$!
# Past wrk's connection set-up, then one process at a time (perf's own cost
# is then on one process only).
sleep 1
perf record -q -F 499 --call-graph dwarf,32768 -p "$server_pid" -o "$tmp/server.data" -- sleep "$secs" 2>/dev/null
$embedded ||
  perf record -q -F 499 --call-graph dwarf,32768 -p "$gateway_pid" -o "$tmp/gateway.data" -- sleep "$secs" 2>/dev/null
wait "$wrk_pid"
grep -E 'Requests/sec|Latency ' "$tmp/wrk.out"
for p in "${processes[@]}"; do
  perf script -i "$tmp/$p.data" 2>/dev/null |
    python3 bench/profile/flamegraph.py "chat-$p, /chat at $conns connections, $store_name store" \
      "$out/$p.svg" "$out/$p.folded"
  echo "== chat-$p: top inclusive frames ($out/$p.svg)"
  python3 bench/profile/top_frames.py "$out/$p.folded" 25
done
