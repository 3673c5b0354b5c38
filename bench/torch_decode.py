"""torch's decoding on bench/decode_bench.cpp's shapes: torch.compile'd flex_attention (its
FlexDecoding kernel for short query rows, enable_gqa=True) and F.scaled_dot_product_attention
(enable_gqa=True), each the median of 30 CUDA-event timings of single calls after warm-up;
GB/s of K and V read once, as the flexjit bench counts them. One JSON line per (shape, way),
and first the device-to-device copy bandwidth (a 4 GiB tensor copied: bytes read + written per
second), the bar decoding is held to (issue 13: >= 85% of it).
--grid: issue 13's decode grid (B 1/8/32/64 x kv_len 2048/8192/32768), as decode_bench --grid.
    python3 bench/torch_decode.py [--json FILE] [--grid]
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import flex_attention

SHAPES = [  # B, Hq, Hkv, q_len, kv_len, D, dtype: the same list as decode_bench.cpp
    (32, 32, 8, 1, 8192, 128, torch.bfloat16),
    (8, 32, 8, 1, 32768, 128, torch.bfloat16),
    (1, 32, 8, 1, 131072, 128, torch.bfloat16),
    (32, 32, 8, 4, 8192, 128, torch.bfloat16),
    (64, 32, 4, 1, 4096, 128, torch.bfloat16),
    (32, 16, 16, 1, 8192, 64, torch.float16),
]
GRID = [(B, 32, 8, 1, kv_len, 128, torch.bfloat16)
        for B in (1, 8, 32, 64) for kv_len in (2048, 8192, 32768)]


def time_ms(fn, reps=30):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--grid", action="store_true")
    args = ap.parse_args()
    out = open(args.json, "w") if args.json else None
    flex = torch.compile(flex_attention, dynamic=False)
    src = torch.empty(2**31, device="cuda", dtype=torch.int16)
    dst = torch.empty_like(src)
    copy_ms = time_ms(lambda: dst.copy_(src))
    copy_gbps = 2 * src.numel() * 2 / copy_ms / 1e6
    print(f"copy: {copy_gbps:.0f} GB/s (4 GiB read + 4 GiB written in {copy_ms:.3f} ms)")
    if out:
        out.write(json.dumps(dict(way="copy", ms=copy_ms, gbps=copy_gbps)) + "\n")
    del src, dst
    torch.cuda.empty_cache()
    print(f"{'dtype':5} {'B':>4} {'Hq':>3} {'Hkv':>3} {'q':>3} {'kv_len':>7} {'D':>4} "
          f"{'way':>10} {'ms':>9} {'GB/s':>8} {'rel err':>9}")
    for B, Hq, Hkv, q_len, kv_len, D, dtype in (GRID if args.grid else SHAPES):
        # A compile per shape (dynamic=False): past dynamo's recompile limit (8) torch would
        # run flex_attention eagerly, unfused.
        torch._dynamo.reset()
        flex = torch.compile(flex_attention, dynamic=False)
        torch.manual_seed(0)
        q = torch.randn(B, Hq, q_len, D, device="cuda", dtype=dtype)
        k = torch.randn(B, Hkv, kv_len, D, device="cuda", dtype=dtype)
        v = torch.randn(B, Hkv, kv_len, D, device="cuda", dtype=dtype)
        # float64 reference on the first sequence
        qr, kr, vr = q[:1].double(), k[:1].double(), v[:1].double()
        g = Hq // Hkv
        kr, vr = kr.repeat_interleave(g, 1), vr.repeat_interleave(g, 1)
        ref = torch.softmax(qr @ kr.transpose(-1, -2) / D**0.5, -1) @ vr
        bytes_kv = 2.0 * B * Hkv * kv_len * 2 * D
        ways = {
            "torch_flex": lambda: flex(q, k, v, enable_gqa=True),
            "sdpa": lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True),
        }
        for way, fn in ways.items():
            try:
                got = fn()
                err = ((got[:1].double() - ref).norm() / ref.norm()).item()
                ms = time_ms(fn)
            except Exception as e:  # report and go on
                print(f"{way}: {type(e).__name__}: {str(e)[:200]}")
                continue
            name = "bf16" if dtype == torch.bfloat16 else "f16"
            print(f"{name:5} {B:>4} {Hq:>3} {Hkv:>3} {q_len:>3} {kv_len:>7} {D:>4} {way:>10} "
                  f"{ms:>9.4f} {bytes_kv / ms / 1e6:>8.0f} {err:>9.2e}")
            if out:
                out.write(json.dumps(dict(dtype=name, B=B, Hq=Hq, Hkv=Hkv, q_len=q_len,
                                          kv_len=kv_len, D=D, way=way, ms=ms,
                                          gbps=bytes_kv / ms / 1e6, rel_err=err)) + "\n")
                out.flush()  # a later shape's failure (an InductorError) must not lose this
        del q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
