#!/usr/bin/env bash
# A throw-away PostgreSQL cluster on loopback, for tests.
#
#   pg-test-cluster.sh start DIR   initdb DIR (if new), start it on a free
#                                  port; prints a libpq key=value DSN
#   pg-test-cluster.sh stop DIR    stop it (fast shutdown)
#   pg-test-cluster.sh kill DIR    stop it at once (immediate shutdown)
#
# PostgreSQL refuses to run as root, so as root the server runs as the
# `postgres` user (created by Debian's postgresql package).
set -euo pipefail
cmd=${1:?usage: pg-test-cluster.sh start|stop|kill DIR}
dir=$(realpath -m "${2:?usage: pg-test-cluster.sh start|stop|kill DIR}")
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
      as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    # Reuse the cluster's port across restarts; else pick a free one.
    if [[ -f "$dir/port" ]]; then
      ports=("$(cat "$dir/port")")
    else
      ports=()
      # Below the kernel's ephemeral range (32768 and up here), so no
      # outgoing connection can hold the port when the cluster restarts.
      for _ in $(seq 20); do ports+=($((20000 + RANDOM % 12000))); done
    fi
    for port in "${ports[@]}"; do
      if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
          -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" \
          start >/dev/null 2>&1; then
        echo "$port" >"$dir/port"
        echo "host=127.0.0.1 port=$port user=postgres dbname=postgres"
        exit 0
      fi
    done
    echo "pg-test-cluster: could not start PostgreSQL; see $dir/server.log" >&2
    tail -n 20 "$dir/server.log" >&2 || true
    exit 1
    ;;
  stop) as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null ;;
  kill) as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null ;;
  *) echo "usage: pg-test-cluster.sh start|stop|kill DIR" >&2; exit 2 ;;
esac
