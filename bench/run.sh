#!/usr/bin/env bash
# The bench of issue 11: the path a user takes, measured in one command.
# wrk runs POST /chat (the template route) through chat-gateway -> chat-server
# -> the anthropic provider over HTTP -> bench/fast_upstream (Anthropic's
# streaming format, 20 tokens) -> the store, for the memory store and for
# SQLite (synchronous=FULL, a fresh file), everything on loopback:
#   - /chat at 1, 16, 64 and 256 connections: req/s, p50, p99, and CPU per
#     request of the gateway and of the server (/proc/PID/stat deltas);
#   - the upstream's own p50 at 1 connection (wrk at /v1/messages with the
#     provider's request), so "/chat p50 - upstream p50" is chatd's latency;
#   - 100, 1,000, 3,000 and 10,000 concurrent one-second streams
#     (POST /v1/chat:stream, 20 tokens 50 ms apart upstream): wall time,
#     first-byte p50/p99, errors, peak RSS of gateway + server (sampled every
#     100 ms) and, after the largest, RSS 5, 10, 20 and 30 s after the load.
# Prints one markdown table (the figures of issue 11, memory and SQLite side
# by side) and the per-level rows; writes OUT/*.csv, OUT/*.dat, OUT/bench.png
# (gnuplot) and OUT/table.md. Processes start fresh for every phase.
#
# Usage: bench/run.sh            (about 5 minutes)
#   DURATION=S        seconds per wrk run (default 10)
#   QUICK=1           64 connections and 1,000 streams only, DURATION=5
#   ALLOCATOR=jemalloc|tcmalloc   LD_PRELOAD Debian's allocator into both
#                     chatd binaries (libjemalloc2 / libtcmalloc-minimal4).
#                     They link jemalloc already (cmake/Allocator.cmake); for
#                     glibc's malloc use a build configured with
#                     -DCHAT_ALLOCATOR=system: BUILD_DIR=build-system.
#   OUT=DIR           output directory (default bench/out, gitignored;
#                     bench/out/ALLOCATOR with ALLOCATOR set)
#   BUILD_DIR=DIR     build tree (default build; configured if missing)
#   BIN_DIR=DIR       run the binaries in DIR as they are, building nothing
#                     (an A/B: keep the "before" binaries in a directory)
#   EMBEDDED=1        one process: chat-server --http_listen serves the REST
#                     routes itself (no chat-gateway); CPU and RSS are the one
#                     process's, shown as the server's. Its connection caps
#                     are lifted as the gateway's are (--http_max_connections*).
#   STORES="memory sqlite", CONNS="1 16 64 256", STREAMS="100 1000 3000 10000"
#                     override the levels
# Needs wrk; installs wrk, gnuplot-nox and the allocator with
# apt-get if missing. Every load is bounded (a duration or a stream count).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

if [[ "${QUICK:-0}" == 1 ]]; then
  duration=${DURATION:-5}
  read -r -a conns <<<"${CONNS:-64}"
  read -r -a stream_levels <<<"${STREAMS:-1000}"
else
  duration=${DURATION:-10}
  read -r -a conns <<<"${CONNS:-1 16 64 256}"
  read -r -a stream_levels <<<"${STREAMS:-100 1000 3000 10000}"
fi
read -r -a stores <<<"${STORES:-memory sqlite}"
# With EMBEDDED=1 each stream holds two of the one process's descriptors
# (its client's connection and its upstream's; with chat-gateway, one in
# each process): too low a limit fails the last ones of a burst with 503
# "(Too many open files)", which measures the machine.
fds_per_stream=1
[[ ${EMBEDDED:-0} == 1 ]] && fds_per_stream=2
need_fds=$((fds_per_stream * $(printf '%s\n' "${stream_levels[@]}" | sort -n | tail -1) + 200))
if [[ $(ulimit -Hn) != unlimited && $(ulimit -Hn) -lt $need_fds ]]; then
  echo "warning: the descriptor limit (ulimit -Hn: $(ulimit -Hn)) is under the" \
    "~$need_fds the largest stream level needs; some of its streams may fail" >&2
fi
out=${OUT:-bench/out${ALLOCATOR:+/$ALLOCATOR}}
build_dir=${BUILD_DIR:-build}
bin=${BIN_DIR:-$build_dir/bin}
allocator=${ALLOCATOR:-}
embedded=${EMBEDDED:-0}
tokens=20

# --- tools -----------------------------------------------------------------
apt_install() {
  local sudo=()
  (( EUID == 0 )) || sudo=(sudo)
  echo "installing $*" >&2
  "${sudo[@]}" apt-get install -y -q "$@" >/dev/null 2>&1 && return 0
  "${sudo[@]}" apt-get update -q >/dev/null 2>&1 &&
    "${sudo[@]}" apt-get install -y -q "$@" >/dev/null 2>&1
}
have_pkg() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }

command -v wrk >/dev/null || apt_install wrk || { echo "needs wrk" >&2; exit 1; }
plot=1
command -v gnuplot >/dev/null || apt_install gnuplot-nox ||
  { echo "gnuplot-nox did not install: no plot" >&2; plot=0; }

preload=()
case "$allocator" in
  "") ;;
  jemalloc | tcmalloc)
    if [[ $allocator == jemalloc ]]; then pkg=libjemalloc2 lib=libjemalloc.so.2
    else pkg=libtcmalloc-minimal4 lib=libtcmalloc_minimal.so.4; fi
    have_pkg "$pkg" || apt_install "$pkg" || { echo "cannot install $pkg" >&2; exit 1; }
    so=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
    [[ -n "$so" ]] || { echo "$lib not found" >&2; exit 1; }
    preload=(LD_PRELOAD="$so")
    ;;
  *) echo "ALLOCATOR: jemalloc or tcmalloc, not '$allocator'" >&2; exit 2 ;;
esac

# --- build -----------------------------------------------------------------
if [[ -n "${BIN_DIR:-}" ]]; then
  build_type=$(awk -F= '/^CMAKE_BUILD_TYPE:/{print $2}' "$build_dir/CMakeCache.txt" 2>/dev/null || true)
  build_type="${build_type:-unknown} (BIN_DIR=$BIN_DIR)"
elif [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" \
    "${launcher[@]}" >/dev/null
fi
if [[ -z "${BIN_DIR:-}" ]]; then
  cmake --build "$build_dir" -j"${JOBS:-2}" --target chat-server chat-gateway fast_upstream sse_streams \
    >/dev/null
  build_type=$(awk -F= '/^CMAKE_BUILD_TYPE:/{print $2}' "$build_dir/CMakeCache.txt")
fi

# --- processes -------------------------------------------------------------
# 10,000 streams hold ~10k sockets in each of the gateway, the server, the
# upstream and the client: as many descriptors as we may have.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$out"
tmp=$(mktemp -d /tmp/chatd-bench-run.XXXXXX)
up_pid="" srv_pid="" gw_pid="" load_pid=""
stop_stack() {
  local p
  for p in "$gw_pid" "$srv_pid" "$up_pid"; do
    [[ -n "$p" ]] && kill -TERM "$p" 2>/dev/null || true
  done
  for p in "$gw_pid" "$srv_pid" "$up_pid"; do
    [[ -n "$p" ]] && wait "$p" 2>/dev/null || true
  done
  up_pid="" srv_pid="" gw_pid=""
}
cleanup() {
  [[ -n "$load_pid" ]] && kill -TERM "$load_pid" 2>/dev/null || true
  stop_stack
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_upstream DELAY_MS: sets up_pid, up_addr.
start_upstream() {
  "$bin/fast_upstream" --listen=127.0.0.1:0 --tokens="$tokens" --token_delay_ms="$1" \
    2>"$tmp/up.log" &
  up_pid=$!
  up_addr=$(wait_listen "$tmp/up.log")
}

# start_stack STORE DELAY_MS: the upstream, chat-server and chat-gateway as
# scripts/run.sh starts them (metrics on, the gateway's access log and web
# root), with the anthropic provider, the store, loopback ports picked by
# the kernel, and the HTTP port's connection caps lifted (10,000 streams come
# from one client address). Sets *_pid, srv_addr, gw_addr, *_metrics.
start_stack() {
  local store_url=memory
  if [[ $1 == sqlite ]]; then
    local d
    d=$(mktemp -d "$tmp/sqlite.XXXXXX")
    store_url="sqlite:$d/chat.db"
  fi
  start_upstream "$2"
  local http=()
  (( embedded )) && http=(--http_listen=127.0.0.1:0 --http_web_root=clients --http_access_log
    --http_max_connections=100000 --http_max_connections_per_client=100000)
  env ANTHROPIC_API_KEY=bench ANTHROPIC_BASE_URL="http://$up_addr" "${preload[@]}" \
    "$bin/chat-server" --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
    --store="$store_url" --provider=anthropic "${http[@]}" 2>"$tmp/server.log" &
  srv_pid=$!
  srv_addr=$(wait_listen "$tmp/server.log")
  if (( embedded )); then
    # One process: the REST routes are served by chat-server itself.
    gw_pid=""
    gw_addr=$(grep -o 'REST/JSON on http://[0-9.:]*' "$tmp/server.log" | sed 's|.*http://||')
    cp "$tmp/server.log" "$tmp/gateway.log"
  else
    env "${preload[@]}" "$bin/chat-gateway" --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
      --backend="$srv_addr" --web_root=clients --access_log \
      --max_connections=100000 --max_connections_per_client=100000 2>"$tmp/gateway.log" &
    gw_pid=$!
    gw_addr=$(wait_listen "$tmp/gateway.log")
  fi
  srv_metrics=$(grep -o 'metrics on http://[0-9.:]*/metrics' "$tmp/server.log" | awk '{print $3}')
  gw_metrics=$(grep -o 'metrics on http://[0-9.:]*/metrics' "$tmp/gateway.log" | awk '{print $3}')
  if (( ${#preload[@]} )); then
    local p
    for p in "$srv_pid" ${gw_pid:+"$gw_pid"}; do
      grep -q "${preload[0]#LD_PRELOAD=}" "/proc/$p/maps" ||
        { echo "the $allocator allocator is not loaded in $p" >&2; exit 1; }
    done
  fi
  # One turn before measuring: on fresh processes the first concurrent
  # calls wait about a second (the gateway's channel to the server and the
  # provider's first upstream connection are set up lazily); the bench
  # measures the steady state.
  curl -sf -o /dev/null -X POST "http://$gw_addr/chat" -H 'Content-Type: application/json' \
    -d '{"message":"warm up","session_id":"bench-warm-up"}' ||
    { echo "warm-up /chat failed" >&2; exit 1; }
}

clk=$(getconf CLK_TCK)
# rss_kib PID: VmRSS in KiB, in REPLY (no fork: sampled every 100 ms).
rss_kib() {
  local k v rest
  REPLY=0
  [[ -n "$1" ]] || return 0
  while read -r k v rest; do
    [[ $k == VmRSS: ]] && { REPLY=$v; return; }
  done <"/proc/$1/status" 2>/dev/null || true
}
now_us() { echo "${EPOCHREALTIME/./}"; }
mib() { awk -v k="$1" 'BEGIN{printf "%.0f", k/1024}'; }

# run_wrk URL CONNS [ENV...]: runs wrk for $duration s; sets requests, rps,
# p50_ms, p99_ms, errors from run_chat.lua's RESULT line.
run_wrk() {
  local url=$1 c=$2 t
  shift 2
  t=$(( c < 2 ? c : 2 ))
  env RUN_TAG="$RANDOM$RANDOM-$c" "$@" wrk -t"$t" -c"$c" -d"${duration}s" --timeout 10s \
    -s bench/run_chat.lua "$url" >"$tmp/wrk.out" 2>&1 || true
  local line
  line=$(grep '^RESULT' "$tmp/wrk.out" || true)
  [[ -n "$line" ]] || { echo "wrk failed:" >&2; cat "$tmp/wrk.out" >&2; exit 1; }
  requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
  local dur p50 p99 se so
  dur=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$line")
  p50=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$line")
  p99=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$line")
  se=$(sed -E 's/.*status_errors=([0-9]+).*/\1/' <<<"$line")
  so=$(sed -E 's/.*socket_errors=([0-9]+).*/\1/' <<<"$line")
  errors=$(( se + so ))
  rps=$(awk -v r="$requests" -v d="$dur" 'BEGIN{printf "%.0f", r / (d / 1e6)}')
  p50_ms=$(awk -v x="$p50" 'BEGIN{printf "%.3f", x / 1000}')
  p99_ms=$(awk -v x="$p99" 'BEGIN{printf "%.3f", x / 1000}')
}

declare -A fig  # fig[store,name] = value, for the summary table.

# --- header ----------------------------------------------------------------
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || rev="$rev (+ uncommitted changes)"
{
  echo "# bench/run.sh: $(date -u +%FT%TZ)"
  echo
  echo "- machine: $(nproc) cores ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(free -g | awk '/Mem/{print $2}') GiB"
  echo "- load: $(uptime)"
  linked=$(ldd "$bin/chat-server" | grep -q libjemalloc && echo jemalloc || echo glibc)
  echo "- git: $rev, build type $build_type, allocator ${allocator:-$linked (linked)}"
  if (( embedded )); then
    echo "- deployment: one process (chat-server --http_listen; CPU and RSS under \"server\")"
  else
    echo "- deployment: chat-gateway + chat-server (as scripts/run.sh starts them)"
  fi
  echo "- /chat: wrk ${duration} s per level, connections ${conns[*]}; streams: ${stream_levels[*]} (20 tokens 50 ms apart upstream)"
  echo "- fd limit $(ulimit -n), somaxconn $(cat /proc/sys/net/core/somaxconn)"
  echo
} | tee "$out/header.md"

# --- the upstream alone ----------------------------------------------------
up_p50_ms=""
if [[ " ${conns[*]} " == *" 1 "* ]]; then
  start_upstream 0
  run_wrk "http://$up_addr" 1 UPSTREAM=1
  up_p50_ms=$p50_ms
  echo "upstream alone, 1 connection: $rps req/s, p50 $p50_ms ms, p99 $p99_ms ms, $errors errors" >&2
  stop_stack
fi

echo "store,conns,rps,p50_ms,p99_ms,gw_cpu_ms,srv_cpu_ms,requests,errors" >"$out/chat.csv"
echo "store,streams,ok,failed,wall_s,fb_p50_ms,fb_p99_ms,peak_rss_mib,peak_gw_mib,peak_srv_mib,rss_5s_mib,rss_10s_mib,rss_20s_mib,rss_30s_mib,rss_30s_gw_mib,rss_30s_srv_mib,cpu_gw_s,cpu_srv_s,cpu_client_s,error" \
  >"$out/streams.csv"

for store in "${stores[@]}"; do
  # --- /chat at each connection count --------------------------------------
  echo "# conns rps p50_ms p99_ms gw_cpu_ms srv_cpu_ms errors" >"$out/chat_$store.dat"
  start_stack "$store" 0
  for c in "${conns[@]}"; do
    g0=$(cpu_ticks "$gw_pid"); s0=$(cpu_ticks "$srv_pid")
    run_wrk "http://$gw_addr" "$c"
    g1=$(cpu_ticks "$gw_pid"); s1=$(cpu_ticks "$srv_pid")
    read -r gw_cpu srv_cpu < <(awk -v g=$((g1 - g0)) -v s=$((s1 - s0)) -v hz="$clk" \
      -v n="$requests" 'BEGIN{n = n ? n : 1; printf "%.3f %.3f\n", g / hz * 1000 / n, s / hz * 1000 / n}')
    echo "$store,$c,$rps,$p50_ms,$p99_ms,$gw_cpu,$srv_cpu,$requests,$errors" >>"$out/chat.csv"
    echo "$c $rps $p50_ms $p99_ms $gw_cpu $srv_cpu $errors" >>"$out/chat_$store.dat"
    echo "$store /chat, $c connections: $rps req/s, p50 $p50_ms ms, p99 $p99_ms ms, CPU/req gateway $gw_cpu ms + server $srv_cpu ms, $errors errors" >&2
    if (( c == 64 )); then
      fig[$store,rps64]=$rps fig[$store,p99_64]=$p99_ms fig[$store,err64]=$errors
      fig[$store,cpu]=$(awk -v a="$gw_cpu" -v b="$srv_cpu" 'BEGIN{printf "%.3f", a + b}')
      fig[$store,cpu_split]="$gw_cpu + $srv_cpu"
    fi
    if (( c == 1 )) && [[ -n "$up_p50_ms" ]]; then
      fig[$store,added]=$(awk -v a="$p50_ms" -v b="$up_p50_ms" 'BEGIN{printf "%.3f", a - b}')
      fig[$store,added_detail]="$p50_ms - $up_p50_ms"
    fi
  done
  curl -s "$srv_metrics" >"$out/metrics_${store}_server.txt" || true
  curl -s "$gw_metrics" >"$out/metrics_${store}_gateway.txt" || true
  stop_stack

  # --- concurrent one-second streams ----------------------------------------
  echo "# streams ok failed wall_s fb_p50_ms fb_p99_ms peak_rss_mib rss_5s rss_10s rss_20s rss_30s" \
    >"$out/streams_$store.dat"
  last=${stream_levels[-1]}
  for n in "${stream_levels[@]}"; do
    start_stack "$store" 50
    "$bin/sse_streams" --target="$gw_addr" --streams="$n" >"$tmp/streams.out" 2>&1 &
    load_pid=$!
    peak=0 peak_gw=0 peak_srv=0 client_ticks=0
    g0=$(cpu_ticks "$gw_pid"); s0=$(cpu_ticks "$srv_pid")
    while kill -0 "$load_pid" 2>/dev/null; do
      # The client's CPU, last seen alive: is the load generator the limit?
      client_ticks=$(cpu_ticks "$load_pid" 2>/dev/null || echo "$client_ticks")
      rss_kib "$gw_pid"; g=$REPLY
      rss_kib "$srv_pid"; s=$REPLY
      (( g + s > peak )) && peak=$(( g + s ))
      (( g > peak_gw )) && peak_gw=$g
      (( s > peak_srv )) && peak_srv=$s
      sleep 0.1
    done
    wait "$load_pid" || true
    load_pid=""
    ended=$(now_us)
    g1=$(cpu_ticks "$gw_pid"); s1=$(cpu_ticks "$srv_pid")
    read -r cpu_gw cpu_srv cpu_client < <(awk -v g=$((g1 - g0)) -v s=$((s1 - s0)) \
      -v c="$client_ticks" -v hz="$clk" 'BEGIN{printf "%.2f %.2f %.2f\n", g / hz, s / hz, c / hz}')
    line=$(grep '^RESULT' "$tmp/streams.out" || true)
    [[ -n "$line" ]] || { echo "streams client failed:" >&2; cat "$tmp/streams.out" >&2; exit 1; }
    get() { sed -E "s/.* $1=([^ ]+).*/\\1/" <<<" $line"; }
    ok=$(get ok) failed=$(get failed) wall=$(get wall_s) fb50=$(get fb_p50_ms) fb99=$(get fb_p99_ms)
    err=$(get error | tr -d '",')
    if (( failed > 0 )); then
      # What the server said of the failed calls (its log lines that are not
      # about a call that went well), for whoever reads the figures.
      grep -v -E 'status=OK| 200 ' "$tmp/server.log" | head -500 \
        >"$out/failed_streams_${store}_$n.log" || true
      echo "$store streams, $n concurrent: the server's log of the failures: $out/failed_streams_${store}_$n.log" >&2
    fi
    after=(- - - -) after_gw=- after_srv=-
    if (( n == last )); then
      # RSS at fixed times after the load ended: does the memory go back?
      i=0
      for mark in 5 10 20 30; do
        wait_us=$(( ended + mark * 1000000 - $(now_us) ))
        (( wait_us > 0 )) && sleep "$(awk -v u="$wait_us" 'BEGIN{printf "%.3f", u / 1e6}')"
        rss_kib "$gw_pid"; g=$REPLY
        rss_kib "$srv_pid"; s=$REPLY
        after[i]=$(mib $(( g + s )))
        (( ++i ))
      done
      after_gw=$(mib "$g") after_srv=$(mib "$s")
    fi
    stop_stack
    echo "$store,$n,$ok,$failed,$wall,$fb50,$fb99,$(mib $peak),$(mib $peak_gw),$(mib $peak_srv),${after[0]},${after[1]},${after[2]},${after[3]},$after_gw,$after_srv,$cpu_gw,$cpu_srv,$cpu_client,$err" \
      >>"$out/streams.csv"
    echo "$n $ok $failed $wall $fb50 $fb99 $(mib $peak) ${after[*]}" >>"$out/streams_$store.dat"
    echo "$store streams, $n concurrent: $ok ok, $failed failed${err:+ ($err)}, wall $wall s, first byte p50 $fb50 ms p99 $fb99 ms, peak RSS $(mib $peak) MiB (gateway $(mib $peak_gw), server $(mib $peak_srv)), after: ${after[*]} MiB; CPU s gateway $cpu_gw, server $cpu_srv, client $cpu_client" >&2
    fig[$store,s$n]="$wall s, $fb99 ms"
    fig[$store,s${n}_rss]="$wall s, $(mib $peak) MiB"
    fig[$store,s${n}_after]="${after[3]} MiB ($after_gw + $after_srv)"
    fig[$store,s${n}_failed]=$failed
  done
done

# --- the table -------------------------------------------------------------
f() { echo "${fig[$1]:-—}"; }
row() {  # row NAME GOAL KEY: one line, a column per store.
  local line="| $1 | $2 |" s
  for s in "${stores[@]}"; do line+=" $(f "$s,$3") |"; done
  echo "$line"
}
{
  line="| figure | goal |"; sep="|---|---|"
  for s in "${stores[@]}"; do
    case $s in memory) line+=" chatd, memory store |" ;; sqlite) line+=" chatd, SQLite (synchronous=FULL) |" ;; *) line+=" $s |" ;; esac
    sep+="---|"
  done
  echo "$line"; echo "$sep"
  row '`/chat` req/s, 64 connections' '≥ 11,500 (memory), ≥ 5,000 (SQLite)' rps64
  row '`/chat` p99, 64 connections (ms)' '≤ 25 (memory), ≤ 40 (SQLite)' p99_64
  row 'CPU per `/chat`, gateway + server (ms)' '≤ 0.1 (memory)' cpu
  row '… of which gateway + server' '' cpu_split
  row '`/chat` p50 − upstream p50, 1 connection (ms)' '≤ 0.3' added
  row '1,000 concurrent 1-s streams: wall, first-byte p99' '≤ 1.1 s, ≤ 50 ms' s1000
  row '10,000 concurrent 1-s streams: wall, peak RSS' '≤ 2.5 s, ≤ 600 MiB' s10000_rss
  row '10,000 streams: RSS 30 s after (gateway + server)' '< 100 MiB' s10000_after
  row '`/chat` errors, 64 connections' '0' err64
  row 'failed streams of 1,000' '0' s1000_failed
  row 'failed streams of 10,000' '0' s10000_failed
  echo
  echo "The upstream alone, 1 connection: p50 ${up_p50_ms:-—} ms."
  echo
  echo "| store | connections | req/s | p50 (ms) | p99 (ms) | CPU/req gateway (ms) | CPU/req server (ms) | errors |"
  echo "|---|---|---|---|---|---|---|---|"
  tail -n +2 "$out/chat.csv" | awk -F, '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $9}'
  echo
  echo "| store | streams | ok / failed | wall (s) | first byte p50 / p99 (ms) | peak RSS gw + srv (MiB) | RSS after +5 / +10 / +20 / +30 s (MiB) | CPU s gw / srv / client |"
  echo "|---|---|---|---|---|---|---|---|"
  tail -n +2 "$out/streams.csv" | awk -F, '{printf "| %s | %s | %s / %s | %s | %s / %s | %s (%s + %s) | %s / %s / %s / %s | %s / %s / %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $17, $18, $19}'
} >"$out/table.md"
echo
cat "$out/table.md"
cat "$out/header.md" "$out/table.md" >"$out/report.md"

if (( plot )) && [[ -f "$out/chat_memory.dat" && -f "$out/chat_sqlite.dat" &&
                    -f "$out/streams_memory.dat" && -f "$out/streams_sqlite.dat" ]]; then
  gnuplot -e "dir='$out'; title='chatd @ $rev, $(nproc) cores, allocator ${allocator:-glibc}'" \
    bench/run.gp && echo && echo "plot: $out/bench.png"
fi
echo "data: $out/chat.csv $out/streams.csv $out/*.dat, table: $out/report.md"
