#!/usr/bin/env bash
# Packs what a GPU machine without LLVM or network needs into gpu_carry/ (git-ignored), for the
# device tool's `carry`: dist.tgz (the stripped install of build/, plus the C API's C test
# program) and pylib/ (Debian's pytest and its dependencies, for a python without pytest; the
# scripts put it on PYTHONPATH only when `import pytest` fails). Run after building build/.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FLEXJIT_BUILD_DIR:-$repo/build}"
cd "$repo"
rm -rf dist
cmake --install "$build_dir" --prefix dist --strip >/dev/null
install -s "$build_dir/tests/flexjit_capi_c_test" dist/bin/
mkdir -p gpu_carry
tar czf gpu_carry/dist.tgz dist
rm -rf gpu_carry/pylib
mkdir -p gpu_carry/pylib
site=/usr/lib/python3/dist-packages
for p in _pytest pytest pluggy iniconfig packaging attr attrs py.py; do
  [ -e "$site/$p" ] && cp -r "$site/$p" gpu_carry/pylib/
done
du -sh gpu_carry
