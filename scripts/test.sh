#!/usr/bin/env bash
# Set up and build (scripts/setup.sh), then run the test suite (tests tagged
# [gpu] skip themselves without a CUDA device) and the other ctest tests (the
# install + find_package test, the include layers, the flexjit CLI's cases). Then two sanitizer builds of flexjit's own code
# without the examples (FLEXJIT_SANITIZE in CMakeLists.txt; LLVM stays Debian's
# uninstrumented static libraries):
#   $FLEXJIT_BUILD_DIR-asan  AddressSanitizer + UndefinedBehaviorSanitizer, the
#                            CPU suite (flexjit_tests) but its ptxas sweeps
#   $FLEXJIT_BUILD_DIR-tsan  ThreadSanitizer, the concurrency tests
#                            (flexjit_concurrency_tests: the kernel cache's
#                            single flight, the disk cache across processes)
# FLEXJIT_SANITIZERS=0 skips them. Each step prints how long it took.
#
# `bash scripts/test.sh` in a fresh clone on a 2-core machine (2026-12-02, commit 3c20b8f):
# 20.1 min in all: setup + release build 210 s, release tests 154 s (the ptxas tests of the 16
# forward head-dim pairs), install + layers tests 11 s, ASan+UBSan build 448 s, its tests
# 234 s, TSan build 140 s, its tests 7 s. (Commit 7e2593e, four head-dim rows: 16.5 min.)
# 2026-12-07, commit a777124 + this filter, the same kind of machine: setup + release build
# 240 s, release tests 332 s, ctest (install, layers, 42 CLI cases, C API, Python) 20 s,
# ASan+UBSan build 373 s, its tests without the ptxas sweeps 258 s, TSan build ~120 s, its
# tests 9 s: ~22.5 min.
# 2026-12-08, commit 71a3699 (the ptxas sweeps on every core, the decode sweep out of the ASan
# run): setup + release build 231 s, release tests 234 s, ctest 23 s, ASan+UBSan build 462 s, its
# tests 156 s, TSan 103 + 8 s: 20.3 min.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FLEXJIT_BUILD_DIR:-$repo/build}"
jobs="${FLEXJIT_JOBS:-$(nproc)}"

step() {
  local name="$1" start=$SECONDS
  shift
  echo "test.sh: $name"
  "$@"
  echo "test.sh: $name took $((SECONDS - start)) s"
}

step "setup and release build" bash "$repo/scripts/setup.sh"
step "release tests" "$build_dir/tests/flexjit_tests"
step "ctest (install, layers and CLI tests)" ctest --test-dir "$build_dir" --output-on-failure -E '^flexjit_tests$'

if [ "${FLEXJIT_SANITIZERS:-1}" = 0 ]; then
  exit 0
fi
export PATH="${CUDA_HOME:-/usr/local/cuda}/bin:$PATH"
sanitized_build() { # dir, sanitizers, target
  # The release build's template bitcode (device code: no sanitizer reaches it) is embedded
  # as it is, not compiled again.
  cmake -S "$repo" -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFLEXJIT_SANITIZE="$2" \
    -DFLEXJIT_BUILD_EXAMPLES=OFF -DCUDAToolkit_ROOT="${CUDA_HOME:-/usr/local/cuda}" \
    -DFLEXJIT_TEMPLATE_BITCODE_DIR="$build_dir/generated"
  cmake --build "$1" -j "$jobs" --target "$3"
}

step "ASan+UBSan build" sanitized_build "$build_dir-asan" address,undefined flexjit_tests
# Without the three ptxas resource sweeps ([ptxas-sweep]: every template, forward kernel and
# warp-specialized seed pair through ptxas for spills, ~3 of the release run's minutes): they
# check ptxas's output, which the release run does; the sanitizers check flexjit's own code,
# which the other ptx tests (random mods of every node kind, the attention kernels x seed mods)
# drive through the same lowering. "~[.]": a filter of exclusions alone would run the hidden
# tests too.
step "ASan+UBSan tests" env ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  "$build_dir-asan/tests/flexjit_tests" "~[ptxas-sweep]~[.]"

step "TSan build" sanitized_build "$build_dir-tsan" thread flexjit_concurrency_tests
step "TSan tests" env TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  "$build_dir-tsan/tests/flexjit_concurrency_tests"
