#!/usr/bin/env bash
# The README's first command: installs the Debian packages, builds, and runs the main job on its embedded default.
# Only the library, the CLI and the Python extension are built; the options are set explicitly because a build
# directory configured by scripts/test.sh keeps them in its CMake cache. Switching tests off does not delete test
# binaries already built, so `bash scripts/test.sh` afterwards rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DPIXEL3DMM_BUILD_TESTS=OFF -DPIXEL3DMM_BUILD_BENCHMARKS=OFF -DPIXEL3DMM_BUILD_PYTHON=ON
"${PIXEL3DMM_BUILD_DIR:-build}/bin/pixel3dmm" info
"${PIXEL3DMM_BUILD_DIR:-build}/bin/pixel3dmm" demo "$@"
