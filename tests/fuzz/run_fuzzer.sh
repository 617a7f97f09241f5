#!/usr/bin/env bash
# Runs one libFuzzer harness for a bounded time, as the fuzz_* ctest entries
# do:
#   run_fuzzer.sh FUZZER SEED_CORPUS SECONDS ARTIFACT_DIR [DICT]
# The fuzzer works on a copy of SEED_CORPUS in a temporary directory, so the
# committed corpus never changes. Exits with the fuzzer's status: non-zero on
# a crash, leak, timeout, out-of-memory or sanitizer report, whose input is
# then kept in ARTIFACT_DIR. Prints the executions reached.
set -u

if [[ $# -lt 4 || $# -gt 5 ]]; then
  echo "usage: $0 FUZZER SEED_CORPUS SECONDS ARTIFACT_DIR [DICT]" >&2
  exit 2
fi
fuzzer=$1 seeds=$2 seconds=$3 artifacts=$4 dict=${5:-}
name=$(basename "$fuzzer")

work=$(mktemp -d "${TMPDIR:-/tmp}/${name}.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$artifacts" || exit 2
if [[ -d $seeds ]]; then
  cp -R "$seeds/." "$work/corpus/" || exit 2
fi

args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10
      -print_final_stats=1 -artifact_prefix="$artifacts/$name-")
[[ -n $dict ]] && args+=(-dict="$dict")

# A UBSan or ASan report aborts with a stack; libFuzzer's own reports
# (leak, timeout, OOM) also end the run non-zero.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

"$fuzzer" "${args[@]}" "$work/corpus" 2>&1 | tee "$work/log"
status=${PIPESTATUS[0]}

executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
echo "$name: ${executions:-unknown} executions in ${seconds}s, exit status $status"
if [[ $status -ne 0 ]]; then
  echo "$name: FAILED; the failing input is in $artifacts/" >&2
fi
exit "$status"
