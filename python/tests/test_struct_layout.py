"""The ctypes structs mirror flexjit_c.h: sizes and field offsets against a C compiler's.

Needs a C compiler (cc) and the header (include/flexjit/flexjit_c.h, dlpack/dlpack.h); no
library."""

import ctypes
import os
import shutil
import subprocess

import pytest

from flexjit import _lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER_DIR = os.path.join(REPO, "include")

STRUCTS = {
    "flexjit_tensor": _lib.flexjit_tensor,
    "flexjit_block_mask_options": _lib.flexjit_block_mask_options,
    "flexjit_block_mask_info": _lib.flexjit_block_mask_info,
    "flexjit_kv_cache": _lib.flexjit_kv_cache,
    "flexjit_attention_options": _lib.flexjit_attention_options,
    "flexjit_varlen_options": _lib.flexjit_varlen_options,
}


def _c_layout(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    if not os.path.exists(os.path.join(HEADER_DIR, "flexjit", "flexjit_c.h")):
        pytest.skip("flexjit_c.h is not in this tree")
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "flexjit/flexjit_c.h"',
             "int main(void) {"]
    for name, cls in STRUCTS.items():
        lines.append('  printf("%s size %%zu\\n", sizeof(%s));' % (name, name))
        for field, _ in cls._fields_:
            lines.append('  printf("%s.%s %%zu\\n", offsetof(%s, %s));'
                         % (name, field, name, field))
    lines.append("  return 0;\n}")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    try:
        subprocess.run([cc, "-std=c99", "-I", HEADER_DIR, str(src), "-o", str(exe)], check=True,
                       capture_output=True, text=True)
    except subprocess.CalledProcessError as e:
        if "dlpack/dlpack.h" in e.stderr:
            pytest.skip("dlpack/dlpack.h is not installed")
        raise
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return dict(line.rsplit(" ", 1) for line in out.splitlines())


def test_structs_match_the_header(tmp_path):
    c = _c_layout(tmp_path)
    for name, cls in STRUCTS.items():
        assert int(c["%s size" % name]) == ctypes.sizeof(cls), name
        for field, _ in cls._fields_:
            assert int(c["%s.%s" % (name, field)]) == getattr(cls, field).offset, (name, field)


def test_every_function_of_the_header_has_a_prototype():
    path = os.path.join(HEADER_DIR, "flexjit", "flexjit_c.h")
    if not os.path.exists(path):
        pytest.skip("flexjit_c.h is not in this tree")
    import re

    text = open(path).read()
    declared = set(re.findall(r"\b(flexjit_[a-z0-9_]+)\s*\(", text))
    declared -= {"flexjit_status"}
    assert declared == set(_lib.PROTOTYPES), (declared ^ set(_lib.PROTOTYPES))
    assert "#define FLEXJIT_C_API_VERSION %d" % _lib.C_API_VERSION in text
