#!/bin/bash
# Session 19, second call: the GPU block-mask builder v2 after the fix of run19c's race (the
# undecided tiles' warp assignment), memcheck and racecheck over it, its times, the varlen bench.
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
s=$(date +%s)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 dist/bin/flexjit_tests "[gpu][blockmask]~[timing]","[varlen]" > $L/blockmask_tests.log 2>&1; echo "blockmask + varlen tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/blockmask_tests.log
grep -B5 -A12 "FAILED" $L/blockmask_tests.log | head -60
for S in 8192 32768 65536; do timeout 60 dist/bin/flexjit_blockmask_bench --gpu $S 11 > $L/blockmask_$S.txt 2>&1; echo "blockmask bench S=$S rc=$?"; cat $L/blockmask_$S.txt; done
FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 100 compute-sanitizer --tool racecheck --error-exitcode 86 dist/bin/flexjit_tests "gpu: masks sharing a kernel run with their own param defaults and data" > $L/racecheck.log 2>&1
echo "racecheck blockmask rc=$? $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' $L/racecheck.log | tail -1) $(( $(date +%s)-s )) s"
FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 100 compute-sanitizer --tool memcheck --error-exitcode 86 dist/bin/flexjit_tests "[gpu][varlen]","gpu: masks sharing a kernel run with their own param defaults and data" > $L/memcheck.log 2>&1
echo "memcheck varlen + blockmask rc=$? $(grep -E 'ERROR SUMMARY' $L/memcheck.log | tail -1) $(( $(date +%s)-s )) s"
timeout 90 dist/bin/flexjit_varlen_bench --json $L/varlen.jsonl > $L/varlen.txt 2>&1; echo "varlen bench rc=$? $(( $(date +%s)-s )) s"; cat $L/varlen.txt
tar czf $OUT/logs.tgz -C $OUT logs
