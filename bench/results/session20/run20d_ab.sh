#!/bin/bash
# Session 19's open risk: the contiguous forward's speed after the paged-prefill merge (its PTX
# changed). This tree's dist/ against 74c70b4's (gpu_carry/base_dist.tgz: a worktree at 74c70b4,
# `cmake --install build --prefix base_dist --strip`), the 16 ANCHORS cases forward, block-sparse
# way, alternating new, base, new, base on one machine; then bench/compare_runs.py.
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz && tar xzf gpu_carry/base_dist.tgz
export CUDA_CACHE_DISABLE=1
out=$OUT/ab; mkdir -p $out
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader
for run in new_1 base_1 new_2 base_2; do
  d=$PWD/dist; [ "${run%_*}" = base ] && d=$PWD/base_dist
  s=$SECONDS
  LD_LIBRARY_PATH=$d/lib FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 120 $d/bin/flexjit_attention_bench \
    --S 8192 --ways sparse --json $out/$run.jsonl > $out/$run.txt 2>&1
  echo "== $run: rc=$? $((SECONDS - s)) s"
done
python3 bench/compare_runs.py --base $out/base_*.jsonl --new $out/new_*.jsonl
