#!/usr/bin/env bash
# The sanitizer step of CI (docs/reliability.md): builds the `asan` CMake preset (clang-14, AddressSanitizer +
# UndefinedBehaviorSanitizer, libFuzzer targets) in ./build-asan, runs the whole C++ test suite under it, then
# smoke-runs every fuzz target for PIXEL3DMM_FUZZ_SMOKE_S seconds (default 20; 0 skips them).
#   scripts/test-asan.sh [extra Catch2 arguments, e.g. a test name or "[io]"]
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_BASEDIR="$PWD"
export PIXEL3DMM_ASAN_BUILD_DIR=build-asan
JOBS=${PIXEL3DMM_JOBS:-$(nproc)}
start=$(date +%s)
cmake --preset asan > /dev/null
cmake --build build-asan -j "$JOBS" --target pixel3dmm_tests fuzzers
built=$(date +%s)
source scripts/sanitizer-env.sh
# One process for the whole suite: LibTorch starts once (per-test processes would pay ASan's start-up ~300 times).
PIXEL3DMM_NUM_THREADS=2 build-asan/bin/pixel3dmm_tests --order lex "$@"
tested=$(date +%s)
if [ "${PIXEL3DMM_FUZZ_SMOKE_S:-20}" -gt 0 ] && [ $# -eq 0 ]; then
  PIXEL3DMM_FUZZ_WORK=build-asan/fuzz-smoke bash scripts/fuzz.sh -t "${PIXEL3DMM_FUZZ_SMOKE_S:-20}" -j "$JOBS"
fi
end=$(date +%s)
echo "asan: build $((built - start)) s, C++ tests $((tested - built)) s, fuzz smoke $((end - tested)) s"
