"""flex_attention with torch.nn.attention.flex_attention's signature and semantics, on
flexjit's kernels, and its backward through torch.autograd."""

import collections
import ctypes

from . import _lib, _tensors
from .mods import Bindings, compile_mod, needs_bindings
from .tracing import TracedMod, trace_score_mod

# torch >= 2.9's return_aux answer.
AuxOutput = collections.namedtuple("AuxOutput", ["lse", "max_scores"])


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("flexjit.flex_attention works on torch tensors; torch is not installed")
    return torch


def _prepared(t, what):
    """t itself when the kernels can read it in place (head dim contiguous, no stride-0
    dimension, 16-byte aligned data, strides multiples of 8 elements), else a contiguous copy."""
    sizes, strides = t.shape, t.stride()
    ok = strides[-1] == 1 and t.data_ptr() % 16 == 0
    for size, stride in zip(sizes[:-1], strides[:-1]):
        if size > 1 and (stride == 0 or stride % 8 != 0):
            ok = False
    return t if ok else t.contiguous()


def _check_inputs(torch, q, k, v):
    for name, t in (("query", q), ("key", k), ("value", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError("%s must be a torch.Tensor, got %s" % (name, type(t).__name__))
        if t.dim() != 4:
            raise ValueError("%s must be 4-D [B, H, S, E], got shape %s" % (name, tuple(t.shape)))
        if t.device.type != "cuda":
            raise ValueError("%s must be on a CUDA device (flexjit's kernels run on the GPU), "
                             "got %s" % (name, t.device))
        if t.dtype not in (torch.float16, torch.bfloat16):
            raise TypeError("%s must be float16 or bfloat16, got %s" % (name, t.dtype))
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError("query, key and value must have one dtype, got %s, %s and %s"
                        % (q.dtype, k.dtype, v.dtype))
    if not (q.device == k.device == v.device):
        raise ValueError("query, key and value must be on one device, got %s, %s and %s"
                         % (q.device, k.device, v.device))


class _Call:
    """What one flex_attention call binds: the score_mod, block mask, bindings, scale; used by
    the forward and again by the backward."""

    def __init__(self, torch, device, score_traced, block_mask, scale):
        self.torch = torch
        self.device = device
        self.score_traced = score_traced
        self.score_mod = compile_mod("score", score_traced.text) if score_traced else None
        self.block_mask = block_mask
        self.scale = scale
        mask_traced = block_mask.traced if block_mask is not None else None
        if needs_bindings(mask_traced, score_traced):
            moved = block_mask._moved if block_mask is not None else {}
            self.bindings = Bindings([mask_traced, score_traced], "cuda", moved, mask_traced)
        else:
            self.bindings = None

    def options(self, lse_view):
        L = _lib.lib()
        o = _lib.flexjit_attention_options()
        L.flexjit_attention_options_init(ctypes.byref(o))
        o.score_mod = self.score_mod.handle.value if self.score_mod is not None else None
        o.block_mask = self.block_mask.handle.value if self.block_mask is not None else None
        if self.scale is not None:
            o.has_scale = 1
            o.scale = float(self.scale)
        o.lse = ctypes.pointer(lse_view) if lse_view is not None else None
        o.stream = self.torch.cuda.current_stream(self.device).cuda_stream or None
        o.bindings = self.bindings.handle.value if self.bindings is not None else None
        return o

    def forward(self, q, k, v):
        torch = self.torch
        B, Hq, L_, _ = q.shape
        out = torch.empty((B, Hq, L_, v.shape[-1]), dtype=q.dtype, device=q.device)
        lse = torch.empty((B, Hq, L_), dtype=torch.float32, device=q.device)
        keep = []
        views = [_tensors.view(t, keep, name) for t, name in
                 ((q, "query"), (k, "key"), (v, "value"), (out, "out"))]
        lse_view = _tensors.view(lse, keep, "lse")
        options = self.options(lse_view)
        with torch.cuda.device(self.device):
            _lib.check(_lib.lib().flexjit_flex_attention(
                ctypes.byref(views[0]), ctypes.byref(views[1]), ctypes.byref(views[2]),
                ctypes.byref(views[3]), ctypes.byref(options)))
        return out, lse

    def backward(self, q, k, v, out, lse, d_out):
        torch = self.torch
        d_out = _prepared(d_out, "grad_out")
        dq = torch.empty_like(q, memory_format=torch.contiguous_format)
        dk = torch.empty_like(k, memory_format=torch.contiguous_format)
        dv = torch.empty_like(v, memory_format=torch.contiguous_format)
        keep = []
        views = [_tensors.view(t, keep, name) for t, name in
                 ((q, "query"), (k, "key"), (v, "value"), (out, "out"), (d_out, "grad_out"),
                  (dq, "dq"), (dk, "dk"), (dv, "dv"))]
        lse_view = _tensors.view(lse, keep, "lse")
        options = self.options(lse_view)
        with torch.cuda.device(self.device):
            _lib.check(_lib.lib().flexjit_flex_attention_backward(
                *[ctypes.byref(x) for x in views], ctypes.byref(options)))
        return dq, dk, dv


_Function = None


def _function_class(torch):
    global _Function
    if _Function is None:
        class FlexAttentionFunction(torch.autograd.Function):
            """out, lse = flex_attention(q, k, v); backward: dq, dk, dv through
            flexjit_flex_attention_backward with the saved lse. lse is not differentiable,
            nor are captured buffers (their gradients are not computed)."""

            @staticmethod
            def forward(ctx, q, k, v, call):
                out, lse = call.forward(q, k, v)
                ctx.save_for_backward(q, k, v, out, lse)
                ctx.call = call
                ctx.mark_non_differentiable(lse)
                return out, lse

            @staticmethod
            def backward(ctx, d_out, d_lse):
                del d_lse  # lse is marked non-differentiable
                q, k, v, out, lse = ctx.saved_tensors
                dq, dk, dv = ctx.call.backward(q, k, v, out, lse, d_out)
                return dq, dk, dv, None

        _Function = FlexAttentionFunction
    return _Function


def flex_attention(query, key, value, score_mod=None, block_mask=None, scale=None,
                   enable_gqa=False, return_lse=False, kernel_options=None, *, return_aux=None):
    """torch.nn.attention.flex_attention.flex_attention on flexjit's kernels.

    query [B, Hq, L, E], key [B, Hkv, S, E], value [B, Hkv, S, Ev]: CUDA float16 or bfloat16
    tensors (the head dim contiguous; any other layout, a stride-0 (expanded) dimension or an
    unaligned pointer is copied to a contiguous tensor first). score_mod(score, b, h, q_idx,
    kv_idx) is traced (flexjit.tracing); block_mask from flexjit.create_block_mask (its
    lengths must be L and S). scale: default 1/sqrt(E). enable_gqa: Hq may be a multiple of Hkv
    (without it, Hq != Hkv is an error, as in torch). return_lse: also the logsumexp, float32
    [B, Hq, L], natural log (-inf for a row nothing attends; its output row is 0).
    return_aux: an object with a true `lse` attribute (torch's AuxRequest(lse=True)) gives
    (out, AuxOutput(lse, None)). kernel_options is accepted and ignored.

    Differentiable in query, key and value (torch.autograd); not in the lse or in captured
    buffers. Runs on torch's current CUDA stream of the query's device."""
    del kernel_options
    torch = _torch()
    _check_inputs(torch, query, key, value)
    B, Hq, L, E = query.shape
    Bk, Hkv, S, Ek = key.shape
    if tuple(value.shape[:3]) != (Bk, Hkv, S):
        raise ValueError("key %s and value %s must agree in B, H and S"
                         % (tuple(key.shape), tuple(value.shape)))
    if Ek != E:
        raise ValueError("query and key must have one head dim, got %d and %d" % (E, Ek))
    if Hq != Hkv:
        if not enable_gqa:
            raise ValueError("Expect query and key/value to have the same number of heads but "
                             "got Hq=%d and Hkv=%d. Try setting enable_gqa=True for GQA."
                             % (Hq, Hkv))
        if Hkv == 0 or Hq % Hkv != 0:
            raise ValueError("Expect number of query heads to be a multiple of kv heads for GQA "
                             "but got Hq=%d and Hkv=%d." % (Hq, Hkv))
    if block_mask is not None:
        from .block_mask import BlockMask

        if not isinstance(block_mask, BlockMask):
            raise TypeError("block_mask must be a flexjit BlockMask (flexjit.create_block_mask), "
                            "got %s" % type(block_mask).__name__)
        bq, bkv = block_mask.seq_lengths
        if (bq, bkv) != (L, S):
            raise ValueError("block_mask was created for (Q_LEN, KV_LEN) = (%d, %d) but the "
                             "query and key lengths are (%d, %d)" % (bq, bkv, L, S))
    inherited = block_mask.traced.buffers if block_mask is not None else ()
    if score_mod is None:
        score_traced = None
    elif isinstance(score_mod, str):
        score_traced = TracedMod("score", score_mod, [], {})
    else:
        score_traced = trace_score_mod(score_mod, inherited)
    want_lse = return_lse or (return_aux is not None and getattr(return_aux, "lse", False))
    call = _Call(torch, query.device, score_traced, block_mask, scale)
    q = _prepared(query, "query")
    k = _prepared(key, "key")
    v = _prepared(value, "value")
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        out, lse = _function_class(torch).apply(q, k, v, call)
    else:
        out, lse = call.forward(q, k, v)
    if return_aux is not None:
        return out, AuxOutput(lse if want_lse else None, None)
    if return_lse:
        return out, lse
    return out
