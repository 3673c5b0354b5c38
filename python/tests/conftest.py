"""Shared pytest setup: the package from this source tree, and the markers' skips.

- tests marked `lib` need libflexjit.so (FLEXJIT_LIBRARY, or <repo>/build/libflexjit.so);
- tests marked `gpu` need torch with CUDA and the library; run them with `pytest -m gpu`.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import flexjit  # noqa: E402
from flexjit import _lib  # noqa: E402


def _has_cuda_torch():
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    if not torch.cuda.is_available():
        return False, "torch sees no CUDA device"
    return True, ""


def pytest_collection_modifyitems(config, items):
    lib_ok = _lib.available()
    lib_reason = ""
    if not lib_ok:
        try:
            _lib.lib()
        except _lib.LibraryNotFoundError as e:
            lib_reason = str(e)
    gpu_ok, gpu_reason = None, ""
    for item in items:
        if "lib" in item.keywords or "gpu" in item.keywords:
            if not lib_ok:
                item.add_marker(pytest.mark.skip(reason="no libflexjit.so: " + lib_reason))
                continue
        if "gpu" in item.keywords:
            if gpu_ok is None:
                gpu_ok, gpu_reason = _has_cuda_torch()
                if gpu_ok and not flexjit.cuda_available():
                    gpu_ok, gpu_reason = False, ("libflexjit.so finds no CUDA device: "
                                                 + flexjit.cuda_unavailable_reason())
            if not gpu_ok:
                item.add_marker(pytest.mark.skip(reason=gpu_reason))
