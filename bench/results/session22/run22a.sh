#!/bin/bash
# Session 22, device call 1 (stops by ~560 s): the classify fix (e1ff1f4) and the data-indexed
# load reports (a7a22cd) first, then the Python package's GPU tests and bench (issue 16), the
# memory-limit tests, the S = 65536 mask times, the mod fuzzer's reports on the GPU, the
# attention fuzzer with paged and varlen, a short soak.
cd "$(dirname "$0")/../../.." && . bench/results/device_env.sh
T=dist/bin/flexjit_tests
timeout 60 $T "[gpu][blockmask]~[timing],[varlen],gpu: jagged sequences packed with offsets,gpu: a data-indexed load outside its buffer is a device error" > $L/blockmask_tests.log 2>&1; t "blockmask+varlen+data-indexed tests" $?; grep -E -A8 "FAILED" $L/blockmask_tests.log | head -30; tail -n 2 $L/blockmask_tests.log
(cd python && timeout 120 python3 -m pytest -q -rs -p no:cacheprovider tests/test_gpu.py > $L/python.log 2>&1); t "python GPU tests" $?; grep -E "FAILED|Error" $L/python.log | head -10; tail -3 $L/python.log
left 330 "python bench" && { PYTHONPATH=$PWD/python timeout 110 python3 bench/python_bench.py --quick --json $L/python_bench.jsonl > $L/python_bench.txt 2>&1; t "python bench" $?; grep -v "^{" $L/python_bench.txt | tail -22; }
left 390 "cache-limit" && { timeout 45 $T "[cache-limit]" > $L/cache_limit.log 2>&1; t "[cache-limit]" $?; grep -E -A12 "FAILED" $L/cache_limit.log | head -30; tail -2 $L/cache_limit.log; }
left 420 "blockmask bench" && { timeout 20 dist/bin/flexjit_blockmask_bench --gpu 65536 11 > $L/blockmask_65536.txt 2>&1; t "blockmask bench" $?; cat $L/blockmask_65536.txt | tail -12; }
left 450 "mod fuzz" && { FLEXJIT_FUZZ_MODS=600 timeout 40 $T "gpu fuzz: 2000 random mods agree with the interpreter" > $L/mod_fuzz.log 2>&1; t "mod fuzz (600)" $?; grep -E "gpu fuzz seed|FAILED" -A3 $L/mod_fuzz.log | head -12; }
left 480 "attention fuzz" && { FLEXJIT_FUZZ_SECONDS=40 timeout 70 $T "[gpu][fuzz][attention-fuzz]" > $L/fuzz.log 2>&1; t "attention fuzz" $?; grep -E "attention fuzz:|FAILED|passed|failed" -A2 $L/fuzz.log | head -16; }
left 530 "soak" && { FLEXJIT_SOAK_CALLS=1500 timeout 40 env -u CUDA_CACHE_DISABLE $T "[gpu][soak]" > $L/soak.log 2>&1; t "soak 1500" $?; grep -E "soak|FAILED|passed|failed" -A2 $L/soak.log | head -12; }
tar czf $OUT/logs.tgz -C $OUT logs; rm -rf $OUT/logs
