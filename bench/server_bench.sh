#!/usr/bin/env bash
# Measures chat-server alone over gRPC on loopback and prints the figures:
#   1. unary Chat throughput and latency at 64 calls in flight (SQLite, memory)
#   2. 10,000 concurrent one-second streams: completion rate, server threads
#      and memory at the peak
#   3. server memory before and after storing 50,000 sessions
# Every load is bounded (a duration or a call count). Needs a build
# (scripts/build.sh). Usage: bench/server_bench.sh [seconds per unary run]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
bin=build/bin
tmp=$(mktemp -d /tmp/chatd-bench.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
ulimit -n 65536 2>/dev/null || true

# start_server LOG ARGS...: starts chat-server, sets $server_pid and $addr.
start_server() {
  local log=$1; shift
  "$bin/chat-server" --listen=127.0.0.1:0 "$@" 2>"$log" &
  server_pid=$!
  pids+=("$server_pid")
  addr=$(wait_listen "$log")
}
stop_server() { kill -TERM "$server_pid"; wait "$server_pid" || true; }
source bench/lib.sh

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB, $(date -u +%F)"

for store in "sqlite:$tmp/unary.db" memory; do
  start_server "$tmp/unary.log" --store="$store" --echo_delay=0s
  echo "== unary Chat, store=${store%%:*}, 64 in flight, ${secs}s"
  "$bin/grpc_load" --target="$addr" --mode=unary --concurrency=64 \
    --duration="${secs}s" --sessions=5000
  stop_server
done

# A reply of the echo provider is ~12 deltas: 80 ms apart, a stream lasts ~1 s.
start_server "$tmp/stream.log" --store="sqlite:$tmp/stream.db" --echo_delay=80ms
echo "== 10000 concurrent streams of ~1 s each (20000 calls)"
"$bin/grpc_load" --target="$addr" --mode=stream --concurrency=10000 --calls=20000 \
  --sessions=20000 --channels=16 > "$tmp/stream.out" &
load_pid=$!
watch_peak "$server_pid" "$load_pid"
cat "$tmp/stream.out"
echo "server peak: ${peak_threads} threads, ${peak_rss} MiB RSS"
stop_server

start_server "$tmp/mem.log" --store="sqlite:$tmp/mem.db" --echo_delay=0s
"$bin/grpc_load" --target="$addr" --mode=unary --concurrency=32 --calls=2000 --sessions=2000 >/dev/null
before=$(rss_mib "$server_pid")
echo "== memory vs stored sessions"
"$bin/grpc_load" --target="$addr" --mode=unary --concurrency=64 --calls=50000 --sessions=50000 | tail -n +2
after=$(rss_mib "$server_pid")
echo "server RSS: ${before} MiB with 2000 sessions, ${after} MiB with 52000 sessions"
stop_server
