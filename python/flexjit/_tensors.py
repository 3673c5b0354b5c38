"""Tensors of other libraries as flexjit_tensor views, without copies.

Accepted: torch tensors (data_ptr, sizes and strides), objects with __array_interface__ (numpy
arrays: host memory) and objects with __dlpack__ (the DLManagedTensor is handed to the
library, which reads its data, dtype, device, shape and strides). No import of torch or numpy
here: they are recognized by their attributes.
"""

import ctypes

from . import _lib

_TORCH_DTYPES = {"torch.int32": "i32", "torch.float32": "f32", "torch.float16": "f16",
                 "torch.bfloat16": "bf16", "torch.bool": "bool"}
_NUMPY_DTYPES = {"i4": "i32", "f4": "f32", "f2": "f16", "b1": "bool"}
# Element types a buffer is converted from (one copy at trace time) to one the language has.
_TORCH_CONVERTIBLE = {"torch.int64": "i32", "torch.int16": "i32", "torch.int8": "i32",
                      "torch.uint8": "i32", "torch.float64": "f32"}
_NUMPY_CONVERTIBLE = {"i8": "i32", "i2": "i32", "i1": "i32", "u1": "i32", "u2": "i32",
                      "f8": "f32"}


def is_torch_tensor(obj):
    t = type(obj)
    return (t.__module__.startswith("torch") and hasattr(obj, "data_ptr")
            and hasattr(obj, "stride") and hasattr(obj, "dtype"))


class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", _DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


class _DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", _DLTensor), ("manager_ctx", ctypes.c_void_p),
                ("deleter", ctypes.c_void_p)]


_DL_CPU, _DL_CUDA, _DL_CUDA_HOST, _DL_CUDA_MANAGED = 1, 2, 3, 13
_DL_DTYPES = {(0, 32): "i32", (2, 32): "f32", (2, 16): "f16", (4, 16): "bf16", (6, 8): "bool"}

_capsule_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_get_pointer.restype = ctypes.c_void_p
_capsule_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def _dlpack_pointer(obj):
    """(capsule, DLManagedTensor address) of obj.__dlpack__(); keep the capsule alive while
    the address is used (its destructor calls the tensor's deleter)."""
    capsule = obj.__dlpack__()
    return capsule, _capsule_get_pointer(capsule, b"dltensor")


class TensorInfo:
    """What a view of a tensor-like object needs: kind ('torch', 'array', 'dlpack'), dtype (a
    flexjit dtype name, or None with `source_dtype` naming the foreign one), shape, device
    ('cpu' or 'cuda')."""

    def __init__(self, kind, dtype, source_dtype, shape, device):
        self.kind = kind
        self.dtype = dtype
        self.source_dtype = source_dtype
        self.shape = tuple(int(s) for s in shape)
        self.device = device

    @property
    def rank(self):
        return len(self.shape)


def describe(obj):
    """The TensorInfo of a torch tensor, an __array_interface__ or a __dlpack__ object; None for
    anything else."""
    if is_torch_tensor(obj):
        name = str(obj.dtype)
        device = obj.device.type
        return TensorInfo("torch", _TORCH_DTYPES.get(name), name, tuple(obj.shape),
                          "cuda" if device == "cuda" else device)
    interface = getattr(obj, "__array_interface__", None)
    if isinstance(interface, dict):
        typestr = interface["typestr"]
        key = typestr[1:]
        if typestr[0] == ">" and key not in ("i1", "u1", "b1"):
            return TensorInfo("array", None, typestr, interface["shape"], "cpu")
        return TensorInfo("array", _NUMPY_DTYPES.get(key), typestr, interface["shape"], "cpu")
    if hasattr(obj, "__dlpack__"):
        capsule, address = _dlpack_pointer(obj)
        t = _DLManagedTensor.from_address(address).dl_tensor
        shape = [t.shape[i] for i in range(t.ndim)]
        key = (t.dtype.code, t.dtype.bits)
        dtype = _DL_DTYPES.get(key) if t.dtype.lanes == 1 else None
        dev = t.device.device_type
        device = "cpu" if dev == _DL_CPU else "cuda" if dev in (
            _DL_CUDA, _DL_CUDA_HOST, _DL_CUDA_MANAGED) else "device type %d" % dev
        del capsule  # releases the exported tensor
        return TensorInfo("dlpack", dtype, "DLPack code %d bits %d lanes %d" % (
            t.dtype.code, t.dtype.bits, t.dtype.lanes), shape, device)
    return None


def converted(obj, info):
    """obj in a dtype the language has (a copy): int64/int16/int8/uint8 -> int32 (values
    checked to fit), float64 -> float32; None when flexjit has no conversion for it."""
    if info.kind == "torch":
        target = _TORCH_CONVERTIBLE.get(info.source_dtype)
        if target is None:
            return None
        import torch

        if target == "i32":
            if obj.numel() and (int(obj.max()) > 2 ** 31 - 1 or int(obj.min()) < -(2 ** 31)):
                raise ValueError("a captured %s tensor holds values outside int32, the type of "
                                 "flexjit's int buffers" % info.source_dtype)
            return obj.to(torch.int32)
        return obj.to(torch.float32)
    if info.kind == "array":
        target = _NUMPY_CONVERTIBLE.get(info.source_dtype[1:])
        if target is None or not hasattr(obj, "astype"):
            return None
        if target == "i32":
            if obj.size and (int(obj.max()) > 2 ** 31 - 1 or int(obj.min()) < -(2 ** 31)):
                raise ValueError("a captured %s array holds values outside int32, the type of "
                                 "flexjit's int buffers" % info.source_dtype)
            return obj.astype("int32")
        return obj.astype("float32")
    return None


def view(obj, keepalive, what="tensor"):
    """A flexjit_tensor of obj (no copy); appends to `keepalive` what must outlive the call."""
    t = _lib.flexjit_tensor()
    if is_torch_tensor(obj):
        name = str(obj.dtype)
        dtype = _TORCH_DTYPES.get(name)
        if dtype is None:
            raise TypeError("%s has dtype %s; flexjit takes int32, float32, float16, bfloat16 "
                            "or bool" % (what, name))
        device = obj.device.type
        if device not in ("cpu", "cuda"):
            raise TypeError("%s is on device %s; flexjit takes cpu or cuda tensors"
                            % (what, obj.device))
        if obj.dim() > _lib.FLEXJIT_MAX_RANK:
            raise ValueError("%s has rank %d; flexjit takes up to %d"
                             % (what, obj.dim(), _lib.FLEXJIT_MAX_RANK))
        t.data = obj.data_ptr() or None
        t.dtype = _lib.DTYPE_CODES[dtype]
        t.device = _lib.FLEXJIT_CUDA if device == "cuda" else _lib.FLEXJIT_HOST
        t.rank = obj.dim()
        for i, (size, stride) in enumerate(zip(obj.shape, obj.stride())):
            t.sizes[i] = size
            t.strides[i] = stride
        keepalive.append(obj)
        return t
    interface = getattr(obj, "__array_interface__", None)
    if isinstance(interface, dict):
        info = describe(obj)
        if info.dtype is None:
            raise TypeError("%s has dtype %s; flexjit takes int32, float32, float16 or bool "
                            "arrays" % (what, info.source_dtype))
        if info.rank > _lib.FLEXJIT_MAX_RANK:
            raise ValueError("%s has rank %d; flexjit takes up to %d"
                             % (what, info.rank, _lib.FLEXJIT_MAX_RANK))
        itemsize = int(interface["typestr"][2:])
        shape = info.shape
        strides = interface.get("strides")
        if strides is None:  # C order
            strides, step = [], itemsize
            for size in reversed(shape):
                strides.insert(0, step)
                step *= max(size, 1)
        for s in strides:
            if s % itemsize:
                raise ValueError("%s has a byte stride %d that is not a multiple of its item "
                                 "size %d" % (what, s, itemsize))
        t.data = interface["data"][0] or None
        t.dtype = _lib.DTYPE_CODES[info.dtype]
        t.device = _lib.FLEXJIT_HOST
        t.rank = len(shape)
        for i, (size, stride) in enumerate(zip(shape, strides)):
            t.sizes[i] = size
            t.strides[i] = stride // itemsize
        keepalive.append(obj)
        return t
    if hasattr(obj, "__dlpack__"):
        capsule, address = _dlpack_pointer(obj)
        keepalive.append(capsule)
        t.dlpack = address
        return t
    raise TypeError("%s is a %s; flexjit takes torch tensors, numpy arrays (__array_interface__) "
                    "or DLPack objects (__dlpack__)" % (what, type(obj).__name__))
