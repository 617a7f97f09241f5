#!/usr/bin/env bash
# Sets up, builds and runs every test: unit tests, then integration tests that
# start the real binaries on loopback. Exits non-zero if any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --test
# A gRPC client this project did not write (buf curl), used through
# reflection by the integration tests.
if [[ ! -x tests/node_modules/.bin/buf ]]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi
export CHAT_TEST_BUF="$PWD/tests/node_modules/.bin/buf"
cd build
ctest --output-on-failure -j"${JOBS:-2}" --timeout 600
