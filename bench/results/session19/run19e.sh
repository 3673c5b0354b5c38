#!/bin/bash
# Session 19, last call: the GPU block-mask builder with the rank-1 load scan as a tight loop
# (document masks), its tests, its times at S = 65536 and 32768, the varlen bench.
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
s=$(date +%s)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 60 dist/bin/flexjit_tests "[gpu][blockmask]~[timing]" > $L/blockmask_tests.log 2>&1; echo "blockmask tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/blockmask_tests.log
for S in 65536 32768; do timeout 40 dist/bin/flexjit_blockmask_bench --gpu $S 11 > $L/blockmask_$S.txt 2>&1; echo "blockmask bench S=$S rc=$?"; cat $L/blockmask_$S.txt; done
timeout 60 dist/bin/flexjit_varlen_bench --json $L/varlen.jsonl > $L/varlen.txt 2>&1; echo "varlen bench rc=$? $(( $(date +%s)-s )) s"; grep -v warning $L/varlen.txt
tar czf $OUT/logs.tgz -C $OUT logs
