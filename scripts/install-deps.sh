#!/usr/bin/env bash
# Installs the build and runtime dependencies from Debian 12's archive.
# Idempotent: packages already present are skipped, so a second run is quick.
#   --test     also what the tests and checks need
#   --no-node  leaves out Node and npm (the Dockerfile: the browser libraries
#              come from the build context, see scripts/web-assets.sh)
set -euo pipefail
test_deps=0 node=1
for arg in "$@"; do
  case "$arg" in
    --test) test_deps=1 ;;
    --no-node) node=0 ;;
    *) echo "install-deps.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libsqlite3-dev libpq-dev libcurl4-openssl-dev nlohmann-json3-dev libboost-dev
  libjemalloc-dev
  libssl-dev
  libgtest-dev libgmock-dev
  # The README's examples pipe chat-cli's --json and the REST answers to jq.
  jq
)
# npm fetches the web app's and /docs' browser libraries (scripts/web-assets.sh).
((node)) && packages+=(nodejs npm)
if ((test_deps)); then
  # Test-only: curl, a PostgreSQL server for the store and replica tests,
  # and Chromium for the browser tests (Node, above, also runs the JS tests).
  packages+=(curl postgresql chromium openssl)
  # promtool (in Debian's prometheus package) lints the /metrics text.
  packages+=(prometheus)
  # The Python stub example's runtime (clients/python; stubs from protoc).
  packages+=(python3-grpcio python3-protobuf)
  # The checks' second build: clang for -Wthread-safety, the sanitizers and
  # libFuzzer; clang-format for the format check.
  packages+=(clang libclang-rt-dev clang-format)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node may come from outside Debian's archive (as on the development machines); keep it.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if ((${#missing[@]})); then
  sudo_cmd=""
  [[ $(id -u) -eq 0 ]] || sudo_cmd="sudo"
  echo "installing: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
