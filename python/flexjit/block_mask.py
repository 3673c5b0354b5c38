"""create_block_mask and BlockMask, as torch.nn.attention.flex_attention's."""

import ctypes

from . import _lib
from .mods import Bindings, compile_mod, needs_bindings
from .tracing import trace_mask_mod

_DEFAULT_SPARSE_BLOCK_SIZE = 128


def _device_type(device):
    """'cpu' or 'cuda' of a device spec (str, torch.device, None)."""
    if device is None:
        return "cuda"
    name = getattr(device, "type", None) or str(device)
    name = name.split(":")[0]
    if name not in ("cpu", "cuda"):
        raise ValueError("device must be 'cpu' or 'cuda', got %r" % (device,))
    return name


def _block_sizes(BLOCK_SIZE):
    if isinstance(BLOCK_SIZE, (tuple, list)):
        if len(BLOCK_SIZE) != 2:
            raise ValueError("BLOCK_SIZE is an int or a (Q_BLOCK, KV_BLOCK) pair, got %r"
                             % (BLOCK_SIZE,))
        return int(BLOCK_SIZE[0]), int(BLOCK_SIZE[1])
    return int(BLOCK_SIZE), int(BLOCK_SIZE)


class BlockMask:
    """The block-sparse structure of a mask_mod over [B, H, Q_LEN, KV_LEN] (torch's BlockMask):
    which (BLOCK_SIZE[0] x BLOCK_SIZE[1]) tiles are empty, partial or full. Made by
    create_block_mask; passed to flex_attention."""

    def __init__(self, handle, mask_mod, traced, device):
        self._lib = _lib.lib()
        self._handle = handle
        self.mask_mod = mask_mod
        self.traced = traced  # the TracedMod: text, buffers, params
        self.device = device  # where it was built: 'cpu' or 'cuda'
        info = _lib.flexjit_block_mask_info()
        _lib.check(self._lib.flexjit_block_mask_get_info(handle, ctypes.byref(info)))
        self._info = info
        self._moved = {}  # copies of captured buffers in other memory, for flex_attention

    @property
    def handle(self):
        return self._handle

    @property
    def shape(self):
        """(B, H, Q_LEN, KV_LEN)."""
        i = self._info
        return (i.B, i.H, i.q_len, i.kv_len)

    @property
    def seq_lengths(self):
        return (self._info.q_len, self._info.kv_len)

    @property
    def BLOCK_SIZE(self):
        return (self._info.q_block, self._info.kv_block)

    @property
    def num_blocks(self):
        """(number of q blocks, number of kv blocks)."""
        return (self._info.num_q_blocks, self._info.num_kv_blocks)

    @property
    def text(self):
        """The mask_mod's text in flexjit's language."""
        return self.traced.text

    def sparsity(self):
        """torch's BlockMask.sparsity(): the percentage of the B*H*Q_LEN*KV_LEN scores not
        computed, counting every non-empty tile as a whole BLOCK_SIZE[0] x BLOCK_SIZE[1] tile
        (edge tiles too, so it differs from the share of empty tiles when the lengths are not
        multiples of the block; torch 2.11's formula)."""
        i = self._info
        computed_tiles = (100.0 - i.sparsity) / 100.0 * i.num_q_blocks * i.num_kv_blocks
        return 100.0 * (1.0 - computed_tiles * i.q_block * i.kv_block / (i.q_len * i.kv_len))

    def to_string(self, grid_size=(20, 20), limit=4):
        """Torch's picture of the mask (one character pair per tile: full, partial, empty)."""
        grid = grid_size[0] if isinstance(grid_size, (tuple, list)) else grid_size
        return _lib.read_string(self._lib.flexjit_block_mask_to_string, self._handle, int(grid),
                                int(limit))

    def __str__(self):
        return self.to_string()

    def __repr__(self):
        B, H, L, S = self.shape
        return ("BlockMask(shape=(%d, %d, %d, %d), sparsity=%.2f%%, BLOCK_SIZE=%s, mask_mod=%s)"
                % (B, H, L, S, self.sparsity(), self.BLOCK_SIZE, self.traced.text))

    def states(self):
        """Every tile's state, 0 empty / 1 partial / 2 full, as a uint8 [B, H, num_q_blocks,
        num_kv_blocks] array: a torch tensor on the mask's device when torch is importable, else
        a numpy array (or a nested list without numpy)."""
        i = self._info
        shape = (i.B, i.H, i.num_q_blocks, i.num_kv_blocks)
        count = shape[0] * shape[1] * shape[2] * shape[3]
        buf = (ctypes.c_uint8 * count)()
        _lib.check(self._lib.flexjit_block_mask_states(self._handle, buf, count))
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            t = torch.frombuffer(bytearray(buf), dtype=torch.uint8).reshape(shape)
            return t.to(self.device) if self.device != "cpu" else t
        try:
            import numpy
        except ImportError:
            flat = list(buf)
            n3, n2 = shape[3], shape[2] * shape[3]
            return [[[flat[(bb * shape[1] + hh) * n2 + qq * n3:(bb * shape[1] + hh) * n2
                           + (qq + 1) * n3]
                      for qq in range(shape[2])] for hh in range(shape[1])]
                    for bb in range(shape[0])]
        return numpy.frombuffer(bytearray(buf), dtype=numpy.uint8).reshape(shape)

    def to_dense(self):
        """1 where a tile is computed (partial or full), else 0: int32 [B, H, num_q_blocks,
        num_kv_blocks], as torch's BlockMask.to_dense()."""
        s = self.states()
        if hasattr(s, "to") and hasattr(s, "dim"):  # torch
            import torch

            return (s != 0).to(torch.int32)
        if hasattr(s, "astype"):
            return (s != 0).astype("int32")
        return [[[[int(x != 0) for x in row] for row in m] for m in hh] for hh in s]

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            try:
                self._lib.flexjit_block_mask_destroy(handle)
            except Exception:
                pass
            self._handle = None


def create_block_mask(mask_mod, B, H, Q_LEN, KV_LEN, device="cuda", BLOCK_SIZE=128,
                      _compile=False):
    """torch.nn.attention.flex_attention.create_block_mask: the BlockMask of `mask_mod(b, h,
    q_idx, kv_idx) -> bool` over [B, H, Q_LEN, KV_LEN] (B, H None: 1, broadcast). device='cuda'
    classifies the tiles on the GPU (captured buffers must then be, or are copied to, device
    memory), 'cpu' on the host. BLOCK_SIZE: an int or a (Q_BLOCK, KV_BLOCK) pair (flex_attention
    needs Q_BLOCK a multiple of 128 and KV_BLOCK of 64). `mask_mod` may also be a TracedMod or a
    text in flexjit's language. _compile is accepted for torch compatibility and ignored."""
    from .tracing import TracedMod

    del _compile
    dev = _device_type(device)
    if isinstance(mask_mod, str):
        traced = TracedMod("mask", mask_mod, [], {})
    else:
        traced = trace_mask_mod(mask_mod)
    mod = compile_mod("mask", traced.text)
    B = 1 if B is None else int(B)
    H = 1 if H is None else int(H)
    q_block, kv_block = _block_sizes(BLOCK_SIZE)
    L = _lib.lib()
    options = _lib.flexjit_block_mask_options()
    L.flexjit_block_mask_options_init(ctypes.byref(options))
    options.q_block = q_block
    options.kv_block = kv_block
    options.device = _lib.FLEXJIT_CUDA if dev == "cuda" else _lib.FLEXJIT_HOST
    bindings = Bindings([traced], dev) if needs_bindings(traced) else None
    handle = ctypes.c_void_p()
    stream_guard = _device_guard(dev)
    with stream_guard:
        _lib.check(L.flexjit_create_block_mask(
            mod.handle, B, H, int(Q_LEN), int(KV_LEN), ctypes.byref(options),
            bindings.handle if bindings is not None else None, ctypes.byref(handle)))
    return BlockMask(handle, mask_mod, traced, dev)


class _NullGuard:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _device_guard(dev):
    """Before the GPU builder runs: torch's pending work on the current stream (a captured
    buffer just written or copied) is finished, since the builder does not run on torch's
    stream."""
    if dev != "cuda":
        return _NullGuard()
    try:
        import torch
    except ImportError:
        return _NullGuard()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.current_stream().synchronize()
    return _NullGuard()


