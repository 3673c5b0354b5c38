#!/bin/bash
# Session 22, last device call (~420 s of device time left, stops by ~200 s): the Python GPU
# tests (sparsity formula, NaN and inf inputs), the mod fuzzer's reports, the attention fuzzer
# and a short soak after run22a's fixes, the held-stream cache test under eager module loading.
cd "$(dirname "$0")/../../.." && . bench/results/device_env.sh
T=dist/bin/flexjit_tests
(cd python && timeout 70 python3 -m pytest -q -rs -p no:cacheprovider tests/test_gpu.py > $L/python.log 2>&1); t "python GPU tests" $?; grep -E "^FAILED|Error:|assert" $L/python.log | head -10; tail -2 $L/python.log
FLEXJIT_FUZZ_MODS=600 timeout 35 $T "gpu fuzz: 2000 random mods agree with the interpreter" > $L/mod_fuzz.log 2>&1; t "mod fuzz (600)" $?; grep -E "gpu fuzz seed|FAILED" -A4 $L/mod_fuzz.log | head -12
left 120 "attention fuzz" && { FLEXJIT_FUZZ_SECONDS=25 timeout 45 $T "[gpu][fuzz][attention-fuzz]" > $L/fuzz.log 2>&1; t "attention fuzz" $?; grep -E "attention fuzz:|FAILED" -A3 $L/fuzz.log | grep -v "^flexjit warning" | head -24; }
left 160 "soak" && { FLEXJIT_SOAK_CALLS=1500 timeout 35 env -u CUDA_CACHE_DISABLE $T "[gpu][soak]" > $L/soak.log 2>&1; t "soak 1500" $?; grep -E "soak|FAILED" -A3 $L/soak.log | grep -v "^flexjit warning" | head -20; }
left 185 "cache-limit eager" && { CUDA_MODULE_LOADING=EAGER timeout 40 $T "gpu: an evicted kernel's module stays loaded until its queued launch has run" > $L/cache_eager.log 2>&1; t "held-stream cache test, eager loading" $?; grep -E "FAILED|seconds" -A3 $L/cache_eager.log | head; tail -2 $L/cache_eager.log; }
tar czf $OUT/logs.tgz -C $OUT logs; rm -rf $OUT/logs
