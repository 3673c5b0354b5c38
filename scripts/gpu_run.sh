#!/usr/bin/env bash
# On a GPU machine, over a tree that carries the stripped install in dist/
# (cmake --install build --prefix dist --strip): the [gpu] tests, flexjit's
# forward bench (block-sparse way only) and PyTorch's FlexAttention
# (bench/torch_flex_anchor.py, forward only) in one run on the same GPU. Results
# go to $OUT (default ./gpu_out). scripts/bench.sh is the fuller comparison.
set -u
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-$repo/gpu_out}"
mkdir -p "$out"
export LD_LIBRARY_PATH="$repo/dist/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# No driver JIT cache: the cold-call columns include the driver's PTX -> cubin, as on a
# machine that never saw these kernels.
export CUDA_CACHE_DISABLE=1
export FLEXJIT_CACHE_DIR="$(mktemp -d)"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,driver_version --format=csv,noheader
echo "== [gpu] tests"
# ~[soak]: the hidden soak (minutes) runs alone: flexjit_tests "[gpu][soak]" (README).
"$repo/dist/bin/flexjit_tests" "[gpu]~[soak]" > "$out/gpu_tests.log" 2>&1
echo "gpu tests rc=$?"; tail -n 3 "$out/gpu_tests.log"
# The held-stream cache test needs eager module loading (lazy loading waits for the held
# stream; the test says so and skips otherwise).
CUDA_MODULE_LOADING=EAGER "$repo/dist/bin/flexjit_tests" "gpu: an evicted kernel's module stays loaded until its queued launch has run" > "$out/gpu_eager.log" 2>&1
echo "held-stream cache test (eager loading) rc=$?"; tail -n 2 "$out/gpu_eager.log"
echo "== flexjit forward bench"
"$repo/dist/bin/flexjit_attention_bench" --ways sparse --json "$out/flexjit_bench.jsonl" 2>&1 | tee "$out/flexjit_bench.txt"
if [ "${SKIP_TORCH:-0}" = 1 ]; then echo "torch skipped (SKIP_TORCH=1)"; exit 0; fi
echo "== torch flex_attention (forward only)"
(cd "$out" && OUT="$out" PYTHONUNBUFFERED=1 python3 "$repo/bench/torch_flex_anchor.py" --fwd-only \
  > "$out/torch.log" 2>&1); echo "torch rc=$?"
python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
fj = [json.loads(l) for l in open(os.path.join(out, "flexjit_bench.jsonl"))]
th = [json.loads(l) for l in open(os.path.join(out, "anchor.jsonl")) if l.strip()]
tk = {(r["case"], r["D"]): r for r in th if "flex_fw_ms" in r}
# torch/fj = torch ms / flexjit ms: above 1, flexjit is faster.
print(f"{'case':16} {'D':>3} {'flexjit ms':>10} {'TF/s':>6} {'torch ms':>9} {'TF/s':>6} {'torch/fj':>8} {'fj cold ms':>10} {'torch first s':>13}")
for r in fj:
    t = tk.get((r["case"], r["D"]))
    tm = t["flex_fw_ms"] if t else float("nan")
    print(f"{r['case']:16} {r['D']:3} {r['fwd_ms']:10.3f} {r['fwd_tflops']:6.0f} {tm:9.3f} "
          f"{(t or {}).get('flex_fw_tflops', float('nan')):6.0f} {tm / r['fwd_ms']:8.2f} "
          f"{r['cold_first_call_ms']:10.0f} {(t or {}).get('flex_first_call_s', float('nan')):13.2f}")
for r in th:
    if r.get("case") == "sdpa":
        print("sdpa", r)
PY
