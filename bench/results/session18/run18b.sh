#!/bin/bash
# session 18, call 2: after the ragged tile's mask fix: the KV cache tests, memcheck and
# racecheck on them, the decode tests, the forward's tests, the decode bench (contiguous and
# paged) beside torch's decoding
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee $L/gpu.txt
s=$(date +%s)
timeout 100 dist/bin/flexjit_tests "[cache]" > $L/cache_tests.log 2>&1; echo "cache tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/cache_tests.log
grep -B5 -A25 "FAILED" $L/cache_tests.log | head -80
for tool in memcheck racecheck; do
  FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 120 compute-sanitizer --tool $tool --error-exitcode 86 dist/bin/flexjit_tests "[cache]" > $L/$tool.log 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $L/$tool.log | tail -1) $(( $(date +%s)-s )) s"
done
timeout 100 dist/bin/flexjit_decode_bench --json $L/decode.jsonl > $L/decode.txt 2>&1; echo "decode bench rc=$? $(( $(date +%s)-s )) s"; cat $L/decode.txt
timeout 100 dist/bin/flexjit_tests "[decode]~[cache]" > $L/decode_tests.log 2>&1; echo "decode tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/decode_tests.log
timeout 200 dist/bin/flexjit_tests "[gpu][attention]~[backward]~[decode]" > $L/gpu_attention.log 2>&1; echo "gpu attention tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/gpu_attention.log
grep -B3 -A12 "FAILED" $L/gpu_attention.log | head -40
tar czf $OUT/logs.tgz -C $OUT logs
