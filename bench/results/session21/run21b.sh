#!/bin/bash
# Session 21, device call (replaces run21a): everything on one library, the working tree's
# (gpu_carry/dist.tgz from scripts/gpu_carry.sh). Issue 16's GPU checks (C API test, [capi],
# `flexjit run`, the Python package's tests against torch), issue 15's memory-limit tests
# (plain and under memcheck), block masks (tests, S = 65536 times), the Python bench, the
# attention fuzzer for 60 s (calibration), then the varlen and paged prefill benches.
# Steps are skipped once their start would pass the call's limit.
cd "$(dirname "$0")/../../.." && . bench/results/device_env.sh
timeout 40 dist/bin/flexjit_capi_c_test > $L/capi_c.log 2>&1; t "C API test" $?; tail -3 $L/capi_c.log
timeout 40 dist/bin/flexjit_tests "[capi]" > $L/capi_tests.log 2>&1; t "[capi]" $?; tail -2 $L/capi_tests.log
timeout 40 dist/bin/flexjit run '(kv_idx <= q_idx)' --batch 4 --heads 16 --q-len 8192 --backward > $L/cli_run.log 2>&1; t "cli run" $?; tail -6 $L/cli_run.log
timeout 60 dist/bin/flexjit_tests "[cache-limit]" > $L/cache_limit.log 2>&1; t "[cache-limit]" $?; tail -3 $L/cache_limit.log
(export FLEXJIT_CACHE_DIR=$(mktemp -d); timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 dist/bin/flexjit_tests "[cache-limit]" > $L/cache_limit_memcheck.log 2>&1; t "memcheck [cache-limit]" $?; grep -E "ERROR SUMMARY|passed|failed" $L/cache_limit_memcheck.log | tail -3)
(cd python && timeout 150 python3 -m pytest -v -rs -p no:cacheprovider tests > $L/python.log 2>&1); t "python tests" $?; grep -E "passed|failed|FAILED|Error" $L/python.log | tail -12
left 470 "blockmask tests" && { timeout 40 dist/bin/flexjit_tests "[gpu][blockmask]~[timing],[varlen]" > $L/blockmask_tests.log 2>&1; t "blockmask+varlen tests" $?; tail -n 2 $L/blockmask_tests.log; }
left 500 "blockmask bench" && { timeout 25 dist/bin/flexjit_blockmask_bench --gpu 65536 11 > $L/blockmask_65536.txt 2>&1; t "blockmask bench" $?; cat $L/blockmask_65536.txt; }
left 420 "python bench" && { PYTHONPATH=$PWD/python timeout 110 python3 bench/python_bench.py --quick --json $L/python_bench.jsonl > $L/python_bench.txt 2>&1; t "python bench" $?; tail -25 $L/python_bench.txt; }
left 480 "fuzz" && { FLEXJIT_FUZZ_SECONDS=50 timeout 80 dist/bin/flexjit_tests "[gpu][fuzz][attention-fuzz]" > $L/fuzz.log 2>&1; t "attention fuzz" $?; grep -E "attention fuzz:|FAILED|^call |passed|failed" $L/fuzz.log | head -20; }
left 545 "varlen bench" && { timeout 25 dist/bin/flexjit_varlen_bench --json $L/varlen.jsonl > $L/varlen.txt 2>&1; t "varlen bench" $?; grep -v warning $L/varlen.txt; }
left 530 "prefill bench" && { timeout $(( 585 - ($(date +%s)-s) )) dist/bin/flexjit_decode_bench --prefill --json $L/prefill.jsonl > $L/prefill.txt 2>&1; t "prefill bench" $?; grep -v warning $L/prefill.txt; }
tar czf $OUT/logs.tgz -C $OUT logs; rm -rf $OUT/logs
