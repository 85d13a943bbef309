#!/usr/bin/env bash
# The README's first command: installs the Debian packages, builds, and runs the main job on its embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DPIXEL3DMM_BUILD_TESTS=OFF -DPIXEL3DMM_BUILD_BENCHMARKS=OFF
"${PIXEL3DMM_BUILD_DIR:-build}/bin/pixel3dmm" info
"${PIXEL3DMM_BUILD_DIR:-build}/bin/pixel3dmm" demo "$@"
