#!/usr/bin/env bash
# The whole bench in one command: flexjit's three ways (block-sparse, dense
# [S,S] mask, mask as a score_mod) on the 16 ANCHORS cases at S=8192 and
# causal/document at S=2048 and 32768 (B*S kept at 16*8192 for D=64 f16 and
# 4*8192 for D=128 bf16), with the block-sparse backward (--bwd) at S=8192;
# then PyTorch (flex_attention forward and, where flexjit timed one, backward;
# F.sdpa; F.sdpa with a dense mask) on the same GPU and shapes
# (bench/compare_torch.py): a forward table and a backward table, merged.json
# and bench.png in $OUT (default ./bench_out).
#
# Uses the stripped install in dist/ (cmake --install build --prefix dist
# --strip), as scripts/gpu_run.sh does; without one (a fresh checkout) it first
# builds through scripts/setup.sh and installs into dist/. Without a GPU it says
# so, prints the compile-only columns (DSL -> PTX per variant) and exits 0.
#   BENCH_SIZES   sequence lengths (default "8192 2048 32768"; the last two run
#                 causal and document only)
#   BENCH_BWD_SIZES  the sizes that also time the backward (default "8192", the
#                 16 ANCHORS cases; "" for forward only)
#   BENCH_ARGS    extra flexjit_attention_bench options (e.g. "--reps 10")
#   BENCH_DENSE_MAX_S  the dense-mask ways (flexjit and F.sdpa) are skipped
#                 above this S (default 16384: at 32768 the mask is 1 GiB)
#   BENCH_HEAD_DIMS=0  skip the head-dim rows (bf16 noop and causal at S=8192 for every
#                 (q/k, v) head-dim pair of the forward, B*S = 4*8192; default on)
#   SKIP_TORCH=1  flexjit only (the table and plot still come out)
#   BENCH_PYTHON=1  also run the --python step below after the rest
#
#   bash scripts/bench.sh --python [python_bench.py options, e.g. --backward --quick]
# runs only bench/python_bench.py: flexjit's Python package (over dist/lib/libflexjit.so,
# the package from python/) and torch flex_attention on the very same torch tensors in one
# process, the 16 ANCHORS cases; its table in $OUT/python_bench.txt, one JSON object per case
# in $OUT/python_bench.jsonl. Without torch, triton or a GPU it prints "skipped: ..." and
# exits 0.
set -u
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$repo/bench_out}"
mkdir -p "$out"
python_only=0
if [ "${1:-}" = --python ]; then
  python_only=1
  shift
fi
bin="$repo/dist/bin/flexjit_attention_bench"
if [ ! -x "$bin" ]; then
  echo "bench.sh: no dist/ install; building with scripts/setup.sh, installing into dist/"
  bash "$repo/scripts/setup.sh" || exit 1
  cmake --install "${FLEXJIT_BUILD_DIR:-$repo/build}" --prefix "$repo/dist" --strip >/dev/null ||
    exit 1
fi
export LD_LIBRARY_PATH="$repo/dist/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# No driver JIT cache: the cold-call columns include the driver's PTX -> cubin, as on a
# machine that never saw these kernels.
export CUDA_CACHE_DISABLE=1
# A fresh kernel cache, so that the first call of each kernel is a compile.
export FLEXJIT_CACHE_DIR="${FLEXJIT_CACHE_DIR:-$(mktemp -d)}"
read -r -a extra <<<"${BENCH_ARGS:-}"

python_bench() {
  echo "== flexjit's Python package vs torch flex_attention, same tensors (bench/python_bench.py)"
  FLEXJIT_LIBRARY="$repo/dist/lib/libflexjit.so" PYTHONPATH="$repo/python${PYTHONPATH:+:$PYTHONPATH}" \
    PYTHONUNBUFFERED=1 python3 "$repo/bench/python_bench.py" --json "$out/python_bench.jsonl" "$@" \
    2> >(tee "$out/python_bench.log" >&2) | tee "$out/python_bench.txt"
  local rc="${PIPESTATUS[0]}"
  [ "$rc" = 0 ] || echo "bench.sh: python_bench.py failed (exit $rc; its stderr: $out/python_bench.log)"
  return "$rc"
}
if [ "$python_only" = 1 ]; then
  python_bench "$@"
  exit $?
fi
dense_max="${BENCH_DENSE_MAX_S:-16384}"
bwd_sizes=" ${BENCH_BWD_SIZES-8192} "

if ! nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader \
  2>/dev/null; then
  echo "bench.sh: no GPU (nvidia-smi found no device): nothing to time; the compile-only columns:"
  "$bin" --compile-only "${extra[@]}" --json "$out/flexjit_compile_only.jsonl"
  exit 0
fi

fj="$out/flexjit.jsonl"
: >"$fj"
for S in ${BENCH_SIZES:-8192 2048 32768}; do
  cases=()
  [ "$S" = 8192 ] || cases=(--case causal,document)
  bwd=()
  what=forward
  if [[ "$bwd_sizes" == *" $S "* ]]; then
    bwd=(--bwd)
    what="forward and backward"
  fi
  echo "== flexjit $what, S=$S"
  "$bin" --S "$S" "${cases[@]}" "${bwd[@]}" --dense-max-S "$dense_max" "${extra[@]}" --json "$out/flexjit_S$S.jsonl" 2>&1 |
    tee "$out/flexjit_S$S.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || echo "bench.sh: flexjit_attention_bench --S $S failed (see above)"
  if grep -q "no CUDA device" "$out/flexjit_S$S.txt"; then
    echo "bench.sh: flexjit found no usable CUDA device (see above); compile-only columns printed"
    exit 0
  fi
  cat "$out/flexjit_S$S.jsonl" >>"$fj"
done
if [ "${BENCH_HEAD_DIMS:-1}" != 0 ]; then
  echo "== flexjit forward, every head dim (bf16, S=8192)"
  "$bin" --head-dims --S 8192 --case noop,causal --ways sparse "${extra[@]}" \
    --json "$out/flexjit_head_dims.jsonl" 2>&1 | tee "$out/flexjit_head_dims.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || echo "bench.sh: flexjit_attention_bench --head-dims failed (see above)"
  cat "$out/flexjit_head_dims.jsonl" >>"$fj"
fi

torch_args=()
if [ "${SKIP_TORCH:-0}" = 1 ]; then
  echo "torch skipped (SKIP_TORCH=1)"
  torch_args=(--no-torch)
elif ! python3 -c "import torch, triton" 2>/dev/null; then
  echo "torch skipped: python3 cannot import torch and triton"
  torch_args=(--no-torch)
else
  echo "== torch flex_attention / F.sdpa (bench/compare_torch.py)"
fi
PYTHONUNBUFFERED=1 python3 "$repo/bench/compare_torch.py" --flexjit "$fj" --out "$out" \
  --dense-max-S "$dense_max" "${torch_args[@]}" 2>&1 | tee "$out/compare.txt"
rc="${PIPESTATUS[0]}"
if [ "${BENCH_PYTHON:-0}" = 1 ] && [ "${SKIP_TORCH:-0}" != 1 ]; then
  python_bench || rc=1
fi
exit "$rc"
