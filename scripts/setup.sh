#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for flexjit and builds it (Release) into
# build/. Idempotent: packages already installed are not reinstalled, and a
# second run only rebuilds what changed.
#   FLEXJIT_BUILD_DIR  build directory (default: build)
#   FLEXJIT_JOBS       parallel build jobs (default: nproc)
#   CUDA_HOME          CUDA toolkit (default: /usr/local/cuda); flexjit needs
#                      its ptxas and libdevice, not a GPU.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FLEXJIT_BUILD_DIR:-$repo/build}"
jobs="${FLEXJIT_JOBS:-$(nproc)}"
cuda_home="${CUDA_HOME:-/usr/local/cuda}"

# llvm-19-dev pulls libffi-dev, libxml2-dev, libz3-dev and libncurses-dev,
# which LLVM's CMake package references; LLVMSupport's static library also
# needs zlib and zstd at link time.
# python3-pytest and python3-numpy run the Python package's tests (ctest flexjit_python).
packages=(cmake g++ ninja-build llvm-19-dev clang-19 libfmt-dev catch2 libzstd-dev zlib1g-dev
  libdlpack-dev python3-pytest python3-numpy)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: run as root or install sudo" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "setup.sh: installing ${missing[*]}"
  "${sudo[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends \
    "${missing[@]}"
fi

if [ ! -x "$cuda_home/bin/ptxas" ] || [ ! -f "$cuda_home/nvvm/libdevice/libdevice.10.bc" ]; then
  echo "setup.sh: the CUDA toolkit (ptxas, nvvm/libdevice) was not found in $cuda_home;" \
    "install CUDA 12.x/13.x there or set CUDA_HOME" >&2
  exit 1
fi
export PATH="$cuda_home/bin:$PATH"

cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCUDAToolkit_ROOT="$cuda_home"
cmake --build "$build_dir" -j "$jobs"
