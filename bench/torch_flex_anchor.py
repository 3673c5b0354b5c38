"""Copied from ../shared/anchors/torch_flex_anchor.py (the ANCHORS.md measurements), with
--fwd-only to skip the backward, and the shapes and mods in bench/anchor_cases.py (shared with
compare_torch.py and python_bench.py; the same definitions). Anchor measurements: PyTorch FlexAttention (torch.compile, Triton) vs F.sdpa on one GPU.
Mirrors the seed notebook's test_mask: forward and backward times, TFLOP/s by the seed's formula
(density * B*H*D*S*S * 4 for forward, *10 for backward), plus first-call compile latency and
create_block_mask time. Prints one JSON line per case and a table at the end."""
import json, os, sys, time, math
import torch, torch.nn.functional as F
from torch.nn.attention.flex_attention import flex_attention, create_block_mask, create_mask
from triton.testing import do_bench

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anchor_cases import SHAPES, masks  # the 16 cases' shapes and mods (one definition)

torch.manual_seed(0)
torch._dynamo.config.cache_size_limit = 1000
flex = torch.compile(flex_attention, dynamic=False)
OUT = os.environ.get("OUT", ".")
rows = []

def bench_case(name, score_mod, mask_mod, B, H, S, D, dtype, do_bwd=True, check=True):
    q, k, v = [torch.randn(B, H, S, D, device="cuda", dtype=dtype, requires_grad=True) for _ in range(3)]
    g = torch.randn(B, H, S, D, device="cuda", dtype=dtype)
    torch.cuda.synchronize(); t0 = time.time()
    bm = create_block_mask(mask_mod, 1, 1, S, S, device="cuda") if mask_mod else None
    torch.cuda.synchronize(); t_bm_first = time.time() - t0
    t_bm = do_bench(lambda: create_block_mask(mask_mod, 1, 1, S, S, device="cuda")) if mask_mod else 0.0
    density = (100 - bm.sparsity()) / 100 if bm is not None else 1.0
    call = lambda: flex(q, k, v, score_mod=score_mod, block_mask=bm)
    torch.cuda.synchronize(); t0 = time.time(); o = call(); torch.cuda.synchronize(); t_compile = time.time() - t0
    fw = do_bench(call, warmup=50, rep=300, return_mode="median")
    bw = float("nan"); t_bcompile = float("nan")
    if do_bwd:
        t0 = time.time(); o.backward(g, retain_graph=True); torch.cuda.synchronize(); t_bcompile = time.time() - t0
        bw = do_bench(lambda: o.backward(g, retain_graph=True), warmup=50, rep=300, return_mode="median")
    flops = density * B * H * D * S * S
    err = float("nan")
    if check:
        with torch.no_grad():
            mfn = mask_mod if mask_mod else None
            if mfn is not None:
                m = create_mask(mfn, 1, 1, S, S, device="cuda")
            else:
                m = None
            qq, kk, vv = q[:1, :2].double(), k[:1, :2].double(), v[:1, :2].double()
            s = (qq @ kk.transpose(-1, -2)) / math.sqrt(D)
            if score_mod is not None:
                bi = torch.zeros(1, device="cuda", dtype=torch.int32).view(1,1,1,1)
                hi = torch.arange(2, device="cuda", dtype=torch.int32).view(1,2,1,1)
                qi = torch.arange(S, device="cuda", dtype=torch.int32).view(1,1,S,1)
                ki = torch.arange(S, device="cuda", dtype=torch.int32).view(1,1,1,S)
                s = score_mod(s, bi, hi, qi, ki)
            if m is not None:
                s = s.masked_fill(~m, float("-inf"))
            ref = torch.softmax(s, -1) @ vv
            err = ((o[:1, :2].double() - ref).norm() / ref.norm()).item()
    r = dict(case=name, B=B, H=H, S=S, D=D, dtype=str(dtype).split(".")[-1], density=round(density, 4),
             flex_fw_ms=round(fw, 4), flex_fw_tflops=round(4 * flops / fw / 1e9, 1),
             flex_bw_ms=round(bw, 4), flex_bw_tflops=round(10 * flops / bw / 1e9, 1) if bw == bw else None,
             flex_first_call_s=round(t_compile, 2), flex_bwd_first_call_s=round(t_bcompile, 2),
             block_mask_first_s=round(t_bm_first, 3), block_mask_ms=round(t_bm, 3), rel_err_vs_fp64=err)
    del q, k, v, g, o
    torch.cuda.empty_cache()
    return r

def sdpa_case(B, H, S, D, dtype):
    q, k, v = [torch.randn(B, H, S, D, device="cuda", dtype=dtype) for _ in range(3)]
    fa_causal = do_bench(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), warmup=50, rep=300, return_mode="median")
    fa_full = do_bench(lambda: F.scaled_dot_product_attention(q, k, v), warmup=50, rep=300, return_mode="median")
    m = torch.ones(S, S, device="cuda", dtype=torch.bool).tril()
    dense_mask = do_bench(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=m), warmup=20, rep=200, return_mode="median")
    flops = B * H * D * S * S
    return dict(case="sdpa", B=B, H=H, S=S, D=D, dtype=str(dtype).split(".")[-1],
                sdpa_full_ms=round(fa_full, 4), sdpa_full_tflops=round(4 * flops / fa_full / 1e9, 1),
                sdpa_causal_ms=round(fa_causal, 4), sdpa_causal_tflops=round(2 * flops / fa_causal / 1e9, 1),
                sdpa_densemask_causal_ms=round(dense_mask, 4), sdpa_densemask_causal_tflops=round(2 * flops / dense_mask / 1e9, 1))

if __name__ == "__main__":
    shapes = [(B, H, S, D, getattr(torch, dt)) for (B, H, S, D, dt) in SHAPES]
    fwd_only = "--fwd-only" in sys.argv
    args = [a for a in sys.argv[1:] if a != "--fwd-only"]
    which = args[0] if args else "all"
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    for (B, H, S, D, dt) in shapes:
        r = sdpa_case(B, H, S, D, dt); rows.append(r); print(json.dumps(r), flush=True)
        for name, sm, mm in masks(S, H):
            if which != "all" and name not in which.split(","):
                continue
            try:
                r = bench_case(name, sm, mm, B, H, S, D, dt, do_bwd=not fwd_only)
            except Exception as e:
                r = dict(case=name, B=B, H=H, S=S, D=D, error=repr(e)[:300])
            rows.append(r); print(json.dumps(r), flush=True)
            with open(os.path.join(OUT, "anchor.jsonl"), "w") as f:
                f.write("\n".join(json.dumps(x) for x in rows) + "\n")
