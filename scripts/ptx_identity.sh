#!/usr/bin/env bash
# Shows that the PTX of the seed mods' kernels did not change: builds the digest tool
# (tools/ptx_digest.cpp: every template, dtype, head dim and arch, the seed masks with
# the noop score_mod and the seed score_mods with the causal mask) and compares its
# listing with bench/ptx_digests.txt, committed from the tree whose PTX is the reference
# (see that file's first line). Exit 0 and "identical" when every kernel's PTX matches up to
# the numbering of its virtual registers (the digest renumbers them: tools/ptx_digest.cpp).
#   FLEXJIT_BUILD_DIR  build directory (default: build)
# After a deliberate kernel change: flexjit_ptx_digest > bench/ptx_digests.txt, and say
# so in the commit.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FLEXJIT_BUILD_DIR:-$repo/build}"
cmake --build "$build_dir" --target flexjit_ptx_digest >/dev/null
now="$(mktemp)"
"$build_dir/tools/flexjit_ptx_digest" "$(nproc)" >"$now"
if diff <(grep -v '^#' "$repo/bench/ptx_digests.txt") "$now"; then
  echo "ptx_identity.sh: identical: $(wc -l <"$now") kernels match bench/ptx_digests.txt"
  rm -f "$now"
else
  echo "ptx_identity.sh: the PTX differs from bench/ptx_digests.txt (lines above)" >&2
  rm -f "$now"
  exit 1
fi
