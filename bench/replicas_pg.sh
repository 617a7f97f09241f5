#!/usr/bin/env bash
# Scale-out by simulation: 1, 2 and 4 chat-server replicas on one PostgreSQL,
# one chat-gateway balancing over them, wrk running POST /chat (every request
# a new session) at 64 connections. Prints, per replica count: requests/s,
# p50/p99, and the CPU each tier spent per turn (replicas, gateway,
# PostgreSQL: all its backends and background processes), from which
# "turns per second per PostgreSQL core" = 1 / PostgreSQL CPU seconds per turn.
#
# Everything shares this machine's cores, so more replicas do not add CPU
# here; what the run shows is the cost per turn of each tier, which is what
# sizing on real machines needs. PostgreSQL keeps its durable defaults
# (fsync, synchronous_commit on). The provider is the anthropic one against
# build/bin/fast_upstream when built (bench/run.sh builds it), else echo.
#
# Usage: bench/replicas_pg.sh [REPLICA_COUNTS...]   (default: 1 2 4)
#   DURATION=10 (seconds of load per count), CONNECTIONS=64.
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("$@")
(( ${#counts[@]} )) || counts=(1 2 4)
duration=${DURATION:-10}
conns=${CONNECTIONS:-64}
bin=${BIN:-build/bin}
tmp=$(mktemp -d /tmp/chatd-replicas.XXXXXX)
chmod 755 "$tmp"  # PostgreSQL runs as `postgres` when we are root.
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  bash scripts/pg-test-cluster.sh stop "$tmp/pg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
source bench/lib.sh

ticks() { awk '{s += $14 + $15} END {print s + 0}' "$@" 2>/dev/null || echo 0; }
pg_ticks() {
  local main; main=$(head -n 1 "$tmp/pg/data/postmaster.pid")
  local files=("/proc/$main/stat")
  for c in $(pgrep -P "$main"); do files+=("/proc/$c/stat"); done
  ticks "${files[@]}"
}

dsn=$(bash scripts/pg-test-cluster.sh start "$tmp/pg")
provider=(--provider=echo --echo_delay=0s)
upstream="echo provider (no upstream)"
if [[ -x "$bin/fast_upstream" ]]; then
  "$bin/fast_upstream" --listen=127.0.0.1:0 2>"$tmp/up.log" &
  up_pid=$!; pids+=("$up_pid")
  up=$(wait_listen "$tmp/up.log")
  provider=(--provider=anthropic --model=bench)
  export ANTHROPIC_API_KEY=bench ANTHROPIC_BASE_URL="http://$up"
  upstream="anthropic provider to fast_upstream"
fi
hz=$(getconf CLK_TCK)
echo "== $(nproc) cores, $(date -u +%FT%TZ), $(git rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== POST /chat, $conns connections, ${duration} s per row, $upstream, $("$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/postgres" --version)"
printf '| replicas | req/s | p50 | p99 | replicas CPU/turn | gateway CPU/turn | PostgreSQL CPU/turn | turns/s per PostgreSQL core |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for n in "${counts[@]}"; do
  addrs=(); replica_pids=()
  for ((r = 0; r < n; r++)); do
    "$bin/chat-server" --listen=127.0.0.1:0 --store="postgres:$dsn" "${provider[@]}" \
      2>"$tmp/replica$r.log" &
    pids+=("$!"); replica_pids+=("$!")
    addrs+=("$(wait_listen "$tmp/replica$r.log")")
  done
  "$bin/chat-gateway" --listen=127.0.0.1:0 --backend="$(IFS=,; echo "${addrs[*]}")" \
    2>"$tmp/gateway.log" &
  gateway_pid=$!; pids+=("$gateway_pid")
  gw=$(wait_listen "$tmp/gateway.log")
  # Warm-up: connections to PostgreSQL and between the tiers.
  wrk -t2 -c"$conns" -d2s -s bench/gateway_chat.lua "http://$gw" >/dev/null
  replica_stats=(); for p in "${replica_pids[@]}"; do replica_stats+=("/proc/$p/stat"); done
  r0=$(ticks "${replica_stats[@]}"); g0=$(ticks "/proc/$gateway_pid/stat"); p0=$(pg_ticks)
  wrk -t2 -c"$conns" -d"${duration}s" --latency -s bench/gateway_chat.lua "http://$gw" >"$tmp/wrk.out"
  r1=$(ticks "${replica_stats[@]}"); g1=$(ticks "/proc/$gateway_pid/stat"); p1=$(pg_ticks)
  awk -v r=$((r1 - r0)) -v g=$((g1 - g0)) -v p=$((p1 - p0)) -v hz="$hz" -v n="$n" '
    /requests in/ {reqs = $1}
    /Requests\/sec/ {rps = $2}
    $1 == "50%" {p50 = $2}
    $1 == "99%" {p99 = $2}
    /Non-2xx/ {bad = $4}
    END {
      us = 1e6 / hz / reqs
      printf "| %d | %.0f | %s | %s | %.0f us | %.0f us | %.0f us | %s |\n", n, rps, p50, p99,
             r * us, g * us, p * us, (p > 0 ? sprintf("%.0f", reqs * hz / p) : "n/a")
      if (bad != "") printf "  (%s non-2xx answers)\n", bad
    }' "$tmp/wrk.out"
  stop_all
done
