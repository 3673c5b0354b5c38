"""ctypes over include/flexjit/flexjit_c.h: the structs (mirrored field for field), the
library's discovery and loading, the prototypes, and status -> exception.

Nothing here loads the library at import: `lib()` loads it on first use, so that tracing works
without it. Where it looks, in order:

1. the environment variable FLEXJIT_LIBRARY (a path to libflexjit.so);
2. the path an installed copy records (_install_config.py, written by `cmake --install`:
   <prefix>/lib/python3/dist-packages/flexjit finds <prefix>/<libdir>/libflexjit.so);
3. libflexjit.so next to this package (a copy bundled into the package directory);
4. the source tree's build directory (<repo>/build/libflexjit.so, for python/ used in place);
5. the system loader's search for "libflexjit.so" (LD_LIBRARY_PATH, ldconfig's cache).
"""

import ctypes
import os
import threading

# ---- errors ---------------------------------------------------------------------------------


class FlexJitError(RuntimeError):
    """A failing flexjit call (FLEXJIT_ERROR, FLEXJIT_ERROR_INTERNAL): the library's message."""


class CudaUnavailableError(FlexJitError):
    """FLEXJIT_ERROR_NO_CUDA: the call needs a usable CUDA device."""


class LibraryNotFoundError(FlexJitError):
    """libflexjit.so was not found or could not be loaded; the message says where it looked."""


# ---- flexjit_c.h's constants ------------------------------------------------------------------

C_API_VERSION = 1  # FLEXJIT_C_API_VERSION this package was written against

FLEXJIT_OK = 0
FLEXJIT_ERROR = 1
FLEXJIT_ERROR_NO_CUDA = 2
FLEXJIT_ERROR_INTERNAL = 3

FLEXJIT_I32 = 0
FLEXJIT_F32 = 1
FLEXJIT_F16 = 2
FLEXJIT_BF16 = 3
FLEXJIT_BOOL = 4
DTYPE_CODES = {"i32": FLEXJIT_I32, "f32": FLEXJIT_F32, "f16": FLEXJIT_F16,
               "bf16": FLEXJIT_BF16, "bool": FLEXJIT_BOOL}

FLEXJIT_HOST = 0
FLEXJIT_CUDA = 1
FLEXJIT_AUTO = 2  # flexjit_block_mask_options.device only

FLEXJIT_MAX_RANK = 4

FLEXJIT_SCHEDULE_AUTO = 0
FLEXJIT_SCHEDULE_ONE_TILE_PER_CTA = 1
FLEXJIT_SCHEDULE_PERSISTENT = 2
FLEXJIT_SCHEDULE_SPLIT_KV = 3

# ---- structs ----------------------------------------------------------------------------------

c_int32 = ctypes.c_int32
c_int64 = ctypes.c_int64
c_void_p = ctypes.c_void_p


class flexjit_tensor(ctypes.Structure):
    _fields_ = [
        ("data", c_void_p),
        ("dtype", c_int32),
        ("device", c_int32),
        ("rank", c_int32),
        ("sizes", c_int64 * FLEXJIT_MAX_RANK),
        ("strides", c_int64 * FLEXJIT_MAX_RANK),
        ("dlpack", c_void_p),  # const DLManagedTensor*
    ]


class flexjit_block_mask_options(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("q_block", c_int32),
        ("kv_block", c_int32),
        ("device", c_int32),
        ("host_arrays", c_int32),
    ]


class flexjit_block_mask_info(ctypes.Structure):
    _fields_ = [
        ("B", c_int32),
        ("H", c_int32),
        ("q_len", c_int32),
        ("kv_len", c_int32),
        ("q_block", c_int32),
        ("kv_block", c_int32),
        ("num_q_blocks", c_int32),
        ("num_kv_blocks", c_int32),
        ("sparsity", ctypes.c_double),
    ]


class flexjit_kv_cache(ctypes.Structure):
    _fields_ = [
        ("kv_lens", ctypes.POINTER(flexjit_tensor)),
        ("block_table", ctypes.POINTER(flexjit_tensor)),
        ("page_size", c_int32),
    ]


class flexjit_attention_options(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("score_mod", c_void_p),  # flexjit_mod
        ("block_mask", c_void_p),  # flexjit_block_mask
        ("has_scale", c_int32),
        ("scale", ctypes.c_float),
        ("lse", ctypes.POINTER(flexjit_tensor)),
        ("stream", c_void_p),
        ("bindings", c_void_p),  # flexjit_bindings
        ("schedule", c_int32),
        ("kv_cache", ctypes.POINTER(flexjit_kv_cache)),
    ]


class flexjit_varlen_options(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("max_seqlen_q", c_int32),
        ("max_seqlen_k", c_int32),
        ("softmax_scale", ctypes.c_float),
        ("causal", c_int32),
        ("window_left", c_int32),
        ("window_right", c_int32),
        ("softcap", ctypes.c_float),
        ("alibi_slopes", ctypes.POINTER(flexjit_tensor)),
        ("deterministic", c_int32),
        ("dropout_p", ctypes.c_float),
        ("lse", ctypes.POINTER(flexjit_tensor)),
        ("mask_mod", c_void_p),
        ("score_mod", c_void_p),
        ("bindings", c_void_p),
        ("stream", c_void_p),
    ]


# ---- prototypes -------------------------------------------------------------------------------

_T = ctypes.POINTER(flexjit_tensor)
_status = ctypes.c_int  # flexjit_status (an enum: int)
_size_p = ctypes.POINTER(ctypes.c_size_t)

# name: (restype, argtypes)
PROTOTYPES = {
    "flexjit_last_error": (ctypes.c_char_p, []),
    "flexjit_api_version": (ctypes.c_int, []),
    "flexjit_cuda_available": (ctypes.c_int, []),
    "flexjit_cuda_unavailable_reason": (ctypes.c_char_p, []),
    "flexjit_tensor_from_dlpack": (_status, [c_void_p, _T]),
    "flexjit_mask_mod_from_text": (_status, [ctypes.c_char_p, ctypes.POINTER(c_void_p)]),
    "flexjit_score_mod_from_text": (_status, [ctypes.c_char_p, ctypes.POINTER(c_void_p)]),
    "flexjit_mod_is_mask": (ctypes.c_int, [c_void_p]),
    "flexjit_mod_text": (_status, [c_void_p, ctypes.c_char_p, ctypes.c_size_t, _size_p]),
    "flexjit_mod_hash": (ctypes.c_uint64, [c_void_p]),
    "flexjit_mod_signature": (_status, [c_void_p, ctypes.c_char_p, ctypes.c_size_t, _size_p]),
    "flexjit_mod_destroy": (None, [c_void_p]),
    "flexjit_bindings_create": (_status, [ctypes.POINTER(c_void_p)]),
    "flexjit_bindings_set_buffer": (_status, [c_void_p, ctypes.c_char_p, _T]),
    "flexjit_bindings_set_param_i32": (_status, [c_void_p, ctypes.c_char_p, c_int32]),
    "flexjit_bindings_set_param_f32": (_status, [c_void_p, ctypes.c_char_p, ctypes.c_float]),
    "flexjit_bindings_destroy": (None, [c_void_p]),
    "flexjit_block_mask_options_init": (None, [ctypes.POINTER(flexjit_block_mask_options)]),
    "flexjit_create_block_mask": (_status, [c_void_p, c_int32, c_int32, c_int32, c_int32,
                                            ctypes.POINTER(flexjit_block_mask_options),
                                            c_void_p, ctypes.POINTER(c_void_p)]),
    "flexjit_block_mask_get_info": (_status, [c_void_p, ctypes.POINTER(flexjit_block_mask_info)]),
    "flexjit_block_mask_to_string": (_status, [c_void_p, c_int32, c_int32, ctypes.c_char_p,
                                               ctypes.c_size_t, _size_p]),
    "flexjit_block_mask_states": (_status, [c_void_p, ctypes.POINTER(ctypes.c_uint8),
                                            ctypes.c_size_t]),
    "flexjit_block_mask_destroy": (None, [c_void_p]),
    "flexjit_attention_options_init": (None, [ctypes.POINTER(flexjit_attention_options)]),
    "flexjit_flex_attention": (_status, [_T, _T, _T, _T,
                                         ctypes.POINTER(flexjit_attention_options)]),
    "flexjit_flex_attention_backward": (_status, [_T, _T, _T, _T, _T, _T, _T, _T,
                                                  ctypes.POINTER(flexjit_attention_options)]),
    "flexjit_append_kv_cache": (_status, [_T, _T, _T, _T, ctypes.POINTER(flexjit_kv_cache),
                                          c_void_p]),
    "flexjit_check_device_errors": (_status, [c_void_p]),
    "flexjit_varlen_options_init": (None, [ctypes.POINTER(flexjit_varlen_options)]),
    "flexjit_attention_forward_varlen": (_status, [_T, _T, _T, _T, _T, _T,
                                                   ctypes.POINTER(flexjit_varlen_options)]),
    "flexjit_merge_attention": (_status, [_T, _T, _T, _T, _T, _T, c_void_p]),
}

# ---- loading ----------------------------------------------------------------------------------

_lock = threading.Lock()
_lib = None
_load_error = None


def candidate_paths():
    """Where lib() looks, in order: (description, path or loader name)."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    env = os.environ.get("FLEXJIT_LIBRARY")
    if env:
        out.append(("$FLEXJIT_LIBRARY", env))
    try:
        from . import _install_config  # written by cmake --install

        out.append(("the installed copy's library",
                    os.path.normpath(os.path.join(here, _install_config.LIBRARY_RELPATH))))
    except ImportError:
        pass
    out.append(("next to the package", os.path.join(here, "libflexjit.so")))
    out.append(("the source tree's build directory",
                os.path.normpath(os.path.join(here, "..", "..", "build", "libflexjit.so"))))
    out.append(("the system loader", "libflexjit.so"))
    return out


def _load():
    tried = []
    env_set = bool(os.environ.get("FLEXJIT_LIBRARY"))
    for what, path in candidate_paths():
        is_name = os.sep not in path
        if not is_name and not os.path.exists(path):
            tried.append("%s: %s (not there)" % (what, path))
            if what == "$FLEXJIT_LIBRARY":
                break  # an explicit choice is not second-guessed
            continue
        try:
            handle = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s: %s (%s)" % (what, path, e))
            if what == "$FLEXJIT_LIBRARY":
                break
            continue
        for name, (restype, argtypes) in PROTOTYPES.items():
            fn = getattr(handle, name, None)
            if fn is None:
                raise LibraryNotFoundError(
                    "%s (%s) has no %s: a library older than this package's C API (version %d)"
                    % (path, what, name, C_API_VERSION))
            fn.restype = restype
            fn.argtypes = argtypes
        version = handle.flexjit_api_version()
        if version != C_API_VERSION:
            raise LibraryNotFoundError(
                "%s (%s) implements flexjit's C API version %d; this package needs version %d"
                % (path, what, version, C_API_VERSION))
        handle.flexjit_path = path
        return handle
    hint = "" if env_set else "; set FLEXJIT_LIBRARY to the path of libflexjit.so"
    raise LibraryNotFoundError(
        "libflexjit.so could not be loaded; looked at: %s%s" % ("; ".join(tried), hint))


def lib():
    """The loaded library (loaded on first call); raises LibraryNotFoundError."""
    global _lib, _load_error
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            if _load_error is not None:
                raise LibraryNotFoundError(str(_load_error))
            try:
                _lib = _load()
            except LibraryNotFoundError as e:
                _load_error = e
                raise
    return _lib


def available():
    """Whether libflexjit.so can be loaded."""
    try:
        lib()
        return True
    except LibraryNotFoundError:
        return False


def _reset_for_tests():
    global _lib, _load_error
    with _lock:
        _lib = None
        _load_error = None


def check(status):
    """Raises the exception for a flexjit_status (the library's message)."""
    if status == FLEXJIT_OK:
        return
    message = lib().flexjit_last_error()
    message = message.decode("utf-8", "replace") if message else "(no message)"
    if status == FLEXJIT_ERROR_NO_CUDA:
        raise CudaUnavailableError(message)
    if status == FLEXJIT_ERROR_INTERNAL:
        raise FlexJitError("internal error: " + message)
    raise FlexJitError(message)


def read_string(fn, *args):
    """A string through the API's (buffer, capacity, needed) convention."""
    needed = ctypes.c_size_t(0)
    check(fn(*args, None, 0, ctypes.byref(needed)))
    buf = ctypes.create_string_buffer(max(needed.value, 1))
    check(fn(*args, buf, len(buf), ctypes.byref(needed)))
    return buf.value.decode("utf-8")


def cuda_available():
    """Whether the library finds a usable CUDA device."""
    return bool(lib().flexjit_cuda_available())


def cuda_unavailable_reason():
    reason = lib().flexjit_cuda_unavailable_reason()
    return reason.decode("utf-8", "replace") if reason else ""
