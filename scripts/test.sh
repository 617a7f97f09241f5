#!/usr/bin/env bash
# Sets up, builds and runs every test and check; exits non-zero if any fails.
#   1. static checks: clang-format, the API (buf lint + breaking), layering
#   2. GCC build (warnings are errors), every test: unit, integration (the
#      real binaries on loopback, PostgreSQL, Node's REST tests, Chromium)
#   3. clang build with AddressSanitizer + UndefinedBehaviorSanitizer,
#      -Wthread-safety (every ABSL_GUARDED_BY checked) and libFuzzer: the
#      unit and integration tests again, where any sanitizer report (from a
#      test or from a server it started) fails the run, then each fuzzer
#      for CHAT_FUZZ_SECONDS from its committed corpus.
# QUICK=1 skips step 3.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}
SECONDS=0
stage() { printf '\n== %s (%dm%02ds)\n' "$1" $((SECONDS / 60)) $((SECONDS % 60)); }

stage "install"
bash scripts/install-deps.sh --test
# A gRPC client this project did not write (buf curl, also buf lint), the
# OpenAPI validator and playwright-core for the gateway tests.
if [[ ! -x tests/node_modules/.bin/buf || ! -d tests/node_modules/@apidevtools/swagger-parser ]]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi
export CHAT_TEST_BUF="$PWD/tests/node_modules/.bin/buf"
# The Node stub example's grpc-js and proto-loader (clients/node).
[[ -d clients/node/node_modules/@grpc/proto-loader ]] || (cd clients/node && npm ci --no-audit --no-fund --loglevel=error)

stage "static checks"
bash scripts/check-format.sh
bash scripts/check-api.sh

# A throw-away PostgreSQL cluster for the store and replica tests; they fail
# rather than skip when it is missing.
pg_dir=$(mktemp -d /tmp/chatd-test-pg.XXXXXX)
sanitizer_logs=$(mktemp -d /tmp/chatd-sanitizer.XXXXXX)
trap 'bash scripts/pg-test-cluster.sh stop "$pg_dir" >/dev/null 2>&1 || true; rm -rf "$pg_dir" "$sanitizer_logs"' EXIT
CHAT_TEST_POSTGRES_DSN=$(bash scripts/pg-test-cluster.sh start "$pg_dir")
export CHAT_TEST_POSTGRES_DSN CHAT_TEST_REQUIRE_POSTGRES=1
export CHAT_TEST_REQUIRE_BROWSER=1
export CHAT_TEST_REQUIRE_PROMTOOL=1
export CHAT_TEST_REQUIRE_CLIENT_EXAMPLES=1
export CHAT_TEST_PG_CLUSTER_SCRIPT="$PWD/scripts/pg-test-cluster.sh"

stage "GCC build, warnings as errors"
BUILD_DIR=build CMAKE_ARGS="-DCHAT_WERROR=ON" bash scripts/build.sh
stage "every test"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900)

if [[ "${QUICK:-0}" == 1 ]]; then
  stage "done (QUICK=1: no sanitizer or fuzzer run)"
  exit 0
fi

stage "clang build: ASan + UBSan, -Wthread-safety, libFuzzer, warnings as errors"
BUILD_DIR=build-clang \
  CMAKE_ARGS="-DCMAKE_CXX_COMPILER=clang++ -DCHAT_SANITIZE=address;undefined -DCHAT_FUZZ=ON -DCHAT_WERROR=ON" \
  bash scripts/build.sh
stage "unit and integration tests under ASan + UBSan"
# Every report goes to a file, from the tests and from every server they
# start, and the run fails if one was written: a child's report cannot be
# lost because its test only checked an answer.
export ASAN_OPTIONS="log_path=$sanitizer_logs/asan:abort_on_error=0:detect_leaks=1"
export UBSAN_OPTIONS="log_path=$sanitizer_logs/ubsan:print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
status=0
# The browser test drives Chromium, which is not ours to sanitize; the rest run.
(cd build-clang && ctest --output-on-failure -j"$jobs" --timeout 900 -LE fuzz \
  -E 'gateway_browser_js|gateway_web_page_js') || status=$?
if compgen -G "$sanitizer_logs/*" >/dev/null; then
  echo "sanitizer reports:" >&2
  for f in "$sanitizer_logs"/*; do echo "--- $f" >&2; head -60 "$f" >&2; done
  status=1
fi
((status == 0)) || exit "$status"
unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

stage "fuzzers, ${CHAT_FUZZ_SECONDS:-30}s each"
(cd build-clang && ctest --output-on-failure -j"$jobs" -L fuzz)
stage "done"
