#!/usr/bin/env bash
# Sets up, builds and starts the service in the foreground: chat-server on
# 127.0.0.1:50051 with conversations in ./data/chat.db and the offline echo
# provider. Extra arguments go to chat-server (e.g. --store=memory). Ctrl-C
# stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
exec build/bin/chat-server "$@"
