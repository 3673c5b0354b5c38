#!/bin/bash
# session 15, call 3: the split-KV decode kernel: its tests, memcheck + racecheck on them, the
# decode bench beside torch's decoding (bench/torch_decode.py)
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
s=$(date +%s)
timeout 150 dist/bin/flexjit_tests "[decode]" > $L/decode_tests.log 2>&1; echo "decode tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/decode_tests.log
grep -B5 -A25 "FAILED" $L/decode_tests.log | head -80
timeout 100 dist/bin/flexjit_decode_bench --json $L/decode.jsonl > $L/decode.txt 2>&1; echo "decode bench rc=$? $(( $(date +%s)-s )) s"; cat $L/decode.txt
timeout 150 python3 bench/torch_decode.py --json $L/torch_decode.jsonl > $L/torch_decode.txt 2>&1; echo "torch decode rc=$? $(( $(date +%s)-s )) s"; grep -v Warning $L/torch_decode.txt | tail -20
for tool in memcheck racecheck; do
  FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 120 compute-sanitizer --tool $tool --error-exitcode 86 dist/bin/flexjit_tests "gpu: split-KV decoding on every head dim" -c "bf16 d128" > $L/$tool.log 2>&1
  echo "$tool rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $L/$tool.log | tail -1) $(( $(date +%s)-s )) s"
done
tar czf $OUT/logs.tgz -C $OUT logs
