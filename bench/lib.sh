# Helpers shared by bench/*.sh (sourced, not run).

# wait_listen LOG: prints the HOST:PORT a process logged ("listening on ...").
wait_listen() {
  local a
  for _ in $(seq 100); do
    a=$(grep -o 'listening on [0-9.:]*' "$1" | awk '{print $3}' || true)
    [[ -n "$a" ]] && { echo "$a"; return 0; }
    sleep 0.1
  done
  echo "did not start:" >&2; cat "$1" >&2; exit 1
}

rss_mib() { awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$1/status"; }
threads() { awk '/Threads/{print $2}' "/proc/$1/status"; }

# cpu_ticks PID: utime + stime (fields 14 and 15 of /proc/PID/stat), in
# clock ticks (getconf CLK_TCK a second); 0 for an empty PID.
cpu_ticks() {
  [[ -n "$1" ]] || { echo 0; return; }  # EMBEDDED=1: no gateway process.
  local s
  read -r s <"/proc/$1/stat"
  s=${s##*) }
  read -r -a f <<<"$s"
  echo $(( f[11] + f[12] ))
}

# watch_peak PID LOAD_PID: samples PID's threads and memory until LOAD_PID
# exits; sets peak_threads and peak_rss (MiB).
watch_peak() {
  local r t
  peak_rss=0; peak_threads=0
  while kill -0 "$2" 2>/dev/null; do
    r=$(rss_mib "$1"); t=$(threads "$1")
    peak_rss=$(awk -v a="$r" -v b="$peak_rss" 'BEGIN{print (a>b)?a:b}')
    (( t > peak_threads )) && peak_threads=$t
    sleep 0.2
  done
}
