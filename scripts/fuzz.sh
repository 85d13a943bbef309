#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz/fuzz_*.cpp, built by the `asan` CMake preset) for a time budget and
# prints, per target: executions, executions/s, corpus size and findings (crash/leak/timeout/oom inputs).
#
#   scripts/fuzz.sh [-t SECONDS] [-j PARALLEL] [TARGET...]      (default: 600 s each, 1 at a time, all targets)
#
# Seeds come from fuzz_make_seeds (the project's own writers) plus tests/fuzz/regressions/<target>/ (inputs that
# once failed, each replayed first). The corpus grows in $WORK/corpus/<target>; findings go to
# $WORK/findings/<target>/. Exits 1 when any target found something. Env: PIXEL3DMM_ASAN_BUILD_DIR (build-asan),
# PIXEL3DMM_FUZZ_WORK ($BUILD/fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=600
PARALLEL=1
while getopts "t:j:" opt; do
  case $opt in
    t) BUDGET=$OPTARG ;;
    j) PARALLEL=$OPTARG ;;
    *) sed -n 2,11p "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
BUILD=${PIXEL3DMM_ASAN_BUILD_DIR:-build-asan}
WORK=${PIXEL3DMM_FUZZ_WORK:-$BUILD/fuzz}
source scripts/sanitizer-env.sh
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.cpp; do TARGETS+=("$(basename "$f" .cpp)"); done
fi
mkdir -p "$WORK/logs"
for t in "${TARGETS[@]}"; do mkdir -p "$WORK/seeds/$t"; done
"$BUILD/bin/fuzz_make_seeds" "$WORK/seeds" > /dev/null

run_one() {
  local t=$1
  local corpus="$WORK/corpus/$t" findings="$WORK/findings/$t/" seeds=("$WORK/seeds/$t")
  mkdir -p "$corpus" "$findings"
  [ -d "tests/fuzz/regressions/$t" ] && seeds+=("tests/fuzz/regressions/$t")
  # -timeout: one input may take at most 10 s; -rss_limit_mb / -malloc_limit_mb: an input that makes a parser
  # allocate more than 2 GiB is a finding (allocation must be bounded by the file's size).
  "$BUILD/bin/$t" -max_total_time="$BUDGET" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$findings" "$corpus" "${seeds[@]}" > "$WORK/logs/$t.log" 2>&1 || true
}

pids=()
for t in "${TARGETS[@]}"; do
  [ -x "$BUILD/bin/$t" ] || { echo "no fuzz target $BUILD/bin/$t (build the asan preset: see docs/reliability.md)"; exit 2; }
  run_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$PARALLEL" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done

status=0
printf '%-18s %8s %12s %10s %8s %9s\n' target seconds executions exec/s corpus findings
for t in "${TARGETS[@]}"; do
  log="$WORK/logs/$t.log"
  execs=$(grep -oP 'stat::number_of_executed_units:\s*\K[0-9]+' "$log" | tail -1 || true)
  secs=$(grep -oP 'Done [0-9]+ runs in \K[0-9]+' "$log" | tail -1 || true)
  corpus=$(find "$WORK/corpus/$t" -type f | wc -l)
  found=$(find "$WORK/findings/$t" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  [ -z "$execs" ] && found=$((found + 1))  # no final stats: the fuzzer died before finishing
  rate=$([ -n "$secs" ] && [ "$secs" -gt 0 ] && echo $(( ${execs:-0} / secs )) || echo -)
  printf '%-18s %8s %12s %10s %8s %9s\n' "$t" "${secs:--}" "${execs:--}" "$rate" "$corpus" "$found"
  if [ "$found" -gt 0 ]; then status=1; echo "  -> see $log and $WORK/findings/$t/"; fi
done
exit $status
