#!/usr/bin/env bash
# Set up and build (scripts/setup.sh), then run the test suite (tests tagged
# [gpu] skip themselves without a CUDA device) and the other ctest tests (the
# install + find_package test).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FLEXJIT_BUILD_DIR:-$repo/build}"
bash "$repo/scripts/setup.sh"
"$build_dir/tests/flexjit_tests"
ctest --test-dir "$build_dir" --output-on-failure -E '^flexjit_tests$'
