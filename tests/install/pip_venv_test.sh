#!/usr/bin/env bash
# pip-installs the package into a fresh venv of Debian's python3 (with --system-site-packages, so it sees
# Debian's torch and numpy), reusing the CMake build tree, then imports it from an unrelated folder.
# Usage: pip_venv_test.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
SOURCE_DIR=$1 BUILD_DIR=$2 WORK_DIR=$3
rm -rf "$WORK_DIR" && mkdir -p "$WORK_DIR"
/usr/bin/python3 -m venv --system-site-packages "$WORK_DIR/venv"
# Build from a copy so setuptools' build/ and egg-info stay out of the source tree.
cp -r "$SOURCE_DIR/python" "$SOURCE_DIR/setup.py" "$SOURCE_DIR/pyproject.toml" "$SOURCE_DIR/README.md" "$WORK_DIR/"
mkdir -p "$WORK_DIR/src" && mv "$WORK_DIR/python" "$WORK_DIR/setup.py" "$WORK_DIR/pyproject.toml" "$WORK_DIR/README.md" "$WORK_DIR/src/"
# setup.py needs the CMake tree only through PIXEL3DMM_BUILD_DIR here.
PIXEL3DMM_BUILD_DIR="$BUILD_DIR" "$WORK_DIR/venv/bin/python" -m pip install -q --no-build-isolation --no-index \
  --disable-pip-version-check "$WORK_DIR/src"
cd "$WORK_DIR"
"$WORK_DIR/venv/bin/python" - <<'PY'
import os, tempfile
import torch
import pixel3dmm
assert os.path.dirname(pixel3dmm.__file__).startswith(os.path.abspath("venv")), pixel3dmm.__file__
info = pixel3dmm.runtime_info()
print("installed pixel3dmm", pixel3dmm.__version__, "at", os.path.dirname(pixel3dmm.__file__), "BLAS", info["blas"])
assert info["num_threads"] >= 1
PY
echo "pip install ok"
