#!/usr/bin/env bash
# session 13: one-tile HEAD (f378a28) vs persistent_ws_v2 patch (both modes), same run.
# Copy it into a folder beside dist_head.tgz and dist_v2.tgz (each `tar czf X.tgz dist` of a
# `cmake --install build --prefix dist --strip`: HEAD's, and HEAD + persistent_ws_v2.patch's),
# carry that folder to the H200 and run it there with $OUT set (the device tool sets it).
set -u
cd "$(dirname "$0")"
for t in head v2; do mkdir -p $t && tar xzf dist_$t.tgz -C $t; done
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv > $OUT/gpu.txt 2>&1
b() { # tree label env...
  local t=$1 l=$2; shift 2
  for S in 2048 8192 32768; do
    cases=noop,causal,document; [ $S = 32768 ] && cases=causal,document
    env "$@" LD_LIBRARY_PATH=$PWD/$t/dist/lib $t/dist/bin/flexjit_attention_bench --case $cases --ways sparse --S $S --json $OUT/${l}_S$S.json > $OUT/${l}_S$S.log 2>&1
    echo "$l S=$S rc=$?"
    awk -v L=$l 'NR>1 && NF>8 && $1 ~ /16$/ {print L, $1, $2, $3, $5, $9}' $OUT/${l}_S$S.log >> $OUT/summary.txt
  done
}
for round in 1 2; do
  b head head_r$round X=1
  b v2 v2pers_r$round X=1
  b v2 v2one_r$round FLEXJIT_ONE_TILE=1
done
cd $OUT && tar czf all_logs.tgz *.log *.json && rm -f *.log *.json
cat summary.txt
