#!/usr/bin/env bash
# Measures chat-gateway in front of chat-server on loopback and prints the
# figures (bench/RESULTS.md keeps a run):
#   1. POST /chat throughput and latency (p50/p99) with wrk, 64 connections
#   2. N concurrent SSE streams through the gateway (node): completions, time
#      to the first delta, gateway threads and memory at the peak
# Every load is bounded (a duration or a stream count). Needs a build and wrk
# (Debian package `wrk`). Usage: bench/gateway_bench.sh [seconds] [streams]
# BIN=dir picks the binaries (default build/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
streams=${2:-2000}
bin=${BIN:-build/bin}
tmp=$(mktemp -d /tmp/chatd-gwbench.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
ulimit -n 65536 2>/dev/null || true
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }

source bench/lib.sh

# start DELAY: chat-server (memory store, echo) + chat-gateway; sets pids.
start() {
  "$bin/chat-server" --listen=127.0.0.1:0 --provider=echo --store=memory \
    --echo_delay="$1" 2>"$tmp/server.log" &
  server_pid=$!; pids+=("$server_pid")
  server_addr=$(wait_listen "$tmp/server.log")
  # One client address opens every stream: the per-client cap is lifted.
  "$bin/chat-gateway" --listen=127.0.0.1:0 --backend="$server_addr" \
    --max_connections=100000 --max_connections_per_client=100000 2>"$tmp/gw.log" &
  gw_pid=$!; pids+=("$gw_pid")
  gw_addr=$(wait_listen "$tmp/gw.log")
}
stop() {
  kill -TERM "$gw_pid" "$server_pid" 2>/dev/null || true
  wait "$gw_pid" "$server_pid" 2>/dev/null || true
}

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB, $(date -u +%FT%TZ)"

start 0s
echo "== POST /chat through the gateway, 64 connections, ${secs}s (memory store, echo, no delay)"
wrk -t2 -c64 -d"${secs}s" --latency -s bench/gateway_chat.lua "http://$gw_addr" |
  grep -E 'Requests/sec|Latency  |^ +50%|^ +99%|Non-2xx|Socket errors'
echo "gateway after: $(threads "$gw_pid") threads, $(rss_mib "$gw_pid") MiB RSS"
stop

# ~14 deltas 50 ms apart: each stream lasts about 0.7 s.
start 50ms
echo "== ${streams} concurrent SSE streams (POST /v1/chat:stream)"
node bench/gateway_streams.mjs "http://$gw_addr" "$streams" > "$tmp/streams.out" &
load_pid=$!
watch_peak "$gw_pid" "$load_pid"
wait "$load_pid" || true
cat "$tmp/streams.out"
echo "gateway peak: ${peak_threads} threads, ${peak_rss} MiB RSS"
stop
