#!/usr/bin/env bash
# Flame graphs of chat-gateway and chat-server under /chat load (or one
# burst of streams), on the path a user takes: wrk -> chat-gateway ->
# chat-server -> the anthropic provider over HTTP -> the fake upstream ->
# the store.
#
# Usage: bench/profile/profile.sh [memory|sqlite] [OUT_DIR]
#   SECONDS_RECORDED=4 (perf's window per process), CONNECTIONS=64: /chat.
#   EMBEDDED=1: one process, chat-server --http_listen serving the REST
#   routes itself (what scripts/run.sh starts); only server.svg is written
#   (a gateway.svg in OUT_DIR is then from an earlier run).
#   STREAMS=N: instead of /chat under wrk, one burst of N concurrent
#   one-second streams (bench/sse_streams; 20 tokens 50 ms apart upstream,
#   as bench/run.sh's), recorded whole, from the first connection to the
#   last stream's end, both processes at once; needs build/bin/sse_streams
#   and fast_upstream. Each stream is a new session, so its title call (a
#   second upstream request) is in the profile too, but for the titles
#   still running when the last stream ends.
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

streams=${STREAMS:-0}
[[ $streams =~ ^[0-9]+$ ]] ||
  { echo "STREAMS must be one number of streams (bench/run.sh takes a list)" >&2; exit 2; }
upstream_args=()
if (( streams > 0 )); then
  [[ -x "$bin/sse_streams" && -x "$bin/fast_upstream" ]] ||
    { echo "STREAMS needs $bin/sse_streams and $bin/fast_upstream" >&2; exit 2; }
  upstream_args=(--tokens=20 --token_delay_ms=50)
  # Each stream holds a descriptor for its client and one for its upstream.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if [[ -x "$bin/fast_upstream" ]]; then
  "$bin/fast_upstream" --listen=127.0.0.1:0 "${upstream_args[@]}" 2>"$tmp/up.log" &
else
  node tests/fake_upstream/server.mjs 2>"$tmp/up.log" &
fi
pids+=($!)
up=$(wait_listen "$tmp/up.log")
[[ "$store" == sqlite ]] && store="sqlite:$tmp/chat.db"
embedded=false
[[ ${EMBEDDED:-0} == 1 ]] && embedded=true
http=()
$embedded && http=(--http_listen=127.0.0.1:0 --http_web_root=clients --http_access_log
  --http_max_connections=100000 --http_max_connections_per_client=100000)
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
    --access_log --max_connections=100000 --max_connections_per_client=100000 \
    2>"$tmp/gateway.log" &
  gateway_pid=$!; pids+=("$gateway_pid")
  gw=$(wait_listen "$tmp/gateway.log")
  processes+=(gateway)
fi

# One turn first: the provider's first upstream connection and the
# gateway's channel are set up lazily, and the profile is of the steady state.
curl -sf -o /dev/null -X POST "http://$gw/chat" -H 'Content-Type: application/json' \
  -d '{"message":"warm up","session_id":"profile-warm-up"}' ||
  { echo "warm-up /chat failed" >&2; exit 1; }

if (( streams > 0 )); then
  load="$streams one-second streams"
  # Both processes at once, for the whole burst: it is over in seconds.
  perf_pids=()
  for p in "${processes[@]}"; do
    pid_var="${p}_pid"
    perf record -q -F 499 --call-graph dwarf,32768 -p "${!pid_var}" -o "$tmp/$p.data" \
      2>"$tmp/perf-$p.log" &
    perf_pids+=($!); pids+=($!)
  done
  sleep 1  # perf attaches asynchronously.
  # A burst with failed streams is still profiled; its first error is shown.
  streams_rc=0
  "$bin/sse_streams" --target="$gw" --streams="$streams" >"$tmp/streams.out" 2>&1 ||
    streams_rc=$?
  # perf stops and writes its data on SIGINT (its own handler, so a
  # background perf still takes it).
  for p in "${perf_pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${perf_pids[@]}"; do wait "$p" || true; done
  grep -v '^$' "$tmp/streams.out"
  (( streams_rc == 0 )) || echo "warning: sse_streams exited $streams_rc (failed streams)" >&2
  for p in "${processes[@]}"; do
    [[ -s "$tmp/$p.data" ]] ||
      { echo "perf recorded nothing for chat-$p:" >&2; cat "$tmp/perf-$p.log" >&2; exit 1; }
  done
else
  load="/chat at $conns connections"
  wrk -t2 -c"$conns" -d$((2 * secs + 4))s -s bench/gateway_chat.lua "http://$gw" >"$tmp/wrk.out" &
  wrk_pid=$!
  # Past wrk's connection set-up, then one process at a time (perf's own
  # cost is then on one process only).
  sleep 1
  perf record -q -F 499 --call-graph dwarf,32768 -p "$server_pid" -o "$tmp/server.data" -- sleep "$secs" 2>/dev/null
  $embedded ||
    perf record -q -F 499 --call-graph dwarf,32768 -p "$gateway_pid" -o "$tmp/gateway.data" -- sleep "$secs" 2>/dev/null
  wait "$wrk_pid"
  grep -E 'Requests/sec|Latency ' "$tmp/wrk.out"
fi
for p in "${processes[@]}"; do
  perf script -i "$tmp/$p.data" 2>/dev/null |
    python3 bench/profile/flamegraph.py "chat-$p, $load, $store_name store" \
      "$out/$p.svg" "$out/$p.folded"
  echo "== chat-$p: top inclusive frames ($out/$p.svg)"
  python3 bench/profile/top_frames.py "$out/$p.folded" 25
done
