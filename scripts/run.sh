#!/usr/bin/env bash
# Sets up, builds and starts the service: chat-server on 127.0.0.1:50051
# (gRPC; conversations in ./data/chat.db, the offline echo provider unless a
# provider key is configured) serving the REST/JSON routes on 127.0.0.1:8000
# itself, through its in-process gateway (--http_listen): one process, about
# a third less CPU per call than two on one machine (bench/RESULTS.md).
# Extra arguments go to chat-server (e.g. --store=memory).
#
# SEPARATE_GATEWAY=1, or any GATEWAY_ARGS, starts chat-gateway as its own
# process in front of chat-server instead (the deployment for HTTPS, several
# replicas or scale-out); GATEWAY_ARGS adds flags to it (e.g.
# GATEWAY_ARGS="--cors_origins=*"). Ctrl-C or SIGTERM stops everything
# cleanly; if one process exits, the other is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh

if [[ -z "${GATEWAY_ARGS:-}" && "${SEPARATE_GATEWAY:-0}" != 1 ]]; then
  # Prometheus metrics (the HTTP routes' included) on 127.0.0.1:9464/metrics;
  # a later flag on the command line wins.
  exec build/bin/chat-server --metrics_listen=127.0.0.1:9464 \
    --http_listen=127.0.0.1:8000 --http_web_root=clients --http_access_log "$@"
fi

# The gateway calls the server wherever it listens.
backend="${CHAT_LISTEN:-127.0.0.1:50051}"
for arg in "$@"; do
  case "$arg" in --listen=*) backend="${arg#--listen=}" ;; esac
done

# Prometheus metrics on 127.0.0.1:9464/metrics (a later --metrics_listen wins).
build/bin/chat-server --metrics_listen=127.0.0.1:9464 "$@" &
server_pid=$!
gateway_pid=""

stop() {
  trap - INT TERM
  [[ -n "$gateway_pid" ]] && kill -TERM "$gateway_pid" 2>/dev/null || true
  kill -TERM "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM

# Start the gateway once the server accepts connections, so the first
# request does not meet a backend that is still starting.
host="${backend%:*}"
port="${backend##*:}"
for _ in $(seq 1 300); do
  kill -0 "$server_pid" 2>/dev/null || { wait "$server_pid"; exit $?; }
  (exec 3<>"/dev/tcp/${host}/${port}") 2>/dev/null && break
  sleep 0.1
done

# shellcheck disable=SC2086  # GATEWAY_ARGS is a list of flags.
build/bin/chat-gateway --backend="$backend" --web_root=clients --access_log ${GATEWAY_ARGS:-} &
gateway_pid=$!

# Whichever exits first, stop the other and report its status.
set +e
wait -n "$server_pid" "$gateway_pid"
status=$?
stop
exit "$status"
