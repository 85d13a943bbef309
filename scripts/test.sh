#!/usr/bin/env bash
# The README's test command: installs the Debian packages, builds everything, runs every test (C++ and Python)
# through CTest and prints CTest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh "$@"
ctest --test-dir "${PIXEL3DMM_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
