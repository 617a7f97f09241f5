#!/usr/bin/env bash
# How exact an API key's requests-per-minute limit is across replicas.
# Starts a throw-away PostgreSQL (scripts/pg-test-cluster.sh) and two
# chat-server replicas on it (echo provider, no delay), makes keys with
# --rpm=LIMIT, and from the start of a UTC minute offers calls to both
# replicas at once:
#   1. open loop: twice the limit in total (LIMIT/60 calls/s at each replica)
#      for MINUTES whole minutes;
#   2. burst: closed loop, 64 calls in flight at each replica, for one minute
#      (every refusal is answered at once, so the store sees thousands of
#      contending charges per second).
# Prints what each replica accepted, the total, LIMIT x minutes and the error.
# The load stops 1 s before the last minute ends, so no call can be charged to
# the minute after; at twice the limit the window is used up by its middle,
# so that second changes nothing. Bounded; loopback only. Needs a build
# (scripts/build.sh). Usage: bench/rate_limit_replicas.sh [MINUTES] [LIMIT]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-3}
limit=${2:-600}
bin=build/bin
tmp=$(mktemp -d /tmp/chatd-ratelimit.XXXXXX)
chmod 755 "$tmp"  # PostgreSQL runs as `postgres` when we are root.
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bash scripts/pg-test-cluster.sh stop "$tmp/pg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
source bench/lib.sh

dsn=$(bash scripts/pg-test-cluster.sh start "$tmp/pg")
store="postgres:$dsn"

# new_key NAME: a key of tenant `bench` limited to $limit requests per minute.
new_key() {
  "$bin/chat-server" keys create --tenant=bench --name="$1" --rpm="$limit" \
    --store="$store" 2>/dev/null | grep -o 'chatd_[0-9a-f]*_[0-9a-f]*' | head -n 1
}
# Keys before replicas: both replicas know them from their first call.
open_key=$(new_key open)
burst_key=$(new_key burst)

addrs=()
for r in 0 1; do
  "$bin/chat-server" --listen=127.0.0.1:0 --store="$store" --provider=echo \
    --echo_delay=0s 2>"$tmp/replica$r.log" &
  pids+=("$!")
  addrs+=("$(wait_listen "$tmp/replica$r.log")")
done

# next_minute: the next UTC minute at least 5 s away (time to connect), as
# RFC 3339.
next_minute() {
  local t=$(( ($(date +%s) + 5) / 60 * 60 + 60 ))
  date -u -d "@$t" +%Y-%m-%dT%H:%M:%SZ
}

# run NAME MINUTES KEY GRPC_LOAD_ARGS...: loads both replicas from the next
# minute for MINUTES minutes and prints the figures.
run() {
  local name=$1 mins=$2 key=$3; shift 3
  local start; start=$(next_minute)
  echo "== $name: from $start for $mins min, limit $limit/min"
  local load=()
  for r in 0 1; do
    "$bin/grpc_load" --target="${addrs[$r]}" --api_key="$key" \
      --start_at="$start" --duration="$((mins * 60 - 1))s" \
      --session_prefix="$name-r$r-" --sessions=1000 --channels=4 "$@" \
      >"$tmp/$name.$r.out" &
    load+=("$!")
  done
  wait "${load[@]}"
  local total=0 expected=$((limit * mins))
  for r in 0 1; do
    local ok re errors
    ok=$(sed -n 's/^ok=\([0-9]*\).*/\1/p' "$tmp/$name.$r.out")
    re=$(sed -n 's/.*resource_exhausted=\([0-9]*\).*/\1/p' "$tmp/$name.$r.out")
    errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' "$tmp/$name.$r.out")
    echo "replica $r: accepted $ok, refused $re, other errors $((errors - re))"
    grep '^first error' "$tmp/$name.$r.out" || true
    total=$((total + ok))
  done
  awk -v t="$total" -v e="$expected" \
    'BEGIN { printf "total accepted %d, limit x minutes %d, error %+.2f%%\n", t, e, (t - e) * 100 / e }'
}

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB, $(date -u +%F)"
run open "$minutes" "$open_key" --rate="$(awk -v l="$limit" 'BEGIN{print l / 60}')" --concurrency=64
run burst 1 "$burst_key" --concurrency=64
