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
  for _ in $(seq 100); do
    addr=$(grep -o 'listening on [0-9.:]*' "$log" | awk '{print $3}' || true)
    [[ -n "$addr" ]] && return 0
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$log" >&2; exit 1
}
stop_server() { kill -TERM "$server_pid"; wait "$server_pid" || true; }
rss_mib() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
threads() { awk '/Threads/{print $2}' "/proc/$1/status"; }

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
peak_rss=0; peak_threads=0
while kill -0 "$load_pid" 2>/dev/null; do
  r=$(rss_mib "$server_pid"); t=$(threads "$server_pid")
  peak_rss=$(awk -v a="$r" -v b="$peak_rss" 'BEGIN{print (a>b)?a:b}')
  (( t > peak_threads )) && peak_threads=$t
  sleep 0.2
done
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
