#!/bin/bash
# Session 20, device call: issue 16's GPU checks first (the C API's C program and [capi] tests,
# the CLI's run, the Python package's tests against torch's flex_attention on the same tensors,
# the Python bench on identical inputs), then issue 13's block masks with the warp-cooperative
# rank-1 scan (tests; S = 65536 times), the varlen bench, the paged prefill bench (HND pools).
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
export FLEXJIT_LIBRARY=$PWD/dist/lib/libflexjit.so
L=$OUT/logs; mkdir -p $L
s=$(date +%s)
t() { echo "$1 rc=$2 $(( $(date +%s)-s )) s"; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 40 dist/bin/flexjit_capi_c_test > $L/capi_c.log 2>&1; t "C API test" $?; tail -3 $L/capi_c.log
timeout 40 dist/bin/flexjit_tests "[capi]" > $L/capi_tests.log 2>&1; t "[capi]" $?; tail -2 $L/capi_tests.log
timeout 40 dist/bin/flexjit run '(kv_idx <= q_idx)' --batch 4 --heads 16 --q-len 8192 --backward > $L/cli_run.log 2>&1; t "cli run" $?; tail -6 $L/cli_run.log
python3 -c "import pytest" 2>/dev/null || export PYTHONPATH=$PWD/gpu_carry/pylib
(cd python && timeout 150 python3 -m pytest -v -rs -p no:cacheprovider tests > $L/python.log 2>&1); t "python tests" $?; grep -E "passed|failed|FAILED|Error" $L/python.log | tail -12
timeout 40 dist/bin/flexjit_tests "[gpu][blockmask]~[timing],[varlen]" > $L/blockmask_tests.log 2>&1; t "blockmask+varlen tests" $?; tail -n 2 $L/blockmask_tests.log
timeout 25 dist/bin/flexjit_blockmask_bench --gpu 65536 11 > $L/blockmask_65536.txt 2>&1; t "blockmask bench" $?; cat $L/blockmask_65536.txt
PYTHONPATH=$PWD/python timeout 180 python3 bench/python_bench.py --quick --json $L/python_bench.jsonl > $L/python_bench.txt 2>&1; t "python bench" $?; tail -25 $L/python_bench.txt
timeout 30 dist/bin/flexjit_varlen_bench --json $L/varlen.jsonl > $L/varlen.txt 2>&1; t "varlen bench" $?; grep -v warning $L/varlen.txt
timeout 70 dist/bin/flexjit_decode_bench --prefill --json $L/prefill.jsonl > $L/prefill.txt 2>&1; t "prefill bench" $?; grep -v warning $L/prefill.txt
tar czf $OUT/logs.tgz -C $OUT logs; rm -rf $OUT/logs
