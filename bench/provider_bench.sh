#!/usr/bin/env bash
# Measures the provider path: chat-server streaming from the fake upstream
# (tests/fake_upstream/server.mjs, Anthropic wire format, ~8 events 50 ms
# apart, so each upstream stream lasts ~0.4 s) at growing concurrency, and
# prints for each run: the load generator's figures, chat-server's peak
# threads and RSS (one libcurl I/O thread carries every upstream stream), and
# the upstream's connection reuse (connections opened vs requests), and
# chat-server's CPU for the run (whole, and per call). Bounded:
# each run is a fixed call count. Needs a build (scripts/build.sh) and node.
# With TLS=1 the fake serves HTTPS and HTTP/2, and streams are multiplexed
# (libcurl puts up to 100 on one connection).
# Usage: [TLS=1] bench/provider_bench.sh [concurrency...]   (default: 100 1000 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
levels=("$@")
(( ${#levels[@]} )) || levels=(100 1000 5000)
bin=${BIN:-build/bin}
tmp=$(mktemp -d /tmp/chatd-provider-bench.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT
ulimit -n 65536 2>/dev/null || true

source bench/lib.sh

echo "== machine: $(nproc) cores, $(date -u +%FT%TZ)"
for n in "${levels[@]}"; do
  scheme=http; tls_args=(); server_tls=()
  if [[ "${TLS:-0}" == 1 ]]; then
    scheme=https; tls_args=(--tls)
    server_tls=(--provider_ca_file="$PWD/tests/fake_upstream/tls/cert.pem")
  fi
  node tests/fake_upstream/server.mjs "${tls_args[@]}" 2>"$tmp/up.log" &
  up_pid=$!; pids+=("$up_pid")
  up=$(wait_listen "$tmp/up.log")
  ANTHROPIC_API_KEY=bench ANTHROPIC_BASE_URL="$scheme://$up" \
    "$bin/chat-server" --listen=127.0.0.1:0 --store=memory --provider=anthropic \
    --model="slow:50@bench" --first_byte_timeout=60s "${server_tls[@]}" 2>"$tmp/server.log" &
  server_pid=$!; pids+=("$server_pid")
  addr=$(wait_listen "$tmp/server.log")
  echo "== $n concurrent ChatStream calls through the anthropic provider over $scheme ($((2 * n)) calls)"
  "$bin/grpc_load" --target="$addr" --mode=stream --concurrency="$n" --calls=$((2 * n)) \
    --sessions=$((2 * n)) --channels=8 > "$tmp/load.out" &
  load_pid=$!
  cpu0=$(cpu_ticks "$server_pid")
  watch_peak "$server_pid" "$load_pid"
  wait "$load_pid" || true
  cpu1=$(cpu_ticks "$server_pid")
  cat "$tmp/load.out"
  echo "chat-server peak: ${peak_threads} threads, ${peak_rss} MiB RSS"
  awk -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v calls=$((2 * n)) \
    'BEGIN{printf "chat-server CPU: %.2f s, %.3f ms per call\n", t / hz, 1000 * t / hz / calls}'
  echo "upstream: $(curl -s --cacert tests/fake_upstream/tls/cert.pem "$scheme://$up/_server")"
  kill -TERM "$server_pid"; wait "$server_pid" || true
  kill "$up_pid"; wait "$up_pid" 2>/dev/null || true
done
