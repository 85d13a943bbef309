#!/usr/bin/env bash
# Configures and builds pixel3dmm in ./build (Ninja, ccache, precompiled LibTorch headers).
# Extra arguments go to the CMake configure step, e.g. scripts/build.sh -DPIXEL3DMM_BUILD_TESTS=OFF
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${PIXEL3DMM_BUILD_DIR:-build}
# ccache must accept the precompiled header; sources are hashed relative to the checkout so clones share hits.
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_BASEDIR="$PWD"
JOBS=${PIXEL3DMM_JOBS:-$(nproc)}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$BUILD_DIR" -j "$JOBS"
