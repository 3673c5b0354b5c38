"""Mods in the library: text -> flexjit_mod handles (cached by text), and call-time bindings of
the buffers and params that traced mods captured."""

import collections
import ctypes
import threading

from . import _lib, _tensors
from .tracing import TracedMod, trace_mask_mod, trace_score_mod


class CompiledMod:
    """A flexjit_mod handle: a mask_mod or score_mod parsed by the library."""

    def __init__(self, kind, text):
        L = _lib.lib()
        handle = ctypes.c_void_p()
        fn = L.flexjit_mask_mod_from_text if kind == "mask" else L.flexjit_score_mod_from_text
        _lib.check(fn(text.encode("utf-8"), ctypes.byref(handle)))
        self._lib = L
        self.handle = handle
        self.kind = kind
        self.source_text = text

    @property
    def text(self):
        """The canonical text (the library's print of the parsed mod)."""
        return _lib.read_string(self._lib.flexjit_mod_text, self.handle)

    @property
    def hash(self):
        """The structural hash: the kernel cache's key of the mod."""
        return int(self._lib.flexjit_mod_hash(self.handle))

    @property
    def signature(self):
        """The buffers and params the mod reads: "buffer NAME DTYPE RANK" / "param NAME TYPE"
        lines."""
        return _lib.read_string(self._lib.flexjit_mod_signature, self.handle)

    def is_mask(self):
        return bool(self._lib.flexjit_mod_is_mask(self.handle))

    def __del__(self):
        handle = getattr(self, "handle", None)
        if handle is not None and handle.value:
            try:
                self._lib.flexjit_mod_destroy(handle)
            except Exception:  # interpreter shutdown
                pass
            self.handle = None

    def __repr__(self):
        return "CompiledMod(%s, %r)" % (self.kind, self.source_text)


_cache_lock = threading.Lock()
_cache = collections.OrderedDict()
_CACHE_SIZE = 512


def compile_mod(kind, text):
    """The CompiledMod of a text (one per (kind, text), the last 512 kept)."""
    key = (kind, text)
    with _cache_lock:
        mod = _cache.get(key)
        if mod is not None:
            _cache.move_to_end(key)
            return mod
    mod = CompiledMod(kind, text)
    with _cache_lock:
        _cache[key] = mod
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)  # destroyed when its last user lets go
    return mod


def compile_mask_mod(mask_mod):
    """A mask_mod (function, TracedMod or text) parsed by the library."""
    if isinstance(mask_mod, str):
        return compile_mod("mask", mask_mod)
    return compile_mod("mask", trace_mask_mod(mask_mod).text)


def compile_score_mod(score_mod):
    """A score_mod (function, TracedMod or text) parsed by the library."""
    if isinstance(score_mod, str):
        return compile_mod("score", score_mod)
    return compile_mod("score", trace_score_mod(score_mod).text)


def _on_device(obj, device, what):
    """obj where the call reads it: itself when already there, else a copy (torch)."""
    info = _tensors.describe(obj)
    if info.device == device:
        return obj
    try:
        import torch
    except ImportError:
        raise ValueError("%s is in %s memory but the call needs it in %s memory (moving it "
                         "needs torch)" % (what, info.device, device))
    if not _tensors.is_torch_tensor(obj):
        obj = torch.from_dlpack(obj) if info.kind == "dlpack" else torch.from_numpy(obj)
    return obj.to(device)


class Bindings:
    """A flexjit_bindings handle holding the traced mods' buffers (bound by name, no copy when
    they are already in `device`'s memory) and params; keeps what it points to alive."""

    def __init__(self, traced_mods, device, moved=None, cached=None):
        """`moved`: a dict (id of object, device) -> copy, to reuse copies across calls, for the
        buffers of `cached` (a TracedMod that keeps them alive: a block mask's)."""
        cacheable = {id(ref.obj) for ref in cached.buffers} if cached is not None else set()
        L = _lib.lib()
        self._lib = L
        self.handle = ctypes.c_void_p()
        _lib.check(L.flexjit_bindings_create(ctypes.byref(self.handle)))
        self.keepalive = []
        seen = {}
        params = {}
        for traced in traced_mods:
            if traced is None:
                continue
            for ref in traced.buffers:
                if ref.name in seen:
                    if seen[ref.name] is not ref.source:
                        raise ValueError("two different tensors are bound as buffer %r"
                                         % ref.name)
                    continue
                seen[ref.name] = ref.source
                obj = ref.obj
                key = (id(obj), device)
                use_cache = moved is not None and id(obj) in cacheable
                if use_cache and key in moved:
                    obj = moved[key]
                else:
                    copy = _on_device(obj, device, "captured buffer %s" % ref.name)
                    if use_cache and copy is not obj:
                        moved[key] = copy
                    obj = copy
                view = _tensors.view(obj, self.keepalive, "captured buffer %s" % ref.name)
                _lib.check(L.flexjit_bindings_set_buffer(self.handle, ref.name.encode(),
                                                         ctypes.byref(view)))
            for name, p in traced.params.items():
                if name in params and params[name] is not p:
                    raise ValueError("two different flexjit.Params are named %r" % name)
                params[name] = p
        for name, p in params.items():
            if p.type == "int":
                _lib.check(L.flexjit_bindings_set_param_i32(self.handle, name.encode(),
                                                            int(p.value)))
            else:
                _lib.check(L.flexjit_bindings_set_param_f32(self.handle, name.encode(),
                                                            float(p.value)))

    def __del__(self):
        handle = getattr(self, "handle", None)
        if handle is not None and handle.value:
            try:
                self._lib.flexjit_bindings_destroy(handle)
            except Exception:
                pass
            self.handle = None


def needs_bindings(*traced_mods):
    return any(t is not None and (t.buffers or t.params) for t in traced_mods)


__all__ = ["CompiledMod", "Bindings", "compile_mod", "compile_mask_mod", "compile_score_mod",
           "TracedMod"]
