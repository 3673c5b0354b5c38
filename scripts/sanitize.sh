#!/usr/bin/env bash
# compute-sanitizer's memcheck, racecheck, synccheck and initcheck over every kernel of the
# variant table at small shapes: the [sanitize] test (tests/test_sanitize_gpu.cpp: each row of
# the target's arch, every result checked; SANITIZE_TESTS picks other tests), run from the
# stripped install in dist/ (cmake --install build --prefix dist --strip), once for the device's
# arch (sm_90a on Hopper) and once with FLEXJIT_ARCH=sm_80 (the sm_80 rows). Every run has a
# fresh kernel cache (FLEXJIT_CACHE_DIR), so every kernel is compiled and loaded under the tool.
# SANITIZE_TOOLS and SANITIZE_ARCHS ("device sm_80") run fewer. Each run's summary is printed
# and its log kept in $OUT (default sanitize_out/); exit status 1 when a tool reports anything
# (an error, a hazard, a warning) or a test fails or does not run. Without a GPU it says so and
# exits 0.
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
tests="${SANITIZE_TESTS:-[sanitize]}"
tools="${SANITIZE_TOOLS:-memcheck racecheck synccheck initcheck}"
archs="${SANITIZE_ARCHS:-device sm_80}"

# No tool flags beyond --error-exitcode. racecheck's warnings do not set the exit code, so every
# summary line is read (any error, hazard or warning fails the run). initcheck reports reads of
# global memory nothing wrote; its report of allocations never wholly used (the rounded-up tails
# of grow-only workspaces, the pages of a KV cache pool no sequence owns) is off by default
# (--track-unused-memory) and stays off: such memory is never read, so it is no error.
status=0
for arch in $archs; do
  if [ "$arch" = device ]; then
    arch_env=(-u FLEXJIT_ARCH) # the device's own arch
  else
    arch_env=("FLEXJIT_ARCH=$arch")
  fi
  for tool in $tools; do
    log="$out/$tool-$arch.log"
    cache="$(mktemp -d)"
    env "${arch_env[@]}" FLEXJIT_CACHE_DIR="$cache" "$sanitizer" --tool "$tool" \
      --error-exitcode 86 "$repo/dist/bin/flexjit_tests" "$tests" --warn NoTests >"$log" 2>&1
    rc=$?
    rm -rf "$cache"
    summaries="$(grep -E "(ERROR|RACECHECK) SUMMARY" "$log")"
    tests_line="$(grep -E "^(All tests passed|test cases:)" "$log" | tail -n 1)"
    covered="$(grep -oE "sanitize: [0-9]+ of the [0-9]+ [a-z0-9_]+ rows covered, [0-9]+ kernel builds" "$log" | tail -n 1)"
    echo "$tool ($arch): rc=$rc; $(echo "${summaries:-no summary line}" | paste -sd ';' -);" \
      "${tests_line:-no test summary}${covered:+; $covered}"
    failed=0
    [ "$rc" = 0 ] || failed=1
    # No summary (the tool died), or one that counts anything.
    if [ -z "$summaries" ] ||
      echo "$summaries" | grep -vqE "SUMMARY: 0 (errors|hazards displayed \(0 errors, 0 warnings\))"; then
      failed=1
    fi
    echo "$tests_line" | grep -q "^All tests passed" || failed=1
    # The [sanitize] test says what it covered; without that line it skipped (no CUDA device).
    if [ -z "${SANITIZE_TESTS:-}" ] && [ -z "$covered" ]; then
      echo "  the [sanitize] test did not run on the GPU (skipped?)"
      failed=1
    elif [ "$arch" != device ] && [ -n "$covered" ] && ! echo "$covered" | grep -q " $arch rows"; then
      echo "  FLEXJIT_ARCH=$arch did not set the target's arch"
      failed=1
    fi
    if [ "$failed" = 1 ]; then
      echo "  FAILED: see $log"
      status=1
    fi
  done
done
exit $status
