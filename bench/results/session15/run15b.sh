#!/bin/bash
# session 15, call 2: A/B of this tree (new) against session 14's landed kernels (old), both
# schedules, new/old/new/old, S = 2048, 8192 (and 32768 one tile per CTA)
cd "$(dirname "$0")/../../.." && { [ -d dist ] || tar xzf gpu_carry/dist.tgz; } && mkdir -p old && tar xzf gpu_carry/dist_old.tgz -C old
export CUDA_CACHE_DISABLE=1
L=$OUT/logs; mkdir -p $L
s=$(date +%s)
for round in 1 2; do for S in 2048 8192 32768; do for sch in one persistent; do
  cases=noop,causal,document; [ $S = 32768 ] && { [ $sch = persistent ] && continue; cases=causal,document; }
  for who in new old; do d=dist; [ $who = old ] && d=old/dist
    LD_LIBRARY_PATH=$PWD/$d/lib FLEXJIT_CACHE_DIR=$(mktemp -d) timeout 60 $d/bin/flexjit_attention_bench --case $cases --ways sparse --S $S --schedule $sch --reps 20 --json $L/${who}_${S}_${sch}_$round.jsonl > $L/${who}_${S}_${sch}_$round.txt 2>&1
    echo "== $who S=$S $sch round $round rc=$? $(( $(date +%s)-s )) s"; awk 'NR>1 && NF>8 && $1 ~ /16$/ {print $1, $2, $3, $5, $9, $10}' $L/${who}_${S}_${sch}_$round.txt
  done
done; done; done
tar czf $OUT/logs.tgz -C $OUT logs
