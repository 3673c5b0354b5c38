#!/usr/bin/env bash
# What ptxas made of attention kernels, read from the SASS: instruction counts that show the
# intended machinery (HGMMA, UTMALDG, SYNCS, USETMAXREG; LDL/STL = spills) and, for the
# warp-specialized forward, how much of the softmax lands between the wait for S
# (WARPGROUP.DEPBAR.LE gsb0, 0x1) and the wait for P V (... 0x0): the MUFU.EX2 there are the
# exponentials that overlap the warpgroup's own P V product (bench/NOTES_fwd_kernel.md).
#
# The disassembler is on the GPU machine only, so the PTX is made where the library is built:
#   here:    build/tools/flexjit_ptx_digest --ptx flexjit_attention_fwd_ws_bf16_d128 > k.ptx
#   there:   bash scripts/sass_report.sh k.ptx ...   (needs ptxas and cuobjdump, CUDA 13)
# SASS_OUT keeps the .sass files (default: a temporary directory).
set -u
[ $# -gt 0 ] || { echo "usage: sass_report.sh KERNEL.ptx..." >&2; exit 2; }
cuda="${CUDA_HOME:-/usr/local/cuda}"
for tool in ptxas cuobjdump; do
  [ -x "$cuda/bin/$tool" ] || { echo "sass_report.sh: no $cuda/bin/$tool here" >&2; exit 2; }
done
out="${SASS_OUT:-$(mktemp -d)}"
mkdir -p "$out"
status=0
for ptx in "$@"; do
  name="$(basename "$ptx" .ptx)"
  if ! "$cuda/bin/ptxas" -arch=sm_90a -v "$ptx" -o "$out/$name.cubin" >"$out/$name.ptxas.log" 2>&1; then
    echo "$name: ptxas failed (see $out/$name.ptxas.log)"
    status=1
    continue
  fi
  "$cuda/bin/cuobjdump" --dump-sass "$out/$name.cubin" >"$out/$name.sass"
  count() { grep -c -E "$1" "$out/$name.sass"; }
  spills="$(grep -o -E '[0-9]+ bytes spill stores' "$out/$name.ptxas.log" | head -n 1)"
  echo "$name: $(count 'HGMMA') HGMMA, $(count 'UTMALDG') UTMALDG, $(count 'SYNCS') SYNCS," \
    "$(count 'USETMAXREG') USETMAXREG, $(count '\bLDL|\bSTL') LDL/STL (${spills:-no spill line})"
  awk -v name="$name" '
    /WARPGROUP.DEPBAR.LE gsb0, 0x1/ { inside = 1; n = 0; ex2 = 0; next }
    inside && /MUFU.EX2/ { ex2++ }
    inside && /^ *\/\*[0-9a-f]+\*\// { n++ }
    inside && /WARPGROUP.DEPBAR.LE gsb0, 0x0/ {
      printf "%s: between the S wait and the P V wait: %d instructions, %d MUFU.EX2\n", name, n, ex2
      inside = 0
    }' "$out/$name.sass"
done
echo "sass_report.sh: SASS and ptxas logs in $out"
exit $status
