"""flexjit: PyTorch FlexAttention's API on flexjit's JIT-compiled kernels.

Pure Python over libflexjit.so's C API (ctypes). Python mask_mod / score_mod functions are
traced into flexjit's text language (flexjit.tracing); the library compiles them.

    import flexjit
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx
    block_mask = flexjit.create_block_mask(causal, None, None, 8192, 8192, device="cuda")
    out = flexjit.flex_attention(q, k, v, block_mask=block_mask)

Importing needs no library: tracing works without it, and the first call that needs the library
loads it (flexjit._lib: $FLEXJIT_LIBRARY, the installed copy, the system loader) or raises
flexjit.LibraryNotFoundError saying where it looked.
"""

from ._lib import (CudaUnavailableError, FlexJitError, LibraryNotFoundError, available,
                   cuda_available, cuda_unavailable_reason)
from .attention import AuxOutput, flex_attention
from .block_mask import BlockMask, create_block_mask
from .mods import CompiledMod, compile_mask_mod, compile_score_mod
from .tracing import (Param, TracedMod, TracedValue, and_masks, buffer, clamp, cos, exp, exp2, log,
                      log2, maximum, minimum, noop_mask, or_masks, rsqrt, sigmoid, sin, sqrt, tanh,
                      tanh_approx, trace_mask_mod, trace_score_mod, where)

__version__ = "0.1.0"

__all__ = [
    "flex_attention", "create_block_mask", "BlockMask", "AuxOutput",
    "trace_mask_mod", "trace_score_mod", "TracedMod", "TracedValue", "Param", "buffer",
    "compile_mask_mod", "compile_score_mod", "CompiledMod",
    "where", "minimum", "maximum", "clamp", "exp", "exp2", "log", "log2", "sqrt", "rsqrt", "tanh",
    "tanh_approx", "sin", "cos", "sigmoid", "and_masks", "or_masks", "noop_mask",
    "FlexJitError", "CudaUnavailableError", "LibraryNotFoundError", "available",
    "cuda_available", "cuda_unavailable_reason",
]
