#!/bin/bash
# session 18, call 4: the decode grid again beside torch's, torch compiled afresh per shape
# (run18c's torch hit dynamo's recompile limit after 8 shapes and ran the last 4 eagerly)
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee $L/gpu.txt
s=$(date +%s)
timeout 150 dist/bin/flexjit_decode_bench --grid --json $L/decode_grid.jsonl > $L/decode_grid.txt 2>&1; echo "decode grid rc=$? $(( $(date +%s)-s )) s"
timeout 200 python3 bench/torch_decode.py --grid --json $L/torch_grid.jsonl > $L/torch_grid.txt 2>&1; echo "torch grid rc=$? $(( $(date +%s)-s )) s"; grep -E "copy|torch_flex|sdpa" $L/torch_grid.txt
tar czf $OUT/logs.tgz -C $OUT logs
