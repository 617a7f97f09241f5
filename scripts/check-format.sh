#!/usr/bin/env bash
# Checks that every C++ file we wrote is formatted by clang-format
# (.clang-format: Google style). Prints the files that are not and exits 1.
# With --fix, formats them in place instead.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "needs clang-format (apt-get install clang-format)" >&2; exit 1; }
mapfile -t files < <(git ls-files -- 'common/*.h' 'common/*.cc' 'server/*.h' 'server/*.cc' \
  'gateway/*.h' 'gateway/*.cc' 'clients/*.h' 'clients/*.cc' 'tests/*.h' 'tests/*.cc' \
  'bench/*.h' 'bench/*.cc')
if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  printf 'not formatted (run scripts/check-format.sh --fix):\n' >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "format: ${#files[@]} files formatted"
