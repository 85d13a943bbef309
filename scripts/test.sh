#!/usr/bin/env bash
# The README's test command: installs the Debian packages, builds everything, runs every test (C++ and Python)
# through CTest and prints CTest's summary.
# Tests and benchmarks are switched on explicitly: a build directory configured by scripts/demo.sh (tests off) keeps
# its options in the CMake cache, and CTest must fail, not pass, when it finds no test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DPIXEL3DMM_BUILD_TESTS=ON -DPIXEL3DMM_BUILD_BENCHMARKS=ON -DPIXEL3DMM_BUILD_PYTHON=ON "$@"
ctest --test-dir "${PIXEL3DMM_BUILD_DIR:-build}" --output-on-failure --no-tests=error -j "$(nproc)"
