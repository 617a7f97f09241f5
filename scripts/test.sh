#!/usr/bin/env bash
# Sets up, builds and runs every test: unit tests, then integration tests that
# start the real binaries on loopback. Exits non-zero if any test fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --test
# A gRPC client this project did not write (buf curl), used through
# reflection by the integration tests.
# ... and the OpenAPI validator the gateway tests use.
if [[ ! -x tests/node_modules/.bin/buf || ! -d tests/node_modules/@apidevtools/swagger-parser ]]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi
export CHAT_TEST_BUF="$PWD/tests/node_modules/.bin/buf"

# A throw-away PostgreSQL cluster for the store and replica tests; they fail
# rather than skip when it is missing.
pg_dir=$(mktemp -d /tmp/chatd-test-pg.XXXXXX)
trap 'bash scripts/pg-test-cluster.sh stop "$pg_dir" >/dev/null 2>&1 || true; rm -rf "$pg_dir"' EXIT
CHAT_TEST_POSTGRES_DSN=$(bash scripts/pg-test-cluster.sh start "$pg_dir")
export CHAT_TEST_POSTGRES_DSN CHAT_TEST_REQUIRE_POSTGRES=1
export CHAT_TEST_REQUIRE_BROWSER=1
export CHAT_TEST_PG_CLUSTER_SCRIPT="$PWD/scripts/pg-test-cluster.sh"
cd build
ctest --output-on-failure -j"${JOBS:-2}" --timeout 900
