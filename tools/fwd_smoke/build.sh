#!/usr/bin/env bash
# Builds the forward-attention smoke test into .carry/fwd_smoke/ (ignored by git):
#   fwd_<hooks>.<tag>.<arch>.ptx   attention_fwd.cu of variant <tag> (variants.txt) linked with
#                                  each hook set the way the JIT does it (llvm-link, opt -O3, llc);
#                                  hooks: noop, causal, bias, softcap
#   variants.<arch>.txt            the variants' launch shapes, read by the driver
#   ptxas_report.txt               ptxas -v for sm_80 and sm_90a (registers, spills)
#   fwd_smoke                      the driver (needs libcuda.so.1 at run time)
# The shipped kernel is variant "ship" (codegen/templates as they are, no -D flags); more
# variants (baseline copies, -D overrides of the tile shape) come from tools/fwd_smoke/variants.txt
# (sm_80 kernels) and tools/fwd_smoke/variants_sm90.txt (sm_90a kernels).
#   build.sh [TAG...]   only these variants (default: ship + all of variants.txt)
# Run on the GPU machine: .carry/fwd_smoke/fwd_smoke [--no-perf] [--no-check]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/.carry/fwd_smoke
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"
rm -f "$OUT"/*.ptx
CUDA=${CUDA:-/usr/local/cuda}
CFLAGS=(-x cuda --cuda-device-only -nocudainc -nocudalib -Wno-unknown-cuda-version -std=c++20 -O3
        -emit-llvm -c)
HOOKS=(noop causal bias softcap)
# arch tag root warps n_d64 n_d128 stages_d64 stages_d128 flags...
abi() { grep -E "^#define $1 " "$ROOT/codegen/templates/attention_abi.h" | awk '{print $3}'; }
{
  echo "sm_80 ship . $(abi FLEXJIT_FWD_WARPS) $(abi FLEXJIT_FWD_BLOCK_N_D64) $(abi FLEXJIT_FWD_BLOCK_N_D128) $(abi FLEXJIT_FWD_STAGES) $(abi FLEXJIT_FWD_STAGES)"
  n90=$(abi FLEXJIT_FWD_SM90_BLOCK_N) st90=$(abi FLEXJIT_FWD_SM90_STAGES)
  echo "sm_90a ship . $(( $(abi FLEXJIT_FWD_SM90_THREADS) / 32 )) $n90 $n90 $st90 $st90"
  grep -vE '^\s*(#|$)' "$ROOT/tools/fwd_smoke/variants.txt" | sed 's/^/sm_80 /' || true
  grep -vE '^\s*(#|$)' "$ROOT/tools/fwd_smoke/variants_sm90.txt" | sed 's/^/sm_90a /' || true
} >"$TMP/all.txt"
if [ $# -gt 0 ]; then
  awk -v keep=" $* " 'index(keep, " " $2 " ")' "$TMP/all.txt" >"$TMP/sel.txt"
else
  cp "$TMP/all.txt" "$TMP/sel.txt"
fi
: >"$OUT/ptxas_report.txt"
: >"$OUT/variants.sm_80.txt"
: >"$OUT/variants.sm_90a.txt"
build_one() { # tag root arch flags...
  local tag=$1 root=$2 arch=$3
  shift 3
  local src=$ROOT/$root
  clang-19 "${CFLAGS[@]}" -I"$src" -I"$ROOT" "$@" --cuda-gpu-arch=$arch \
    "$src/codegen/templates/attention_fwd.cu" -o "$TMP/fwd.$tag.$arch.bc"
  for hooks in "${HOOKS[@]}"; do
    clang-19 "${CFLAGS[@]}" -I"$src" -I"$ROOT" --cuda-gpu-arch=$arch \
      "$ROOT/tools/fwd_smoke/hooks_$hooks.cu" -o "$TMP/hooks_$hooks.$tag.$arch.bc"
    llvm-link-19 "$TMP/fwd.$tag.$arch.bc" "$TMP/hooks_$hooks.$tag.$arch.bc" -o "$TMP/l.$tag.$arch.$hooks.bc"
    opt-19 -O3 "$TMP/l.$tag.$arch.$hooks.bc" -o "$TMP/o.$tag.$arch.$hooks.bc"
    llc-19 -O3 -mcpu=$arch -mattr=+ptx80 "$TMP/o.$tag.$arch.$hooks.bc" -o "$OUT/fwd_$hooks.$tag.$arch.ptx"
    "$CUDA/bin/ptxas" -arch=$arch -v "$OUT/fwd_$hooks.$tag.$arch.ptx" -o "$TMP/x.$tag.$arch.$hooks.cubin" 2>&1 |
      grep -E "Function properties|registers|spill" | paste - - - |
      sed -E "s/ptxas info +: //g; s/ +/ /g; s/Function properties for flexjit_attention_fwd_//; s/^/$tag $arch $hooks /" \
      >"$TMP/report.$tag.$arch.$hooks.txt"
  done
}
while read -r arch tag root warps n64 n128 st64 st128 flags; do
  # shellcheck disable=SC2086
  build_one "$tag" "$root" "$arch" $flags
  echo "$tag $warps $n64 $n128 $st64 $st128" >>"$OUT/variants.$arch.txt"
  for hooks in "${HOOKS[@]}"; do
    cat "$TMP/report.$tag.$arch.$hooks.txt" >>"$OUT/ptxas_report.txt"
  done
done <"$TMP/sel.txt"
# The driver includes "flexjit/<module>/..." as the library's code does: an include layer of
# the modules it reads (cmake/Modules.cmake makes the same for the build).
mkdir -p "$TMP/include/flexjit"
for m in dsl codegen testing; do ln -s "$ROOT/$m" "$TMP/include/flexjit/$m"; done
g++ -std=c++20 -O2 -Wall -Wextra -I"$CUDA/include" "$ROOT/tools/fwd_smoke/fwd_smoke.cpp" \
  -I"$TMP/include" -L"$CUDA/lib64/stubs" -lcuda -o "$OUT/fwd_smoke"
echo "built $OUT:"
cat "$OUT"/variants.*.txt
echo "kernels with spills (of $(wc -l <"$OUT/ptxas_report.txt")):"
grep -v " 0 bytes spill stores" "$OUT/ptxas_report.txt" || echo "  none"
