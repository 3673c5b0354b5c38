"""flexjit vs PyTorch on the same GPU, in the same job (scripts/bench.sh runs both).

For every case flexjit's bench measured (its JSON lines: case, B, H, S, D, dtype), this
measures, on identical shapes and masks (bench/torch_flex_anchor.py's mask and score mods and
document ids, imported, not copied):
  flex       torch flex_attention under torch.compile with its block mask;
  sdpa       F.scaled_dot_product_attention with no mask (flash / cuDNN), is_causal=True when
             the mask is causal: the same attention for noop and causal; for the other variants
             the dense kernel a user without FlexAttention would run (mask not applied: *);
  sdpa_mask  F.sdpa with the mask materialized as a dense [S,S] bool tensor (create_mask);
             for alibi/softcap the score_mod is not applied (*). Skipped above --dense-max-S.
  flex bwd   where flexjit's row has a backward (its --bwd: bwd_ms, ...), torch flex_attention's
             backward as bench/torch_flex_anchor.py times it for ANCHORS.md: the compiled
             flex_attention with the same block mask on requires_grad copies of q, k, v, then
             out.backward(g, retain_graph=True) with a fixed random g (the gradients accumulate
             over the runs, as in the anchors); its first call (the backward's compile) too.
Timing: triton.testing.do_bench median (warm-up 50 ms, 300 ms of runs; do_bench clears L2
between runs). TF/s by the seed's formula 4 * density * B*H*S^2*D / t (2 * ... * (D + Dv) when
v's head dim Dv differs; backward 10 * ...) with
the case's block-mask density for every column, so a TF/s ratio is the inverse time ratio.
Correctness: relative error against a float64 reference on 32 random query rows of (b=0,
h=0..1); torch's dq, dk, dv of its first backward call against float64 autograd on all of
(b=0, h=0..1) up to S = GRAD_CHECK_MAX_S. flexjit's bench reports only its backward's
non-finite gradient elements; the values of its gradients are checked by its [gpu][backward]
tests.
Memory: the mask bytes each reads (block mask tensors, incl. torch's backward transposes; the
dense bool mask) and the peak memory allocated during one call beyond what was live before
(the output included).

It prints ONE merged forward table (flexjit's three ways and torch's three columns, ratios
flexjit TF/s / torch TF/s: above 1 flexjit is faster), then, when any row has a backward, a
backward table (flexjit block-sparse vs torch flex_attention), and writes merged.json,
torch.jsonl and bench.png (forward TF/s per variant; matplotlib when importable, else a small
built-in PNG writer). --torch-json also takes torch_flex_anchor.py's anchor.jsonl (same fields).

  python3 bench/compare_torch.py --flexjit OUT/flexjit.jsonl [--out DIR]
  python3 bench/compare_torch.py --flexjit F.jsonl --torch-json T.jsonl   # merge only, no GPU
  python3 bench/compare_torch.py --flexjit F.jsonl --no-torch             # flexjit alone
"""
import argparse
import json
import math
import os
import struct
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- the cases -------------------------------------------------------------------------------

sys.path.insert(0, HERE)
import anchor_cases  # noqa: E402  the 16 ANCHORS cases' shapes, mods and FLOP count (no torch)

VARIANTS = anchor_cases.VARIANTS
CAUSAL_MASK = {"causal", "alibi_causal", "softcap_causal"}
HAS_SCORE_MOD = {"alibi_causal", "softcap_causal"}
BM_TENSORS = ["kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices",
              "q_num_blocks", "q_indices", "full_q_num_blocks", "full_q_indices"]
# (B, H, D, dtype) at S = 8192; B * S is kept constant when S changes.
SHAPES = [(B, H, D, dt) for (B, H, S, D, dt) in anchor_cases.SHAPES]
# torch's gradients are checked against float64 autograd on (b=0, h=0..1) up to this S
# (a few [2, S, S] float64 tensors: about 1 GiB each at 8192).
GRAD_CHECK_MAX_S = 8192


def default_cases():
    """The 16 cases of ANCHORS.md (with the backward, as scripts/bench.sh runs them) plus causal
    and document at S = 2048 and 32768 (forward only)."""
    cases = []
    for B, H, D, dt in SHAPES:
        for S, names in [(8192, VARIANTS), (2048, ["causal", "document"]),
                         (32768, ["causal", "document"])]:
            for name in names:
                cases.append(dict(case=name, B=B * 8192 // S, H=H, S=S, D=D, dtype=dt,
                                  bwd=S == 8192))
    return cases


def v_dim(r):
    """The v / out head dim (rows from before it existed have D only)."""
    return int(r.get("Dv") or r["D"])


def key(r):
    return (r["case"], int(r["B"]), int(r["H"]), int(r["S"]), int(r["D"]), v_dim(r))


def torch_dtype_name(d):
    return {"f16": "float16", "bf16": "bfloat16"}.get(d, d)


# ---- torch measurements ----------------------------------------------------------------------

def measure_torch(cases, dense_max_S, sink):
    import torch
    import torch.nn.functional as F
    from torch.nn.attention.flex_attention import create_block_mask, create_mask
    from triton.testing import do_bench
    sys.path.insert(0, HERE)
    import torch_flex_anchor as tfa  # the ANCHORS script's mods and compiled flex_attention

    def bench(fn):
        return do_bench(fn, warmup=50, rep=300, return_mode="median")

    def peak_extra(fn):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        o = fn()
        torch.cuda.synchronize()
        extra = torch.cuda.max_memory_allocated() - before
        del o
        return int(extra)

    reference = anchor_cases.reference_attention

    def reference_rows(q, k, v, score_mod, mask_mod, rows):
        """float64 attention for (b=0, h=0..1, q in rows) over every key."""
        return reference(q[:1, :2, rows].double(), k[:1, :2].double(), v[:1, :2].double(),
                         score_mod, mask_mod, rows)

    def reference_grads(q, k, v, g, score_mod, mask_mod):
        """float64 dq, dk, dv of (b=0, h=0..1) for the output gradient g (autograd)."""
        qq, kk, vv = [t.detach()[:1, :2].double().requires_grad_() for t in (q, k, v)]
        rows = torch.arange(q.shape[2], device="cuda")
        reference(qq, kk, vv, score_mod, mask_mod, rows).backward(g[:1, :2].double())
        return qq.grad, kk.grad, vv.grad

    def rel_err(o, ref, rows=slice(None)):
        got = o[:1, :2, rows].double()
        return ((got - ref).norm() / ref.norm()).item()

    def flex_backward(r, q, k, v, score_mod, mask_mod, bm, flop):
        """torch flex_attention's backward into r, measured as torch_flex_anchor.bench_case
        does (requires_grad q, k, v; out.backward(g, retain_graph=True), a fixed random g)."""
        qg, kg, vg = [t.detach().requires_grad_() for t in (q, k, v)]
        gen = torch.Generator(device="cuda").manual_seed(11)
        g = torch.randn(q.shape, device="cuda", dtype=q.dtype, generator=gen)
        torch.cuda.synchronize(); t0 = time.time()
        o = tfa.flex(qg, kg, vg, score_mod=score_mod, block_mask=bm)
        torch.cuda.synchronize(); r["flex_grad_fw_first_call_s"] = round(time.time() - t0, 2)
        t0 = time.time(); o.backward(g, retain_graph=True); torch.cuda.synchronize()
        r["flex_bwd_first_call_s"] = round(time.time() - t0, 2)
        if q.shape[2] <= GRAD_CHECK_MAX_S:  # the gradients of this one call
            for n, t, ref in zip("qkv", (qg, kg, vg),
                                 reference_grads(q, k, v, g, score_mod, mask_mod)):
                r[f"flex_d{n}_rel_err"] = rel_err(t.grad, ref)
        ms = bench(lambda: o.backward(g, retain_graph=True))
        r["flex_bw_ms"], r["flex_bw_tflops"] = round(ms, 4), round(2.5 * flop / ms / 1e9, 1)

    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    results = []
    for c in cases:
        name, B, H, S, D = c["case"], int(c["B"]), int(c["H"]), int(c["S"]), int(c["D"])
        Dv = v_dim(c)
        dtype = getattr(torch, torch_dtype_name(c["dtype"]))
        mods = {n: (sm, mm) for n, sm, mm in tfa.masks(S, H)}
        score_mod, mask_mod = mods[name]
        r = dict(case=name, B=B, H=H, S=S, D=D, Dv=Dv, dtype=str(dtype).split(".")[-1])
        q = k = v = bm = ref = m = o = None
        try:
            torch.manual_seed(0)
            q, k, v = [torch.randn(B, H, S, d, device="cuda", dtype=dtype) for d in (D, D, Dv)]
            gen = torch.Generator(device="cuda").manual_seed(7)
            rows = torch.randint(0, S, (32,), device="cuda", generator=gen)
            ref = reference_rows(q, k, v, score_mod, mask_mod, rows)
            # flex_attention with its block mask (as in tfa.bench_case, forward only).
            torch.cuda.synchronize(); t0 = time.time()
            bm = create_block_mask(mask_mod, 1, 1, S, S, device="cuda") if mask_mod else None
            torch.cuda.synchronize(); r["block_mask_first_s"] = round(time.time() - t0, 3)
            r["block_mask_ms"] = round(bench(
                lambda: create_block_mask(mask_mod, 1, 1, S, S, device="cuda")), 3) \
                if bm is not None else None
            density = (100 - bm.sparsity()) / 100 if bm is not None else 1.0
            flop = anchor_cases.attention_flops(density, B, H, S, D, Dv)
            r["density"] = round(density, 4)
            r["flex_mask_bytes"] = sum(
                t.numel() * t.element_size() for t in (getattr(bm, a, None) for a in BM_TENSORS)
                if torch.is_tensor(t)) if bm is not None else 0
            call = lambda: tfa.flex(q, k, v, score_mod=score_mod, block_mask=bm)
            torch.cuda.synchronize(); t0 = time.time(); o = call(); torch.cuda.synchronize()
            r["flex_first_call_s"] = round(time.time() - t0, 2)
            r["flex_rel_err"] = rel_err(o, ref, rows)
            o = None
            ms = bench(call)
            r["flex_fw_ms"], r["flex_fw_tflops"] = round(ms, 4), round(flop / ms / 1e9, 1)
            r["flex_peak_extra_bytes"] = peak_extra(call)
            # SDPA, no mask: flash / cuDNN; is_causal for a causal mask.
            causal = name in CAUSAL_MASK
            sd = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            o = sd()
            exact = name == "noop" or name == "causal"
            r["sdpa_mode"] = "is_causal" if causal else "full"
            r["sdpa_exact"] = exact
            r["sdpa_rel_err"] = rel_err(o, ref, rows) if exact else None
            o = None
            ms = bench(sd)
            r["sdpa_ms"], r["sdpa_tflops"] = round(ms, 4), round(flop / ms / 1e9, 1)
            r["sdpa_peak_extra_bytes"] = peak_extra(sd)
            # SDPA with the dense [S,S] bool mask.
            if S > dense_max_S:
                r["sdpa_mask_skipped"] = (f"S={S} > --dense-max-S {dense_max_S}: the [S,S] bool "
                                          f"mask would be {S * S / 2**30:.2f} GiB")
            else:
                m = (create_mask(mask_mod, 1, 1, S, S, device="cuda") if mask_mod is not None
                     else torch.ones(1, 1, S, S, device="cuda", dtype=torch.bool))
                sm_ = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=m)
                o = sm_()
                r["sdpa_mask_rel_err"] = rel_err(o, ref, rows) if name not in HAS_SCORE_MOD else None
                o = None
                ms = bench(sm_)
                r["sdpa_mask_ms"], r["sdpa_mask_tflops"] = round(ms, 4), round(flop / ms / 1e9, 1)
                r["sdpa_mask_bytes"] = m.numel() * m.element_size()
                r["sdpa_mask_peak_extra_bytes"] = peak_extra(sm_)
            m = None
            if c.get("bwd"):
                flex_backward(r, q, k, v, score_mod, mask_mod, bm, flop)
        except Exception as e:  # one failing case must not lose the others
            r["error"] = repr(e)[:300]
        q = k = v = bm = ref = m = o = None  # free this case's tensors (the lambdas share them)
        torch.cuda.empty_cache()
        results.append(r)
        print(json.dumps(r), flush=True)
        sink.write(json.dumps(r) + "\n")
        sink.flush()
    return results


# ---- merge and table -------------------------------------------------------------------------

def ratio(a, b):
    """a / b, or None when either is missing."""
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def merge(fj_rows, torch_rows):
    tk = {key(r): r for r in torch_rows}
    merged = []
    for f in fj_rows:
        t = tk.get(key(f), {})
        m = {"case": f["case"], "B": f["B"], "H": f["H"], "S": f["S"], "D": f["D"],
             "Dv": v_dim(f), "dtype": f.get("dtype"), "density": f.get("density")}
        shared = ("case", "B", "H", "S", "D", "Dv", "dtype")
        m.update({"flexjit_" + k: v for k, v in f.items() if k not in shared})
        m.update({"torch_" + k: v for k, v in t.items() if k not in shared})
        # Speed ratios as time ratios, other time / flexjit time: above 1 flexjit is faster.
        fj = f.get("fwd_ms")
        m["ratio_fj_over_torch_flex"] = ratio(t.get("flex_fw_ms"), fj)
        m["ratio_fj_over_sdpa"] = ratio(t.get("sdpa_ms"), fj)
        m["ratio_fj_over_sdpa_mask"] = ratio(t.get("sdpa_mask_ms"), fj)
        m["ratio_fj_dense_over_sdpa_mask"] = ratio(t.get("sdpa_mask_ms"), f.get("dense_fwd_ms"))
        m["ratio_fj_sparse_over_fj_score"] = ratio(f.get("scoreonly_fwd_ms"), fj)
        m["ratio_fj_bwd_over_torch_flex_bwd"] = ratio(t.get("flex_bw_ms"), f.get("bwd_ms"))
        merged.append(m)
    return merged


def fmt(v, spec, width):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-".rjust(width)
    return format(v, spec).rjust(width)


ID_COLUMNS = [  # header, width, function of the merged row; the first five left-aligned
    ("dtype", 5, lambda m: str(m["dtype"]).replace("float16", "f16").replace("bfloat16", "bf16")),
    ("D", 7, lambda m: str(m["D"]) if v_dim(m) == int(m["D"]) else f"{m['D']}/{v_dim(m)}"),
    ("S", 6, lambda m: str(m["S"])),
    ("B", 3, lambda m: str(m["B"])),
    ("case", 15, lambda m: m["case"]),
    ("dens", 5, lambda m: fmt(m["density"], ".3f", 5)),
]
COLUMNS = ID_COLUMNS + [
    ("fj", 5, lambda m: fmt(m.get("flexjit_fwd_tflops"), ".0f", 5)),
    ("fj-dn", 5, lambda m: fmt(m.get("flexjit_dense_fwd_tflops"), ".0f", 5)),
    ("fj-sc", 5, lambda m: fmt(m.get("flexjit_scoreonly_fwd_tflops"), ".0f", 5)),
    ("flex", 5, lambda m: fmt(m.get("torch_flex_fw_tflops"), ".0f", 5)),
    ("sdpa", 6, lambda m: fmt(m.get("torch_sdpa_tflops"), ".0f", 5)
     + ("" if m.get("torch_sdpa_exact", True) else "*")),
    ("sdpa-m", 7, lambda m: fmt(m.get("torch_sdpa_mask_tflops"), ".0f", 6)
     + ("*" if m["case"] in HAS_SCORE_MOD and m.get("torch_sdpa_mask_tflops") else "")),
    ("fj/flex", 7, lambda m: fmt(m.get("ratio_fj_over_torch_flex"), ".2f", 7)),
    ("fj/sdpa", 7, lambda m: fmt(m.get("ratio_fj_over_sdpa"), ".2f", 7)),
    ("dn/sdm", 6, lambda m: fmt(m.get("ratio_fj_dense_over_sdpa_mask"), ".2f", 6)),
    ("sp/sc", 5, lambda m: fmt(m.get("ratio_fj_sparse_over_fj_score"), ".2f", 5)),
    ("fj err", 7, lambda m: fmt(m.get("flexjit_rel_err"), ".0e", 7)),
    ("dn,sc err", 9, lambda m: fmt(max_or_none(m.get("flexjit_dense_rel_err"),
                                               m.get("flexjit_scoreonly_rel_err")), ".0e", 9)),
    ("flex err", 8, lambda m: fmt(m.get("torch_flex_rel_err"), ".0e", 8)),
    ("cold ms", 7, lambda m: fmt(m.get("flexjit_cold_first_call_ms"), ".0f", 7)),
    ("dsl>ptx", 7, lambda m: fmt(m.get("flexjit_dsl_to_ptx_ms"), ".0f", 7)),
    ("ptx>cu", 6, lambda m: fmt(m.get("flexjit_ptx_to_cubin_ms"), ".0f", 6)),
    ("disk ms", 7, lambda m: fmt(m.get("flexjit_disk_hit_ms"), ".1f", 7)),
    ("mem us", 6, lambda m: fmt(m.get("flexjit_memory_hit_us"), ".1f", 6)),
    ("flex 1st s", 10, lambda m: fmt(m.get("torch_flex_first_call_s"), ".2f", 10)),
    ("bm ms fj/t", 11, lambda m: fmt(m.get("flexjit_block_mask_gpu_ms"), ".2f", 5) + "/"
     + fmt(m.get("torch_block_mask_ms"), ".2f", 5)),
    ("bm KB fj/t", 11, lambda m: fmt(kb(m.get("flexjit_mask_bytes")), ".0f", 5) + "/"
     + fmt(kb(m.get("torch_flex_mask_bytes")), ".0f", 5)),
    ("dense MB", 8, lambda m: fmt(mb(m.get("flexjit_dense_mask_bytes")
                                     or m.get("torch_sdpa_mask_bytes")), ".0f", 8)),
]
NOTES = [
    "fj err: flexjit block-sparse vs float64; dn,sc err: the worse of its dense and "
    "score_mod ways; flex err: torch flex_attention (other errors in merged.json).",
    "TF/s by the seed's formula 4*density*B*H*S^2*D/t (2*...*(D+Dv) when Dv != D) for every "
    "column; ratios a/b = b's time / a's time (above 1 a is faster): fj/flex, fj/sdpa, dn/sdm = fj-dn vs sdpa-m, "
    "sp/sc = fj vs fj-sc (what block sparsity buys).",
    "fj: flexjit block-sparse; fj-dn: flexjit, [S,S] bool mask read per element, no tile "
    "skipping; fj-sc: flexjit, mask as a score_mod (-inf), no block mask.",
    "flex: torch flex_attention (torch.compile); sdpa: F.sdpa no mask (is_causal for causal "
    "masks), * = not the same attention (mask or score_mod not applied); sdpa-m: F.sdpa with "
    "the dense bool mask, * = score_mod not applied.",
    "cold ms: flexjit's first call in a fresh cache (dsl>ptx and ptx>cu are its parts); "
    "disk ms: disk-cache hit; mem us: host time of a cached launch; flex 1st s: torch's "
    "first call (compile).",
    "bm: block mask build (GPU) and bytes, flexjit (forward arrays) / torch (incl. backward "
    "transposes); dense MB: the [S,S] mask of fj-dn and sdpa-m.",
]
NOTE_KEYS = ("flexjit_dense_skipped", "flexjit_scoreonly_skipped", "torch_sdpa_mask_skipped",
             "torch_error")

BWD_COLUMNS = ID_COLUMNS + [
    ("fj ms", 8, lambda m: fmt(m.get("flexjit_bwd_ms"), ".3f", 8)),
    ("fj TF/s", 7, lambda m: fmt(m.get("flexjit_bwd_tflops"), ".0f", 7)),
    ("flex ms", 8, lambda m: fmt(m.get("torch_flex_bw_ms"), ".3f", 8)),
    ("flex TF/s", 9, lambda m: fmt(m.get("torch_flex_bw_tflops"), ".0f", 9)),
    ("fj/flex", 7, lambda m: fmt(m.get("ratio_fj_bwd_over_torch_flex_bwd"), ".2f", 7)),
    ("fj cold ms", 10, lambda m: fmt(m.get("flexjit_bwd_cold_first_call_ms"), ".0f", 10)),
    ("flex 1st s", 10, lambda m: fmt(m.get("torch_flex_bwd_first_call_s"), ".2f", 10)),
    ("fj nonfin", 9, lambda m: fmt(m.get("flexjit_bwd_nonfinite"), "d", 9)),
    ("flex err", 8, lambda m: fmt(max_or_none(*(m.get(f"torch_flex_d{n}_rel_err")
                                                for n in "qkv")), ".0e", 8)),
]
BWD_NOTES = [
    "Backward, flexjit block-sparse (its --bwd) vs torch flex_attention (torch.compile, "
    "out.backward(g) as in ANCHORS.md); TF/s by 10*density*B*H*S^2*D/t; fj/flex = flex's time "
    "/ fj's time (above 1 flexjit is faster).",
    "fj cold ms: flexjit's first backward call (compile included); flex 1st s: torch's first "
    "backward call (its compile; the grad-enabled forward's first call is in merged.json).",
    "fj nonfin: non-finite elements of flexjit's dq, dk, dv (their values are checked by the "
    "[gpu][backward] tests); flex err: the worst of torch's dq, dk, dv vs float64 on "
    "(b=0, h=0..1).",
]
BWD_NOTE_KEYS = ("torch_error",)


def max_or_none(*vs):
    vs = [v for v in vs if isinstance(v, (int, float))]
    return max(vs) if vs else None


def kb(v):
    return v / 1024 if isinstance(v, (int, float)) and v else None


def mb(v):
    return v / 2**20 if isinstance(v, (int, float)) and v else None


def has_backward(m):
    """Whether flexjit or torch timed this merged row's backward."""
    return m.get("flexjit_bwd_ms") is not None or m.get("torch_flex_bw_ms") is not None


def table(merged, columns=COLUMNS, notes=NOTES, note_keys=NOTE_KEYS):
    lines = [" ".join(h.rjust(w) if i > 4 else h.ljust(w) for i, (h, w, _) in enumerate(columns))]
    for m in merged:
        lines.append(" ".join((f(m).rjust(w) if i > 4 else f(m).ljust(w))
                              for i, (_, w, f) in enumerate(columns)))
    notes = list(notes)
    grouped = {}  # one note per message, naming the rows it applies to
    for m in merged:
        for k in note_keys:
            if m.get(k):
                grouped.setdefault((k, m[k]), []).append(
                    f"{m['case']} S={m['S']} D={m['D']}"
                    + (f"/{v_dim(m)}" if v_dim(m) != int(m["D"]) else ""))
    for (k, msg), rows in grouped.items():
        notes.append(f"{k} ({', '.join(rows)}): {msg}")
    return "\n".join(lines + [""] + notes)


# ---- plot ------------------------------------------------------------------------------------

SERIES = [("flexjit", "flexjit_fwd_tflops", (31, 119, 180)),
          ("flexjit dense", "flexjit_dense_fwd_tflops", (174, 199, 232)),
          ("flexjit score_mod", "flexjit_scoreonly_fwd_tflops", (23, 190, 207)),
          ("torch flex", "torch_flex_fw_tflops", (255, 127, 14)),
          ("sdpa", "torch_sdpa_tflops", (44, 160, 44)),
          ("sdpa dense mask", "torch_sdpa_mask_tflops", (214, 39, 40))]


SHORT = {"sliding_window": "sliding win", "alibi_causal": "alibi+causal",
         "softcap_causal": "softcap+caus"}


def label(m, short=False):
    name = SHORT.get(m["case"], m["case"]) if short else m["case"]
    return f"{name}\nD{m['D']} S{m['S']}"


def plot(merged, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception:
        png_bar_chart(merged, path, title)
        return "built-in PNG writer (matplotlib not importable)"
    n, k = len(merged), len(SERIES)
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * n + 2), 5.5))
    width = 0.8 / k
    for j, (name, field, rgb) in enumerate(SERIES):
        xs = [i + (j - (k - 1) / 2) * width for i in range(n)]
        ys = [m.get(field) or 0 for m in merged]
        ax.bar(xs, ys, width, label=name, color=[c / 255 for c in rgb])
    ax.set_xticks(range(n))
    ax.set_xticklabels([label(m) for m in merged], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("TF/s (4*density*B*H*S^2*D / t)")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=3)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return "matplotlib"


# A 5x7 bitmap font for the built-in writer (lower case drawn as upper case).
_FONT_ROWS = {
    "A": "01110 10001 10001 11111 10001 10001 10001", "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110", "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111", "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111", "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110", "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001", "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001", "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110", "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101", "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110", "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110", "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010", "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 01010 00100 00100 00100 00100", "Z": "11111 00001 00010 00100 01000 10000 11111",
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    " ": "00000 00000 00000 00000 00000 00000 00000", ".": "00000 00000 00000 00000 00000 01100 01100",
    "-": "00000 00000 00000 11111 00000 00000 00000", "_": "00000 00000 00000 00000 00000 00000 11111",
    "/": "00001 00010 00010 00100 01000 01000 10000", "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000", ":": "00000 01100 01100 00000 01100 01100 00000",
    "=": "00000 00000 11111 00000 11111 00000 00000", "+": "00000 00100 00100 11111 00100 00100 00000",
    ",": "00000 00000 00000 00000 01100 00100 01000", "*": "00000 00100 10101 01110 10101 00100 00000",
    "^": "00100 01010 10001 00000 00000 00000 00000", "?": "01110 10001 00001 00010 00100 00000 00100",
}
FONT = {ch: [int(r, 2) for r in rows.split()] for ch, rows in _FONT_ROWS.items()}


class Canvas:
    def __init__(self, w, h):
        self.w, self.h = w, h
        self.px = bytearray(b"\xff" * (w * h * 3))

    def rect(self, x0, y0, x1, y1, rgb):
        x0, x1 = max(0, min(x0, x1)), min(self.w, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.h, max(y0, y1))
        row = bytes(rgb) * (x1 - x0)
        for y in range(y0, y1):
            i = (y * self.w + x0) * 3
            self.px[i:i + len(row)] = row

    def text(self, x, y, s, rgb=(0, 0, 0), scale=1):
        for ch in s:
            glyph = FONT.get(ch.upper(), FONT["?"])
            for gy, bits in enumerate(glyph):
                for gx in range(5):
                    if bits >> (4 - gx) & 1:
                        self.rect(x + gx * scale, y + gy * scale, x + (gx + 1) * scale,
                                  y + (gy + 1) * scale, rgb)
            x += 6 * scale

    def png(self):
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3])
                       for y in range(self.h))

        def chunk(tag, data):
            return (struct.pack(">I", len(data)) + tag + data
                    + struct.pack(">I", zlib.crc32(tag + data) & 0xffffffff))
        return (b"\x89PNG\r\n\x1a\n"
                + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def png_bar_chart(merged, path, title):
    n, k = max(1, len(merged)), len(SERIES)
    bar, gap = 11, 24
    group = k * bar + gap
    left, right, top, bottom = 60, 20, 70, 50
    W, H = left + n * group + right, 460
    c = Canvas(W, H)
    plot_h = H - top - bottom
    vmax = max([m.get(f) or 0 for m in merged for _, f, _ in SERIES] + [1])
    step = next(s for s in (10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10**9)
                if vmax / s <= 8)
    vtop = math.ceil(vmax / step) * step
    y_of = lambda v: top + plot_h - int(round(plot_h * v / vtop))
    for t in range(0, int(vtop) + 1, step):  # grid and y labels
        c.rect(left, y_of(t), W - right, y_of(t) + 1, (225, 225, 225))
        c.text(left - 6 - 6 * len(str(t)), y_of(t) - 3, str(t))
    c.rect(left, top, left + 1, top + plot_h + 1, (0, 0, 0))
    c.rect(left, top + plot_h, W - right, top + plot_h + 1, (0, 0, 0))
    c.text(left, 8, title[: (W - left) // 12], scale=2)
    c.text(4, top - 12, "TF/S")
    x = left + 160  # legend
    for name, _, rgb in SERIES:
        c.rect(x, 34, x + 10, 44, rgb)
        c.text(x + 14, 36, name)
        x += 14 + 6 * len(name) + 16
    for i, m in enumerate(merged):
        x0 = left + i * group + gap // 2
        for j, (_, f, rgb) in enumerate(SERIES):
            v = m.get(f)
            if v:
                c.rect(x0 + j * bar, y_of(v), x0 + (j + 1) * bar - 1, top + plot_h, rgb)
        chars = (group - 6) // 6
        for li, text in enumerate(label(m, short=True).split("\n")):
            c.text(x0 - gap // 2 + 2, top + plot_h + 6 + 10 * li, text[:chars])
    with open(path, "wb") as f:
        f.write(c.png())


# ---- main ------------------------------------------------------------------------------------

def read_jsonl(paths):
    rows = []
    for p in paths:
        with open(p) as f:
            rows += [json.loads(l) for l in f if l.strip()]
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flexjit", action="append", default=[],
                    help="flexjit_attention_bench JSON lines (repeatable)")
    ap.add_argument("--torch-json", action="append", default=[],
                    help="torch rows from an earlier run: merge only, nothing measured")
    ap.add_argument("--no-torch", action="store_true",
                    help="measure nothing: flexjit's columns alone (no torch on this machine)")
    ap.add_argument("--out", default=os.environ.get("OUT", "."), help="output directory")
    ap.add_argument("--dense-max-S", type=int, default=16384,
                    help="skip the dense-mask SDPA above this S (default 16384)")
    ap.add_argument("--case", default="", help="only these variants (comma-separated)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)

    fj_rows = [r for r in read_jsonl(a.flexjit) if "fwd_ms" in r or "dense_fwd_ms" in r
               or "scoreonly_fwd_ms" in r]
    cases = [dict(case=r["case"], B=r["B"], H=r["H"], S=r["S"], D=r["D"], Dv=v_dim(r),
                  dtype=r["dtype"], bwd="bwd_ms" in r) for r in fj_rows] or default_cases()
    if a.case:
        cases = [c for c in cases if c["case"] in a.case.split(",")]
    unique = {}  # one torch measurement per shape (the head-dim rows repeat an anchor's)
    for c in cases:
        kept = unique.setdefault(key(c), c)
        kept["bwd"] = kept.get("bwd") or c.get("bwd")
    cases = list(unique.values())
    if a.no_torch:
        torch_rows, device = [], "torch not measured"
    elif a.torch_json:
        torch_rows = read_jsonl(a.torch_json)
        device = "(torch rows from " + ", ".join(a.torch_json) + ")"
    else:
        with open(os.path.join(a.out, "torch.jsonl"), "w") as sink:
            torch_rows = measure_torch(cases, a.dense_max_S, sink)
        import torch
        device = f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    if not fj_rows:  # torch alone: still the tables, flexjit columns empty
        fj_rows = [{k: v for k, v in c.items() if k != "bwd"} for c in cases]
    merged = merge(fj_rows, torch_rows)
    order = {n: i for i, n in enumerate(VARIANTS)}
    merged.sort(key=lambda m: (m["D"], v_dim(m), str(m["dtype"]), m["S"] != 8192, m["S"],
                               order.get(m["case"], 99)))
    if a.case:
        merged = [m for m in merged if m["case"] in a.case.split(",")]
    print()
    print(f"flexjit vs torch, forward, {device}")
    print(table(merged))
    bwd = [m for m in merged if has_backward(m)]
    if bwd:
        print()
        print(f"flexjit vs torch, backward, {device}")
        print(table(bwd, BWD_COLUMNS, BWD_NOTES, BWD_NOTE_KEYS))
    with open(os.path.join(a.out, "merged.json"), "w") as f:
        json.dump({"device": device, "rows": merged}, f, indent=1)
    how = plot(merged, os.path.join(a.out, "bench.png"), f"forward TF/s - {device}")
    print(f"\nwrote {a.out}/merged.json and {a.out}/bench.png ({how})")


if __name__ == "__main__":
    main()
