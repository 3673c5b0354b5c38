#!/bin/bash
# Session 19 on the H200: the GPU block-mask builder v2 (interval program + device compaction,
# device-only arrays) and attention_forward_varlen (first GPU run). Carry gpu_carry/dist.tgz
# (cmake --install build --prefix dist --strip; tar czf gpu_carry/dist.tgz dist).
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
s=$(date +%s)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 dist/bin/flexjit_tests "[gpu][blockmask]~[timing]" > $L/blockmask_tests.log 2>&1; echo "blockmask tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/blockmask_tests.log
grep -B5 -A25 "FAILED" $L/blockmask_tests.log | head -60
for S in 32768 65536; do timeout 60 dist/bin/flexjit_blockmask_bench --gpu $S 11 > $L/blockmask_$S.txt 2>&1; echo "blockmask bench S=$S rc=$?"; cat $L/blockmask_$S.txt; done
timeout 120 dist/bin/flexjit_tests "[varlen]","[merge]","[cache]" > $L/tests.log 2>&1; echo "varlen + merge + cache tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/tests.log
grep -B5 -A25 "FAILED" $L/tests.log | head -60
FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 90 compute-sanitizer --tool memcheck --error-exitcode 86 dist/bin/flexjit_tests "[gpu][varlen]","gpu: a block mask built and kept on the GPU equals the CPU builder's" > $L/memcheck.log 2>&1
echo "memcheck varlen + blockmask rc=$? $(grep -E 'ERROR SUMMARY' $L/memcheck.log | tail -1) $(( $(date +%s)-s )) s"
timeout 90 dist/bin/flexjit_varlen_bench --json $L/varlen.jsonl > $L/varlen.txt 2>&1; echo "varlen bench rc=$? $(( $(date +%s)-s )) s"; cat $L/varlen.txt
timeout 100 python3 bench/torch_varlen.py --json $L/torch_varlen.jsonl > $L/torch_varlen.txt 2>&1; echo "torch varlen rc=$? $(( $(date +%s)-s )) s"; grep -v Warning $L/torch_varlen.txt | tail -4
tar czf $OUT/logs.tgz -C $OUT logs
