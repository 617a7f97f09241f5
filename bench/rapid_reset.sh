#!/usr/bin/env bash
# HTTP/2 rapid reset (CVE-2023-44487) against chat-server: RSS and CPU-seconds
# before a flood, after one, and after five (tools/h2_rapid_reset.mjs, COUNT
# open-then-cancel pairs on one connection each), then whether a normal call
# is still answered. Loopback only.
#
# Usage: bench/rapid_reset.sh [COUNT] [-- chat-server flags...]
# e.g.   bench/rapid_reset.sh 20000 -- --grpc_max_memory_mb=0 --max_connection_idle=0s
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
count=${1:-20000}
shift || true
[[ "${1:-}" == "--" ]] && shift
server=build/bin/chat-server
buf=tests/node_modules/.bin/buf
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
"$server" --listen=127.0.0.1:0 --store=memory --provider=echo "$@" 2>"$dir/log" &
pid=$!
addr=$(wait_listen "$dir/log")
port=${addr##*:}
cpu() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$pid/stat"; }
# The server works through a flood for seconds after the client has gone:
# waits (at most 30 s) until its CPU time stops moving for 2 s, then 11 s
# more so a periodic memory trim (every 10 s) has had its turn.
settle() {
  local last=-1 now
  for _ in $(seq 60); do
    now=$(cpu)
    [[ "$now" == "$last" ]] && break
    last=$now
    sleep 2
  done
  sleep 11
}
answers() {
  if [[ -x $buf ]] && "$buf" curl --protocol grpc --http2-prior-knowledge -d '{}' \
      "http://$addr/chat.v1.ChatService/GetStatus" >/dev/null 2>&1; then
    echo yes
  else
    echo NO
  fi
}
echo "flags: ${*:-(defaults)}; count $count"
echo "before:        RSS $(rss_mib $pid) MiB, CPU $(cpu) s"
node tools/h2_rapid_reset.mjs --port="$port" --count="$count" >"$dir/flood1"
settle
echo "after 1 flood: RSS $(rss_mib $pid) MiB, CPU $(cpu) s, answers: $(answers)"
echo "  $(cat "$dir/flood1")"
for _ in 2 3 4 5; do
  node tools/h2_rapid_reset.mjs --port="$port" --count="$count" >"$dir/flood"
  settle
done
echo "after 5:       RSS $(rss_mib $pid) MiB, CPU $(cpu) s, answers: $(answers)"
echo "  last: $(cat "$dir/flood")"
