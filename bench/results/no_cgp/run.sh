#!/bin/bash
# run 4: A/B of the NVPTX codegen without CodeGenPrepare (dist_new) against the tested build (dist)
tar xzf gpu_carry/dist.tgz; tar xzf gpu_carry/dist_new.tgz
export CUDA_CACHE_DISABLE=1
log=$OUT/ab.log
for b in dist_new dist; do
  export LD_LIBRARY_PATH=$PWD/$b/lib FLEXJIT_CACHE_DIR=$(mktemp -d)
  echo "== $b" >> $log
  timeout 60 $b/bin/flexjit_attention_bench --S 8192 --D 128 --case noop,causal,document --ways sparse --reps 20 >> $log 2>&1
  timeout 40 $b/bin/flexjit_attention_bench --head-dims --D 256 --case noop,causal --ways sparse --reps 20 >> $log 2>&1
done
grep -E "^==|sparse " $log
export LD_LIBRARY_PATH=$PWD/dist_new/lib FLEXJIT_CACHE_DIR=$(mktemp -d)
for s in "bf16 d128" "bf16 d256" "f16 d64" "bf16 d192/128" "f16 d80"; do
  timeout 40 dist_new/bin/flexjit_tests "gpu: every seed-003 variant matches the float64 reference" -c "$s" > $OUT/t.log 2>&1; echo "$s rc=$? $(tail -2 $OUT/t.log | head -1)"
done
