#!/usr/bin/env bash
# Installs every Debian 12 package pixel3dmm needs to build, test and run. Idempotent: a second run changes
# nothing. Run as root (or with sudo available).
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config git
  # the sanitizer + fuzzing build (scripts/test-asan.sh, CI's second step): clang with ASan, UBSan and libFuzzer
  clang-14 libclang-rt-14-dev
  # C++ dependencies
  libtorch-dev libopencv-dev libeigen3-dev nlohmann-json3-dev pybind11-dev zlib1g-dev catch2
  libdlib-dev libdlib-data libgloo-dev
  # a fast BLAS for LibTorch (without it LibTorch falls back to the reference BLAS: ~25x slower GEMM)
  libopenblas0-pthread
  # Python side (Debian's /usr/bin/python3 and its torch)
  python3 python3-dev python3-torch python3-numpy python3-pytest python3-venv python3-setuptools python3-wheel
  python3-pip python3-nbclient python3-nbformat python3-ipykernel
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
