#!/bin/bash
# session 14, call 1: [gpu] attention tests, then the schedule A/B bench
cd "$(dirname "$0")/.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader | tee $L/gpu.txt
s=$(date +%s)
timeout 330 dist/bin/flexjit_tests "[gpu][attention]" > $L/gpu_attention.log 2>&1; echo "gpu attention tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/gpu_attention.log
grep -B3 -A12 "FAILED" $L/gpu_attention.log | head -60
for S in 1024 2048 4096; do for sch in one persistent; do
  dist/bin/flexjit_attention_bench --case noop,causal,document --ways sparse --S $S --schedule $sch --reps 30 --json $L/bench_${S}_${sch}.jsonl > $L/bench_${S}_${sch}.txt 2>&1
  echo "== S=$S $sch rc=$?"; awk 'NR>1 && NF>8 && $1 ~ /16$/ {print $1, $2, $3, $5, $9}' $L/bench_${S}_${sch}.txt
done; done
echo "total $(( $(date +%s)-s )) s"
tar czf $OUT/logs.tgz -C $OUT logs
