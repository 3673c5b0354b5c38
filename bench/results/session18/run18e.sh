#!/bin/bash
# session 18, call 5: merge_attention and offset_mod end to end (a q shard x 4 kv shards of a
# causal sequence, merged), the KV cache tests, memcheck over the merge tests
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
s=$(date +%s)
timeout 80 dist/bin/flexjit_tests "[merge]","[offsets]","[cache]" > $L/tests.log 2>&1; echo "merge + offsets + cache tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/tests.log
grep -B5 -A25 "FAILED" $L/tests.log | head -60
FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 60 compute-sanitizer --tool memcheck --error-exitcode 86 dist/bin/flexjit_tests "[merge]" > $L/memcheck.log 2>&1
echo "memcheck merge rc=$? $(grep -E 'ERROR SUMMARY' $L/memcheck.log | tail -1) $(( $(date +%s)-s )) s"
tar czf $OUT/logs.tgz -C $OUT logs
