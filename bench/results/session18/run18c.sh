#!/bin/bash
# session 18, call 3: merge_attention's tests (+ memcheck), the KV cache tests again, then the
# decode grid (issue 13 item 7: B 1/8/32/64 x kv_len 2048/8192/32768, contiguous and paged)
# and the 6 decode shapes, each beside torch's decoding and the copy bandwidth
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee $L/gpu.txt
s=$(date +%s)
timeout 100 dist/bin/flexjit_tests "[merge]","[cache]" > $L/merge_cache_tests.log 2>&1; echo "merge + cache tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/merge_cache_tests.log
grep -B5 -A25 "FAILED" $L/merge_cache_tests.log | head -80
FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 100 compute-sanitizer --tool memcheck --error-exitcode 86 dist/bin/flexjit_tests "[merge]" > $L/memcheck_merge.log 2>&1
echo "memcheck merge rc=$? $(grep -E 'ERROR SUMMARY' $L/memcheck_merge.log | tail -1) $(( $(date +%s)-s )) s"
timeout 150 dist/bin/flexjit_decode_bench --grid --json $L/decode_grid.jsonl > $L/decode_grid.txt 2>&1; echo "decode grid rc=$? $(( $(date +%s)-s )) s"; cat $L/decode_grid.txt
timeout 150 python3 bench/torch_decode.py --grid --json $L/torch_grid.jsonl > $L/torch_grid.txt 2>&1; echo "torch grid rc=$? $(( $(date +%s)-s )) s"; grep -v Warning $L/torch_grid.txt | tail -26
timeout 100 dist/bin/flexjit_decode_bench --json $L/decode.jsonl > $L/decode.txt 2>&1; echo "decode bench rc=$? $(( $(date +%s)-s )) s"; cat $L/decode.txt
timeout 80 python3 bench/torch_decode.py --json $L/torch_decode.jsonl > $L/torch_decode.txt 2>&1; echo "torch decode rc=$? $(( $(date +%s)-s )) s"; grep -v Warning $L/torch_decode.txt | tail -14
tar czf $OUT/logs.tgz -C $OUT logs
