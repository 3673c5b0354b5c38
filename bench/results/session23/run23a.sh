#!/bin/bash
# Prepared in session 22 for the next session's first device call (~560 s): everything session
# 22 changed after its only run (run22a) -- the Python GPU tests (torch's sparsity formula, NaN
# and inf inputs), every [gpu] test (the FlexjitModArgs change touched every kernel; run22a ran
# only the block-mask, varlen, jagged and data-indexed ones), the mod fuzzer's reports, the
# attention fuzzer and the soak after their fixes, the held-stream cache test under eager module
# loading (the lazy-loading diagnosis), then compute-sanitizer memcheck over the sanitize rows.
cd "$(dirname "$0")/../../.." && . bench/results/device_env.sh
T=dist/bin/flexjit_tests
(cd python && timeout 80 python3 -m pytest -q -rs -p no:cacheprovider tests/test_gpu.py > $L/python.log 2>&1); t "python GPU tests" $?; grep -E "^FAILED|Error:|assert" $L/python.log | head -10; tail -2 $L/python.log
timeout 150 $T "[gpu]~[fuzz]~[soak]~[cache-limit]~[sanitize]~[timing]" > $L/gpu_all.log 2>&1; t "[gpu] suite" $?; grep -E "FAILED" -A6 $L/gpu_all.log | head -40; tail -3 $L/gpu_all.log
left 260 "mod fuzz" && { FLEXJIT_FUZZ_MODS=1000 timeout 45 $T "gpu fuzz: 2000 random mods agree with the interpreter" > $L/mod_fuzz.log 2>&1; t "mod fuzz (1000)" $?; grep -E "gpu fuzz seed|FAILED" -A4 $L/mod_fuzz.log | head -12; }
left 300 "attention fuzz" && { FLEXJIT_FUZZ_SECONDS=60 timeout 90 $T "[gpu][fuzz][attention-fuzz]" > $L/fuzz.log 2>&1; t "attention fuzz" $?; grep -E "attention fuzz:|FAILED" -A3 $L/fuzz.log | grep -v "^flexjit warning" | head -30; }
left 390 "soak" && { FLEXJIT_SOAK_CALLS=4000 timeout 80 env -u CUDA_CACHE_DISABLE $T "[gpu][soak]" > $L/soak.log 2>&1; t "soak 4000" $?; grep -E "soak|FAILED" -A3 $L/soak.log | grep -v "^flexjit warning" | head -20; }
left 470 "cache-limit eager" && { CUDA_MODULE_LOADING=EAGER timeout 40 $T "[cache-limit]" > $L/cache_eager.log 2>&1; t "[cache-limit], eager loading" $?; grep -E "FAILED|seconds" -A3 $L/cache_eager.log | head; tail -2 $L/cache_eager.log; }
left 500 "memcheck" && { SANITIZE_TOOLS=memcheck SANITIZE_ARCHS=device timeout 60 bash scripts/sanitize.sh > $L/sanitize.log 2>&1; t "sanitize memcheck (device arch, capped at 60 s)" $?; tail -6 $L/sanitize.log; }
tar czf $OUT/logs.tgz -C $OUT logs; rm -rf $OUT/logs
