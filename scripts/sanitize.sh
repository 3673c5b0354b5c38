#!/usr/bin/env bash
# compute-sanitizer's memcheck, racecheck and synccheck over the attention kernels at small
# shapes: the [gpu] tests of odd lengths, BSHD strides, GQA, Q != KV and fully masked rows
# (SANITIZE_TESTS picks others), run from the stripped install in dist/ (cmake --install
# build --prefix dist --strip). Each tool's summary line is printed; exit status 1 when a
# tool reports an error or a test fails. Without a GPU it says so and exits 0.
set -u
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$repo/sanitize_out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$repo/dist/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "sanitize.sh: no GPU (nvidia-smi found no device): nothing to check"
  exit 0
fi
sanitizer="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
tests="${SANITIZE_TESTS:-gpu: GQA - odd lengths and BSHD strides,gpu: Flamingo cross attention - Q != KV - fully masked rows}"
status=0
for tool in memcheck racecheck synccheck; do
  # A fresh kernel cache per tool: every kernel is compiled and loaded under the tool.
  export FLEXJIT_CACHE_DIR="$(mktemp -d)"
  log="$out/$tool.log"
  "$sanitizer" --tool "$tool" --error-exitcode 86 "$repo/dist/bin/flexjit_tests" "$tests" >"$log" 2>&1
  rc=$?
  summary="$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -n 1)"
  tests_line="$(grep -E "^(All tests passed|test cases:)" "$log" | tail -n 1)"
  echo "$tool: rc=$rc; ${summary:-no summary line}; ${tests_line:-no test summary}"
  [ "$rc" = 0 ] || status=1
done
exit $status
