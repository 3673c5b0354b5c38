#!/bin/bash
# session 15, call 1: the posted walk + heaviest-first tree: [gpu][attention] tests, sanitizers,
# sm_80 ragged lengths, the backward
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee $L/gpu.txt
s=$(date +%s)
timeout 300 dist/bin/flexjit_tests "[gpu][attention]~[backward]" > $L/gpu_attention.log 2>&1; echo "gpu attention tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/gpu_attention.log
grep -B3 -A12 "FAILED" $L/gpu_attention.log | head -60
OUT=$L/san timeout 200 bash scripts/sanitize.sh; echo "sanitize rc=$? $(( $(date +%s)-s )) s"
FLEXJIT_ARCH=sm_80 timeout 60 dist/bin/flexjit_tests "gpu: lengths 1*" > $L/gpu_sm80.log 2>&1; echo "sm_80 lengths rc=$? $(( $(date +%s)-s )) s"; tail -n 2 $L/gpu_sm80.log
timeout 100 dist/bin/flexjit_tests "[gpu][backward]" > $L/gpu_backward.log 2>&1; echo "gpu backward rc=$? $(( $(date +%s)-s )) s"; tail -n 2 $L/gpu_backward.log
tar czf $OUT/logs.tgz -C $OUT logs
