#!/bin/bash
# session 14, call 2: schedule A/B at long rows, backward tests, sm_80 forward, sanitizers
cd "$(dirname "$0")/.." && [ -d dist ] || tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
s=$(date +%s)
for S in 8192 32768; do for sch in one persistent; do
  cases=noop,causal,document; [ $S = 32768 ] && cases=causal,document
  dist/bin/flexjit_attention_bench --case $cases --ways sparse --S $S --schedule $sch --reps 20 --json $L/bench_${S}_${sch}.jsonl > $L/bench_${S}_${sch}.txt 2>&1
  echo "== S=$S $sch rc=$?"; awk 'NR>1 && NF>8 && $1 ~ /16$/ {print $1, $2, $3, $5, $9}' $L/bench_${S}_${sch}.txt
done; done
echo "bench $(( $(date +%s)-s )) s"
timeout 150 dist/bin/flexjit_tests "[gpu][backward]" > $L/gpu_backward.log 2>&1; echo "gpu backward rc=$? $(( $(date +%s)-s )) s"; tail -n 2 $L/gpu_backward.log
FLEXJIT_ARCH=sm_80 timeout 100 dist/bin/flexjit_tests "gpu: lengths 1, 127, 129 and 1000 with GQA 32/4 on every head dim" > $L/gpu_sm80.log 2>&1; echo "sm_80 lengths rc=$? $(( $(date +%s)-s )) s"; tail -n 2 $L/gpu_sm80.log
OUT=$L timeout 200 bash scripts/sanitize.sh; echo "sanitize rc=$? $(( $(date +%s)-s )) s"
tar czf $OUT/logs.tgz -C $OUT logs
