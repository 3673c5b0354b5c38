#!/bin/bash
# session 19, call b: prefill through a paged KV cache (the sm_90a warp-specialized forward, both
# schedules, reads options.kv_cache): the new [cache][prefill] tests, the KV cache / decode /
# forward regressions, compute-sanitizer memcheck and racecheck over the small prefill shapes, and
# the paged prefill timing (flexjit_decode_bench --prefill: contiguous vs page 16 vs page 128,
# B 4 Hq 32 Hkv 8 q_len = kv_len 4096 D 128 bf16 causal).
# Carry: gpu_carry/dist.tgz made from this tree on the build machine:
#   cmake --build build && rm -rf dist && cmake --install build --prefix dist --strip &&
#   mkdir -p gpu_carry && tar czf gpu_carry/dist.tgz dist
# Run from anywhere (OUT set by the runner; ./gpu_out otherwise); logs in $OUT/logs.tgz.
# FULL=1 adds the whole [gpu][attention]~[backward] suite (over 200 s alone: past the budget).
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
OUT=${OUT:-$PWD/gpu_out}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee $L/gpu.txt
s=$(date +%s)
step() { # name timeout args...: one test run under timeout, its tail and failures
  local name=$1 t=$2; shift 2
  timeout $t dist/bin/flexjit_tests "$@" > $L/$name.log 2>&1
  echo "$name rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/$name.log
  grep -B5 -A25 "FAILED" $L/$name.log | head -60
}
step prefill_tests 150 "[cache][prefill]"
step cache_tests 60 "[cache]~[prefill]"
step decode_tests 60 "[decode]~[cache]"
# The forward's regressions without the 200+ s seed-003 sweep (FULL=1 runs everything).
step gpu_attention 120 "[gpu][attention]~[backward]~[decode]~[cache]" \
  "~gpu: every seed-003 variant matches the float64 reference"
for tool in memcheck racecheck; do
  FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 90 compute-sanitizer --tool $tool --error-exitcode 86 \
    dist/bin/flexjit_tests "[prefill][small]","gpu: bad cache lengths and page indices in prefill are device errors" \
    > $L/$tool.log 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|All tests|test cases' $L/$tool.log | tail -2 | tr '\n' ' ') $(( $(date +%s)-s )) s"
done
timeout 90 dist/bin/flexjit_decode_bench --prefill --reps 20 --json $L/prefill.jsonl > $L/prefill.txt 2>&1
echo "prefill bench rc=$? $(( $(date +%s)-s )) s"; cat $L/prefill.txt
if [ "${FULL:-0}" = 1 ]; then
  step gpu_attention_full 500 "[gpu][attention]~[backward]"
fi
tar czf $OUT/logs.tgz -C $OUT logs
