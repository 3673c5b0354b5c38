#!/bin/bash
# Session 21, device call 2: after e1ff1f4 (the cooperative scan out of classify.cu): block-mask
# and varlen tests, the Python package's GPU tests, the memory-limit tests, the S = 65536 mask
# times, then the Python bench and the attention fuzzer as time allows (stops by ~400 s).
cd "$(dirname "$0")/../../.." && . bench/results/device_env.sh
timeout 60 dist/bin/flexjit_tests "[gpu][blockmask]~[timing],[varlen]" > $L/blockmask_tests.log 2>&1; t "blockmask+varlen tests" $?; tail -n 2 $L/blockmask_tests.log
(cd python && timeout 120 python3 -m pytest -q -rs -p no:cacheprovider tests/test_gpu.py > $L/python.log 2>&1); t "python GPU tests" $?; tail -4 $L/python.log
timeout 60 dist/bin/flexjit_tests "[cache-limit]" > $L/cache_limit.log 2>&1; t "[cache-limit]" $?; grep -E -A12 "FAILED" $L/cache_limit.log | head -40; tail -2 $L/cache_limit.log
timeout 25 dist/bin/flexjit_blockmask_bench --gpu 65536 11 > $L/blockmask_65536.txt 2>&1; t "blockmask bench" $?; cat $L/blockmask_65536.txt
left 260 "python bench" && { PYTHONPATH=$PWD/python timeout 100 python3 bench/python_bench.py --quick --json $L/python_bench.jsonl > $L/python_bench.txt 2>&1; t "python bench" $?; grep -v "^{" $L/python_bench.txt | tail -25; }
left 330 "fuzz" && { FLEXJIT_FUZZ_SECONDS=30 timeout 60 dist/bin/flexjit_tests "[gpu][fuzz][attention-fuzz]" > $L/fuzz.log 2>&1; t "attention fuzz" $?; grep -E "attention fuzz:|FAILED|passed|failed" $L/fuzz.log | head -12; }
tar czf $OUT/logs.tgz -C $OUT logs; rm -rf $OUT/logs
