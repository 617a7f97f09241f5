#!/usr/bin/env bash
# Puts the browser libraries the gateway serves under /vendor/ into
# clients/vendor/: marked and DOMPurify for the chat app (clients/web/), Swagger
# UI for /docs (clients/docs/). They come from npm, pinned by
# clients/web/package-lock.json, installed once; later runs (and run.sh) need
# no network. Install scripts are not run: swagger-ui-dist depends on a
# telemetry package whose install script would call out.
set -euo pipefail
cd "$(dirname "$0")/../clients"
modules=web/node_modules
if [[ ! -f "$modules/.package-lock.json" || web/package-lock.json -nt "$modules/.package-lock.json" ]]; then
  (cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
files=(
  marked/lib/marked.umd.js
  dompurify/dist/purify.min.js
  swagger-ui-dist/swagger-ui-bundle.js
  swagger-ui-dist/swagger-ui.css
)
mkdir -p vendor
for f in "${files[@]}"; do
  target="vendor/$(basename "$f")"
  [[ "$target" -nt "$modules/$f" ]] || cp "$modules/$f" "$target"
done
