#!/bin/bash
# Session 20, first call: session 19's unrun checks -- the GPU block-mask builder with the rank-1
# load scan (tests, S = 65536 / 32768 times), the varlen bench, then the forward regression suite
# [gpu][attention]~[backward] with the kernels' spill warnings listed.
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
s=$(date +%s)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 60 dist/bin/flexjit_tests "[gpu][blockmask]~[timing]" > $L/blockmask_tests.log 2>&1; echo "blockmask tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/blockmask_tests.log
for S in 65536 32768; do timeout 40 dist/bin/flexjit_blockmask_bench --gpu $S 11 > $L/blockmask_$S.txt 2>&1; echo "blockmask bench S=$S rc=$?"; cat $L/blockmask_$S.txt; done
timeout 60 dist/bin/flexjit_varlen_bench --json $L/varlen.jsonl > $L/varlen.txt 2>&1; echo "varlen bench rc=$? $(( $(date +%s)-s )) s"; grep -v warning $L/varlen.txt
timeout 330 dist/bin/flexjit_tests "[gpu][attention]~[backward]" -d yes > $L/attention_suite.log 2>&1; echo "attention suite rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/attention_suite.log
grep -i "spill" $L/*.log | sort | uniq -c | head -20
grep -B2 -i "spill" $L/attention_suite.log | grep -E "^[0-9.]+ s:" | head
tar czf $OUT/logs.tgz -C $OUT logs
