"""torch's side of bench/varlen_bench.cpp: the same 16 causal sequences (32768 tokens, H 16,
D 128, bf16) as torch.compile'd flex_attention under the equivalent document-causal block mask
(built once, then timed alone), the median of CUDA-event timings of single calls; TF/s by the
same count of attending pairs. One JSON line.
    python3 bench/torch_varlen.py [--json FILE]
"""
import argparse
import json
import time

import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from torch_decode import time_ms  # the same CUDA-event medians

LENGTHS = [517, 3001, 1200, 64, 2900, 4096, 1, 1800, 3333, 700, 2222, 999, 4500, 1377, 2555, 3503]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    H, D, S = 16, 128, sum(LENGTHS)
    doc = torch.repeat_interleave(torch.arange(len(LENGTHS), device="cuda"),
                                  torch.tensor(LENGTHS, device="cuda"))

    def mask(b, h, q, kv):
        return (q >= kv) & (doc[q] == doc[kv])

    q, k, v = [torch.randn(1, H, S, D, device="cuda", dtype=torch.bfloat16) for _ in range(3)]
    t0 = time.time()
    bm = create_block_mask(mask, 1, 1, S, S, device="cuda")
    torch.cuda.synchronize()
    mask_first = (time.time() - t0) * 1e3
    mask_ms = time_ms(lambda: create_block_mask(mask, 1, 1, S, S, device="cuda"), reps=5)
    flex = torch.compile(flex_attention, dynamic=False)
    ms = time_ms(lambda: flex(q, k, v, block_mask=bm))
    pairs = sum(n * (n + 1) / 2 for n in LENGTHS)
    tflops = 4 * pairs * H * D / ms / 1e9
    print(f"torch flex varlen16: kernel {ms:.3f} ms ({tflops:.0f} TF/s), create_block_mask "
          f"{mask_ms:.3f} ms (first {mask_first:.0f} ms)")
    if args.json:
        with open(args.json, "w") as f:
            f.write(json.dumps(dict(case="varlen16", S=S, H=H, D=D, kernel_ms=ms, mask_ms=mask_ms,
                                    tflops_kernel=tflops)) + "\n")


if __name__ == "__main__":
    main()
