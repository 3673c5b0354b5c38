#!/usr/bin/env bash
# On a GPU machine: this build (dist/) against another install of flexjit ($BASE_DIST, e.g.
# the tree before a refactoring, `cmake --install build --prefix base_dist --strip` there,
# with its flexjit_host_time built from this tree's bench/host_time.cpp), in one job.
#   gpu_ab.sh tests   host time of first and cached calls (base, new, base, new: three
#                     processes each), then dist's [gpu] tests, natively and under
#                     FLEXJIT_ARCH=sm_80 (without the fuzz cases)
#   gpu_ab.sh bench   the 16 ANCHORS cases, forward and backward, block-sparse way: new,
#                     base, torch beside new (bench/compare_torch.py), new, base; then
#                     python3 bench/compare_runs.py --base $OUT/base_*.jsonl --new $OUT/new_*.jsonl
# Results in $OUT (default ./gpu_ab_out).
set -u
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$repo/gpu_ab_out}"
base="${BASE_DIST:?set BASE_DIST to the other install}"
mkdir -p "$out"
export CUDA_CACHE_DISABLE=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader
host_time() { # name lib bin
  local d; d=$(mktemp -d)
  LD_LIBRARY_PATH=$2 FLEXJIT_CACHE_DIR=$d $3 --warm
  for run in 1 2 3; do echo "== $1 run $run"; LD_LIBRARY_PATH=$2 FLEXJIT_CACHE_DIR=$d $3; done
}
bench() { # name lib bin
  local start=$SECONDS
  LD_LIBRARY_PATH=$2 FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 200 $3 --S 8192 --ways sparse --bwd \
    --json "$out/$1.jsonl" >"$out/$1.txt" 2>&1
  echo "== $1: rc=$? $((SECONDS - start)) s"
}
case "${1:-}" in
tests)
  {
    for round in 1 2; do
      host_time base "$base/lib" "$base/bin/flexjit_host_time"
      host_time new "$repo/dist/lib" "$repo/dist/bin/flexjit_host_time"
    done
  } 2>&1 | tee "$out/host_time.txt"
  export LD_LIBRARY_PATH="$repo/dist/lib" FLEXJIT_CACHE_DIR=$(mktemp -d)
  "$repo/dist/bin/flexjit_tests" "[gpu]~[soak]" >"$out/gpu_tests.txt" 2>&1
  echo "[gpu]: rc=$?"; tail -n 3 "$out/gpu_tests.txt"
  FLEXJIT_ARCH=sm_80 "$repo/dist/bin/flexjit_tests" "[gpu]~[fuzz]" >"$out/gpu_tests_sm80.txt" 2>&1
  echo "[gpu] under FLEXJIT_ARCH=sm_80: rc=$?"; tail -n 3 "$out/gpu_tests_sm80.txt"
  ;;
bench)
  bench new_1 "$repo/dist/lib" "$repo/dist/bin/flexjit_attention_bench"
  bench base_1 "$base/lib" "$base/bin/flexjit_attention_bench"
  PYTHONUNBUFFERED=1 timeout 300 python3 "$repo/bench/compare_torch.py" \
    --flexjit "$out/new_1.jsonl" --out "$out" >"$out/compare.txt" 2>&1
  echo "== torch: rc=$?"
  bench new_2 "$repo/dist/lib" "$repo/dist/bin/flexjit_attention_bench"
  bench base_2 "$base/lib" "$base/bin/flexjit_attention_bench"
  python3 "$repo/bench/compare_runs.py" --base "$out"/base_*.jsonl --new "$out"/new_*.jsonl
  ;;
*)
  echo "usage: BASE_DIST=... gpu_ab.sh tests|bench" >&2
  exit 2
  ;;
esac
