#!/usr/bin/env bash
# Checks the API the way gRPC API owners check theirs: `buf lint` (STANDARD)
# on proto/, then `buf breaking` (FILE rules) against the committed snapshot
# proto/api.binpb, plus the REST routes (google.api.http), which buf breaking
# does not compare (scripts/check-api-routes.js). Exits non-zero on any
# finding. A change that breaks generated stubs, REST routes or REST JSON
# clients passes only once the snapshot is rewritten on purpose with
# scripts/update-api-snapshot.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# buf is the test tools' npm package (@bufbuild/buf, pinned in
# tests/package.json); CHAT_TEST_BUF may name another copy.
buf=${CHAT_TEST_BUF:-$PWD/tests/node_modules/.bin/buf}
if [[ ! -x "$buf" ]]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
  buf=$PWD/tests/node_modules/.bin/buf
fi

snapshot=proto/api.binpb
status=0

echo "buf lint proto"
"$buf" lint proto || status=1

echo "buf breaking proto --against $snapshot"
"$buf" breaking proto --against "$snapshot" || status=1

# buf breaking does not compare custom options, so REST routes
# (google.api.http) are checked apart: none of the snapshot's may go.
echo "REST routes against $snapshot"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$buf" build "$snapshot" -o "$tmp/snapshot.json#format=json"
"$buf" build proto --exclude-source-info -o "$tmp/current.json#format=json"
node scripts/check-api-routes.js "$tmp/snapshot.json" "$tmp/current.json" ||
  status=1

# Additions are not breaking, so the snapshot may lag behind the proto. Say so
# (without failing): an addition that is removed again before the snapshot
# catches up is a break this check cannot see.
"$buf" build proto --exclude-source-info -o "$tmp/current.binpb"
if [[ $status -eq 0 ]] && ! cmp -s "$tmp/current.binpb" "$snapshot"; then
  echo "note: $snapshot is older than proto/ (compatible changes since);" \
       "run scripts/update-api-snapshot.sh to record them" >&2
fi

if [[ $status -ne 0 ]]; then
  echo "API check failed. If the break is intended, run" \
       "scripts/update-api-snapshot.sh and commit $snapshot." >&2
else
  echo "API check passed."
fi
exit $status
