#!/usr/bin/env bash
# Installs what is missing and builds everything into build/ (binaries in
# build/bin/). Incremental: a second run rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh "$@"
# The browser libraries served under /vendor/ (npm, once; offline after).
bash scripts/web-assets.sh
# BUILD_DIR and CMAKE_ARGS (space-separated) pick another configuration, as
# scripts/test.sh does for its checks.
build_dir="${BUILD_DIR:-build}"
read -r -a extra_args <<<"${CMAKE_ARGS:-}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" \
  "${extra_args[@]}" >/dev/null
cmake --build "$build_dir" -j"${JOBS:-2}"
