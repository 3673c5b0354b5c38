#!/bin/bash
# Session 22, device call 2 (stops by ~350 s): after run22a's findings (sparsity formula, NaN
# rows in the reference, per-head block masks in the fuzzer, the lse skip): the Python GPU
# tests, every other [gpu] test (the ABI change touched every kernel), the mod fuzzer's
# reports, the attention fuzzer, a longer soak, the held-stream cache test under eager module
# loading, memcheck over the data-indexed load test.
cd "$(dirname "$0")/../../.." && . bench/results/device_env.sh
T=dist/bin/flexjit_tests
(cd python && timeout 90 python3 -m pytest -q -rs -p no:cacheprovider tests/test_gpu.py > $L/python.log 2>&1); t "python GPU tests" $?; grep -E "^FAILED|Error:" $L/python.log | head -10; tail -2 $L/python.log
timeout 110 $T "[gpu]~[fuzz]~[soak]~[cache-limit]~[sanitize]~[timing]" > $L/gpu_all.log 2>&1; t "[gpu] suite" $?; grep -E "FAILED" -A6 $L/gpu_all.log | head -40; tail -3 $L/gpu_all.log
left 175 "mod fuzz" && { FLEXJIT_FUZZ_MODS=600 timeout 40 $T "gpu fuzz: 2000 random mods agree with the interpreter" > $L/mod_fuzz.log 2>&1; t "mod fuzz (600)" $?; grep -E "gpu fuzz seed|FAILED" -A4 $L/mod_fuzz.log | head -12; }
left 200 "attention fuzz" && { FLEXJIT_FUZZ_SECONDS=30 timeout 55 $T "[gpu][fuzz][attention-fuzz]" > $L/fuzz.log 2>&1; t "attention fuzz" $?; grep -E "attention fuzz:|FAILED" -A3 $L/fuzz.log | grep -v "^flexjit warning" | head -24; }
left 250 "soak" && { FLEXJIT_SOAK_CALLS=2000 timeout 40 env -u CUDA_CACHE_DISABLE $T "[gpu][soak]" > $L/soak.log 2>&1; t "soak 3000" $?; grep -E "soak|FAILED" -A3 $L/soak.log | grep -v "^flexjit warning" | head -20; }
left 280 "cache-limit eager" && { CUDA_MODULE_LOADING=EAGER timeout 45 $T "gpu: an evicted kernel's module stays loaded until its queued launch has run" > $L/cache_eager.log 2>&1; t "held-stream cache test, eager loading" $?; grep -E "FAILED|seconds" -A3 $L/cache_eager.log | head; tail -2 $L/cache_eager.log; }
left 300 "memcheck" && { timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 $T "gpu: a data-indexed load outside its buffer is a device error" > $L/memcheck.log 2>&1; t "memcheck data-indexed" $?; tail -4 $L/memcheck.log; }
tar czf $OUT/logs.tgz -C $OUT logs; rm -rf $OUT/logs
