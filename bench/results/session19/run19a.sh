#!/bin/bash
# Written in session 18 for the next device session (not run yet): attention_forward_varlen's
# GPU test and bench beside torch's, memcheck over the varlen test, the refactored append and
# merge paths (mods_free_kernel) again. Build and carry as bench/results/session18/run18e.sh.
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
s=$(date +%s)
timeout 150 dist/bin/flexjit_tests "[varlen]","[merge]","[cache]" > $L/tests.log 2>&1; echo "varlen + merge + cache tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/tests.log
grep -B5 -A25 "FAILED" $L/tests.log | head -80
FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 100 compute-sanitizer --tool memcheck --error-exitcode 86 dist/bin/flexjit_tests "[gpu][varlen]" > $L/memcheck.log 2>&1
echo "memcheck varlen rc=$? $(grep -E 'ERROR SUMMARY' $L/memcheck.log | tail -1) $(( $(date +%s)-s )) s"
timeout 120 dist/bin/flexjit_varlen_bench --json $L/varlen.jsonl > $L/varlen.txt 2>&1; echo "varlen bench rc=$? $(( $(date +%s)-s )) s"; cat $L/varlen.txt
timeout 120 python3 bench/torch_varlen.py --json $L/torch_varlen.jsonl > $L/torch_varlen.txt 2>&1; echo "torch varlen rc=$? $(( $(date +%s)-s )) s"; grep -v Warning $L/torch_varlen.txt | tail -3
tar czf $OUT/logs.tgz -C $OUT logs
