#!/bin/bash
# session 14, call 3: racecheck over the persistent kernels, then the bench beside torch (forward)
cd "$(dirname "$0")/.." && rm -rf dist && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib
L=$OUT/logs; mkdir -p $L
s=$(date +%s)
for tool in; do
FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 120 /usr/local/cuda/bin/compute-sanitizer --tool $tool --error-exitcode 86 dist/bin/flexjit_tests "gpu: GQA - odd lengths and BSHD strides" > $L/$tool.log 2>&1
echo "$tool rc=$? $(grep -E 'SUMMARY' $L/$tool.log | tail -1) $(grep -E '^(All tests|test cases)' $L/$tool.log | tail -1) $(( $(date +%s)-s )) s"
done
true || FLEXJIT_ARCH=sm_80 FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 60 dist/bin/flexjit_tests "gpu: lengths 1*" > $L/gpu_sm80.log 2>&1; echo "sm_80 lengths rc=$? $(tail -n 2 $L/gpu_sm80.log | head -1) $(( $(date +%s)-s )) s"
OUT=$L/bench BENCH_BWD_SIZES="" BENCH_HEAD_DIMS=0 BENCH_ARGS="--ways sparse --reps 20" timeout 540 bash scripts/bench.sh > $L/bench.log 2>&1; echo "bench rc=$? $(( $(date +%s)-s )) s"
tail -n 45 $L/bench/compare.txt | cut -c1-220
tar czf $OUT/logs.tgz -C $OUT logs
