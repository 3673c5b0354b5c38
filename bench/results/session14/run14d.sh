#!/bin/bash
# session 14, call 4: the forward [gpu] tests on the committed build (1daaa94)
cd "$(dirname "$0")/.." && rm -rf dist && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L; s=$(date +%s)
timeout 420 dist/bin/flexjit_tests "[gpu][attention]~[backward]" > $L/gpu_forward.log 2>&1; echo "forward gpu tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/gpu_forward.log
grep -B3 -A15 FAILED $L/gpu_forward.log | head -40
tar czf $OUT/logs.tgz -C $OUT logs
