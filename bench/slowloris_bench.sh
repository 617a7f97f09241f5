#!/usr/bin/env bash
# A normal client's latency through chat-gateway with and without 1,000
# slowloris connections (bench/slowloris.mjs: one header byte a second each,
# reopened when the gateway closes them). bench/RESULTS.md keeps a run.
#   1. baseline: wrk, GET /v1/status, 16 keep-alive connections, N s
#   2. the same while slowloris holds 1,000 connections (gateway defaults:
#      --header_timeout=10s cuts each off after 10 s, and it reconnects)
#   3. the same with --header_timeout=1h, so all 1,000 stay open all along
# The gateway runs with its default caps: the slowloris connections come
# from 127.0.0.2-127.0.0.11 (100 per address, under the per-client cap of
# 1,000), wrk from 127.0.0.1. Every load is bounded in time.
# Needs a build, wrk and node. Usage: bench/slowloris_bench.sh [seconds]
# BIN=dir picks the binaries (default build/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
bin=${BIN:-build/bin}
tmp=$(mktemp -d /tmp/chatd-slowloris.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
ulimit -n 65536 2>/dev/null || true
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }

source bench/lib.sh

# start [GATEWAY FLAGS...]: chat-server (memory store, echo) + chat-gateway.
start() {
  "$bin/chat-server" --listen=127.0.0.1:0 --provider=echo --store=memory \
    2>"$tmp/server.log" &
  server_pid=$!; pids+=("$server_pid")
  server_addr=$(wait_listen "$tmp/server.log")
  "$bin/chat-gateway" --listen=127.0.0.1:0 --backend="$server_addr" "$@" \
    2>"$tmp/gw.log" &
  gw_pid=$!; pids+=("$gw_pid")
  gw_addr=$(wait_listen "$tmp/gw.log")
}
stop() {
  kill -TERM "$gw_pid" "$server_pid" 2>/dev/null || true
  wait "$gw_pid" "$server_pid" 2>/dev/null || true
}
measure() {
  wrk -t1 -c16 -d"${secs}s" --latency "http://$gw_addr/v1/status" |
    grep -E 'Requests/sec|^ +50%|^ +99%|Non-2xx|Socket errors' | tr -s ' ' | paste -sd' '
}
# with_slowloris: runs measure() while slowloris holds 1,000 connections.
with_slowloris() {
  node bench/slowloris.mjs "$gw_addr" 1000 $((secs + 10)) 10 > "$tmp/sl.out" &
  sl_pid=$!; pids+=("$sl_pid")
  for _ in $(seq 200); do grep -q ' open$' "$tmp/sl.out" && break; sleep 0.1; done
  grep ' open$' "$tmp/sl.out" || { echo "slowloris did not open its connections" >&2; cat "$tmp/sl.out" >&2; exit 1; }
  echo "gateway with the connections open: $(threads "$gw_pid") threads, $(rss_mib "$gw_pid") MiB RSS"
  measure
  wait "$sl_pid" || true
  tail -1 "$tmp/sl.out"
}

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB, $(date -u +%FT%TZ)"

start
echo "== 1. baseline: wrk GET /v1/status, 16 connections, ${secs}s, gateway defaults"
measure
echo "== 2. the same with 1,000 slowloris connections, gateway defaults (--header_timeout=10s)"
with_slowloris
{ grep -c 'refused' "$tmp/gw.log" || true; } | sed 's/^/gateway log lines about refusals: /'
stop

start --header_timeout=1h
echo "== 3. the same with --header_timeout=1h: the 1,000 connections stay open throughout"
with_slowloris
stop
