"""The 16 ANCHORS cases in one place: shapes, mask and score mods, FLOP count.

Imported by bench/torch_flex_anchor.py (the ANCHORS.md measurements), bench/compare_torch.py
and bench/python_bench.py. Importing it needs neither torch nor a GPU: `masks(S, H)` imports
torch when called; `mods(S, H, doc, ops)` builds the same mods over any `doc` (a tensor or a
flexjit.buffer) and any `ops` namespace with exp2 and tanh (torch, or flexjit for tracing
without torch).
"""

# (B, H, S, D, dtype name): B=16 H=16 S=8192 D=64 float16 and B=4 H=16 S=8192 D=128 bfloat16.
SHAPES = [(16, 16, 8192, 64, "float16"), (4, 16, 8192, 128, "bfloat16")]
# The variants, in the order torch_flex_anchor.py runs them.
VARIANTS = ["noop", "causal", "sliding_window", "prefix_lm", "document", "natten",
            "alibi_causal", "softcap_causal"]

SLIDING_WINDOW, PREFIX = 1024, 2048
NATTEN_W, NATTEN_KH, NATTEN_KW = 128, 7, 7
SOFTCAP = 30.0


def cases():
    """The 16 cases: dicts case, B, H, S, D, dtype (shape-major, VARIANTS order)."""
    return [dict(case=name, B=B, H=H, S=S, D=D, dtype=dt)
            for (B, H, S, D, dt) in SHAPES for name in VARIANTS]


def attention_flops(density, B, H, S, D, Dv=None, backward=False):
    """The seed's FLOP count, which every bench here divides by: forward 2 * density *
    B*H*S^2 * (D + Dv) (4 * density * B*H*S^2*D when Dv = D), backward 2.5 times that (the
    seed's 10 * density * B*H*S^2*D)."""
    Dv = D if Dv is None else Dv
    fwd = 2 * density * B * H * (D + Dv) * S * S
    return 2.5 * fwd if backward else fwd


def document_bounds(S):
    """The document mask's documents: [bounds[i], bounds[i+1]) is document i (4 documents)."""
    return [0, S // 2, S // 2 + S // 8, S // 2 + S // 4, S]


def document_ids(S, device="cuda"):
    """int32 [S] document id of every position, a torch tensor on `device`."""
    import torch

    doc = torch.zeros(S, dtype=torch.int32, device=device)
    bounds = document_bounds(S)
    for i in range(len(bounds) - 1):
        doc[bounds[i]:bounds[i + 1]] = i
    return doc


def mods(S, H, doc, ops):
    """[(name, score_mod, mask_mod)] in VARIANTS order. doc: the document ids (indexed by q and
    kv); ops: where exp2 and tanh come from (torch, or flexjit)."""
    SW, PREFIX_ = SLIDING_WINDOW, PREFIX
    Wc, KH, KW = NATTEN_W, NATTEN_KH, NATTEN_KW
    Hc = S // Wc

    def causal(b, h, q, kv): return q >= kv
    def sliding_window(b, h, q, kv): return (q >= kv) & (q - kv <= SW)
    def prefix_lm(b, h, q, kv): return (kv <= PREFIX_) | (q >= kv)
    def document(b, h, q, kv): return (doc[q] == doc[kv]) & (q >= kv)

    def natten(b, h, q, kv):
        qx, qy = q // Wc, q % Wc
        kx, ky = kv // Wc, kv % Wc
        cx = qx.clamp(KH // 2, (Hc - 1) - KH // 2)
        cy = qy.clamp(KW // 2, (Wc - 1) - KW // 2)
        return ((cx - kx).abs() <= KH // 2) & ((cy - ky).abs() <= KW // 2)

    def alibi(score, b, h, q, kv):
        return score + ops.exp2(-((h + 1) * 8.0 / H)) * (kv - q)

    def softcap(score, b, h, q, kv):
        return SOFTCAP * ops.tanh(score / SOFTCAP)

    return [("noop", None, None), ("causal", None, causal), ("sliding_window", None, sliding_window),
            ("prefix_lm", None, prefix_lm), ("document", None, document), ("natten", None, natten),
            ("alibi_causal", alibi, causal), ("softcap_causal", softcap, causal)]


def masks(S, H):
    """torch_flex_anchor.py's masks(S, H): the mods over torch, the document ids on the GPU."""
    import torch

    return mods(S, H, document_ids(S), torch)


def reference_attention(qq, kk, vv, score_mod, mask_mod, rows):
    """float64 attention of qq ([1, 2, R, D]: the query rows `rows` of heads 0..1, float64 torch
    tensors on the GPU) over every key of kk, vv, the mods applied to index tensors: the
    reference of compare_torch.py and python_bench.py."""
    import math

    import torch

    S, D = kk.shape[2], kk.shape[3]
    s = qq @ kk.transpose(-1, -2) / math.sqrt(D)
    bi = torch.zeros(1, device="cuda", dtype=torch.int32).view(1, 1, 1, 1)
    hi = torch.arange(2, device="cuda", dtype=torch.int32).view(1, 2, 1, 1)
    qi = rows.to(torch.int32).view(1, 1, -1, 1)
    ki = torch.arange(S, device="cuda", dtype=torch.int32).view(1, 1, 1, S)
    if score_mod is not None:
        s = score_mod(s, bi, hi, qi, ki)
    if mask_mod is not None:
        s = s.masked_fill(~mask_mod(bi, hi, qi, ki), float("-inf"))
    return torch.softmax(s, -1) @ vv
