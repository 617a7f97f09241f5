#!/usr/bin/env bash
# Rewrites proto/api.binpb, the snapshot of the API that scripts/check-api.sh
# checks for breaking changes against. Run it on purpose, after deciding that
# a break is acceptable (or to record compatible additions), and commit the
# result with the proto change. Lint must pass first: a snapshot is only ever
# taken of a clean API.
set -euo pipefail
cd "$(dirname "$0")/.."

buf=${CHAT_TEST_BUF:-$PWD/tests/node_modules/.bin/buf}
if [[ ! -x "$buf" ]]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
  buf=$PWD/tests/node_modules/.bin/buf
fi

snapshot=proto/api.binpb
"$buf" lint proto

# Show what this update accepts, for the commit message and the reviewer.
if [[ -f "$snapshot" ]]; then
  echo "Breaking changes accepted by this update (none if empty):"
  "$buf" breaking proto --against "$snapshot" || true
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$buf" build "$snapshot" -o "$tmp/snapshot.json#format=json"
  "$buf" build proto --exclude-source-info -o "$tmp/current.json#format=json"
  node scripts/check-api-routes.js "$tmp/snapshot.json" "$tmp/current.json" ||
    true
fi

# Without source info (comments, line numbers) the snapshot changes only when
# the API's descriptors do, not when a comment is edited.
"$buf" build proto --exclude-source-info -o "$snapshot"
echo "Wrote $snapshot; commit it with the proto change."
