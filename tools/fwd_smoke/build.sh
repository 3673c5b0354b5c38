#!/usr/bin/env bash
# Builds the forward-attention smoke test into .carry/fwd_smoke/ (ignored by git):
#   fwd_{noop,causal,bias}.sm_90a.ptx  attention_fwd.cu linked with each hook set the way
#                                      the JIT does it (llvm-link, opt -O3, llc)
#   ptxas_report.txt                  ptxas -v for sm_80 and sm_90a (registers, spills)
#   fwd_smoke                         the driver (needs libcuda.so.1 at run time)
# Run on the GPU machine: cd .carry/fwd_smoke && ./fwd_smoke [--no-perf]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/.carry/fwd_smoke
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"
CUDA=${CUDA:-/usr/local/cuda}
CFLAGS=(-x cuda --cuda-device-only -nocudainc -nocudalib -Wno-unknown-cuda-version -std=c++20 -O3
        -emit-llvm -c -I"$ROOT")
: >"$OUT/ptxas_report.txt"
for arch in sm_80 sm_90a; do
  clang-19 "${CFLAGS[@]}" --cuda-gpu-arch=$arch "$ROOT/codegen/templates/attention_fwd.cu" \
    -o "$TMP/fwd.$arch.bc"
  for hooks in noop causal bias; do
    clang-19 "${CFLAGS[@]}" --cuda-gpu-arch=$arch "$ROOT/tools/fwd_smoke/hooks_$hooks.cu" \
      -o "$TMP/hooks_$hooks.$arch.bc"
    llvm-link-19 "$TMP/fwd.$arch.bc" "$TMP/hooks_$hooks.$arch.bc" -o "$TMP/linked.bc"
    opt-19 -O3 "$TMP/linked.bc" -o "$TMP/opt.bc"
    ptx=$OUT/fwd_$hooks.$arch.ptx
    llc-19 -O3 -mcpu=$arch -mattr=+ptx80 "$TMP/opt.bc" -o "$ptx"
    echo "== $arch $hooks" >>"$OUT/ptxas_report.txt"
    "$CUDA/bin/ptxas" -arch=$arch -v "$ptx" -o "$TMP/x.cubin" 2>&1 |
      grep -E "Function properties|registers|spill" >>"$OUT/ptxas_report.txt"
  done
done
g++ -std=c++20 -O2 -Wall -Wextra -I"$CUDA/include" "$ROOT/tools/fwd_smoke/fwd_smoke.cpp" \
  -I"$ROOT" -L"$CUDA/lib64/stubs" -lcuda -o "$OUT/fwd_smoke"
echo "built $OUT:"
ls "$OUT"
grep -c "0 bytes spill stores" "$OUT/ptxas_report.txt" | xargs echo "kernels with 0 spill stores (of 24):"
