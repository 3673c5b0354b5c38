#!/bin/bash
# Session 20, second call: the C API's GPU part and the CLI's run; the GPU block mask with the warp-cooperative rank-1 scan (tests,
# S = 65536 / 32768 times), the varlen bench beside torch's (bench/torch_varlen.py), and where the
# varlen call's time goes (nsys's CUDA API and kernel tables where nsys is installed, else ncu's
# kernel durations); the paged prefill bench with head-major (HND) pools beside NHD ones.
cd "$(dirname "$0")/../../.." && tar xzf gpu_carry/dist.tgz
export LD_LIBRARY_PATH=$PWD/dist/lib CUDA_CACHE_DISABLE=1 FLEXJIT_CACHE_DIR=$(mktemp -d)
L=$OUT/logs; mkdir -p $L
s=$(date +%s)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 90 dist/bin/flexjit_tests "[gpu][blockmask]~[timing],[varlen]" > $L/blockmask_tests.log 2>&1; echo "blockmask+varlen tests rc=$? $(( $(date +%s)-s )) s"; tail -n 3 $L/blockmask_tests.log
for S in 65536 32768; do timeout 40 dist/bin/flexjit_blockmask_bench --gpu $S 11 > $L/blockmask_$S.txt 2>&1; echo "blockmask bench S=$S rc=$?"; cat $L/blockmask_$S.txt; done
timeout 60 dist/bin/flexjit_varlen_bench --json $L/varlen.jsonl > $L/varlen.txt 2>&1; echo "varlen bench rc=$? $(( $(date +%s)-s )) s"; grep -v warning $L/varlen.txt
(cd bench && timeout 120 python3 torch_varlen.py --json $L/torch_varlen.jsonl > $L/torch_varlen.txt 2>&1); echo "torch varlen rc=$? $(( $(date +%s)-s )) s"; tail -3 $L/torch_varlen.txt
timeout 40 dist/bin/flexjit_capi_c_test > $L/capi_c.log 2>&1; echo "C API test rc=$?"; tail -4 $L/capi_c.log
timeout 40 dist/bin/flexjit_tests "[capi]" > $L/capi_tests.log 2>&1; echo "[capi] rc=$?"; tail -2 $L/capi_tests.log
timeout 60 dist/bin/flexjit run '(kv_idx <= q_idx)' --batch 4 --heads 16 --q-len 8192 --backward > $L/cli_run.log 2>&1; echo "cli run rc=$?"; tail -12 $L/cli_run.log
timeout 150 dist/bin/flexjit_decode_bench --prefill --json $L/prefill.jsonl > $L/prefill.txt 2>&1; echo "prefill bench rc=$? $(( $(date +%s)-s )) s"; grep -v warning $L/prefill.txt
N=$(which nsys 2>/dev/null || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems/*/bin/nsys 2>/dev/null | head -1)
echo "nsys: $N"
if [ -n "$N" ]; then
  timeout 60 $N profile -t cuda -o $L/vl --stats=true dist/bin/flexjit_varlen_bench > $L/nsys_vl.txt 2>&1; echo "nsys varlen rc=$?"
  grep -A28 "cuda_api_sum\|cuda_gpu_kern_sum" $L/nsys_vl.txt | cut -c1-200 | head -70
else
  timeout 60 ncu --clock-control none --metrics gpu__time_duration.sum -k regex:flexjit_block dist/bin/flexjit_blockmask_bench --gpu 65536 1 > $L/ncu_bm.txt 2>&1; echo "ncu rc=$?"
  grep -E "flexjit_block|gpu__time_duration" $L/ncu_bm.txt | head -60
fi
tar czf $OUT/logs.tgz -C $OUT logs
