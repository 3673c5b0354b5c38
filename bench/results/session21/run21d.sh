#!/bin/bash
# Session 21, last device call (373 s of device time left): after e1ff1f4, the checks that matter
# most -- the GPU block-mask and varlen tests (the classify fix), the Python package's GPU tests,
# the memory-limit tests, the S = 65536 mask times.
cd "$(dirname "$0")/../../.." && . bench/results/device_env.sh
timeout 50 dist/bin/flexjit_tests "[gpu][blockmask]~[timing],[varlen]" > $L/blockmask_tests.log 2>&1; t "blockmask+varlen tests" $?; tail -n 2 $L/blockmask_tests.log
(cd python && timeout 90 python3 -m pytest -q -rs -p no:cacheprovider tests/test_gpu.py > $L/python.log 2>&1); t "python GPU tests" $?; tail -4 $L/python.log
timeout 45 dist/bin/flexjit_tests "[cache-limit]" > $L/cache_limit.log 2>&1; t "[cache-limit]" $?; grep -E -A12 "FAILED" $L/cache_limit.log | head -40; tail -2 $L/cache_limit.log
timeout 20 dist/bin/flexjit_blockmask_bench --gpu 65536 11 > $L/blockmask_65536.txt 2>&1; t "blockmask bench" $?; cat $L/blockmask_65536.txt
tar czf $OUT/logs.tgz -C $OUT logs; rm -rf $OUT/logs
