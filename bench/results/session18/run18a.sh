#!/bin/bash
# session 18, call 1: the KV cache (paged decode, per-sequence lengths, append, device errors,
# the CUDA graph of 100 decode steps): its tests, memcheck on them, the decode tests and
# bench (contiguous and paged) beside torch's decoding
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee $L/gpu.txt
s=$(date +%s)
timeout 150 dist/bin/flexjit_tests "[cache]" > $L/cache_tests.log 2>&1; echo "cache tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/cache_tests.log
grep -B5 -A25 "FAILED" $L/cache_tests.log | head -120
timeout 150 dist/bin/flexjit_tests "[decode]~[cache]" > $L/decode_tests.log 2>&1; echo "decode tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/decode_tests.log
grep -B5 -A25 "FAILED" $L/decode_tests.log | head -60
FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 150 compute-sanitizer --tool memcheck --error-exitcode 86 dist/bin/flexjit_tests "[cache]" > $L/memcheck.log 2>&1
echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' $L/memcheck.log | tail -1) $(( $(date +%s)-s )) s"
timeout 120 dist/bin/flexjit_decode_bench --json $L/decode.jsonl > $L/decode.txt 2>&1; echo "decode bench rc=$? $(( $(date +%s)-s )) s"; cat $L/decode.txt
timeout 120 python3 bench/torch_decode.py --json $L/torch_decode.jsonl > $L/torch_decode.txt 2>&1; echo "torch decode rc=$? $(( $(date +%s)-s )) s"; grep -v Warning $L/torch_decode.txt | tail -20
tar czf $OUT/logs.tgz -C $OUT logs
