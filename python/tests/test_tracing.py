"""Tracing Python mods into flexjit's text language: no library, no torch (numpy only)."""

import math

import numpy as np
import pytest

import flexjit
from flexjit import tracing
from flexjit._text import float_text

import mods as M


def mask_text(fn):
    return flexjit.trace_mask_mod(fn).text


def score_text(fn):
    return flexjit.trace_score_mod(fn).text


# ---- the notebook's mods ------------------------------------------------------------------


def test_notebook_masks():
    assert mask_text(M.causal) == M.EXPECTED["causal"]
    assert mask_text(M.sliding_window) == M.EXPECTED["sliding_window"]
    assert mask_text(M.prefix_lm) == M.EXPECTED["prefix_lm"]
    assert mask_text(M.natten) == M.EXPECTED["natten"]


def test_document_mask_captures_a_buffer():
    doc = np.array([0, 0, 1, 1, 1, 2], dtype=np.int32)
    traced = flexjit.trace_mask_mod(M.document_mask(flexjit.buffer(doc)))
    assert traced.text == M.EXPECTED["document"]
    assert [(r.name, r.dtype, r.rank) for r in traced.buffers] == [("buf0", "i32", 1)]
    assert traced.buffers[0].obj is doc  # bound as is: no copy


def test_int64_buffer_is_converted_once_to_int32():
    doc = np.array([0, 0, 1, 1], dtype=np.int64)
    traced = flexjit.trace_mask_mod(M.document_mask(flexjit.buffer(doc)))
    assert traced.text == M.EXPECTED["document"]
    ref = traced.buffers[0]
    assert ref.obj.dtype == np.int32 and ref.source is doc
    np.testing.assert_array_equal(ref.obj, doc)
    with pytest.raises(ValueError, match="outside int32"):
        flexjit.trace_mask_mod(M.document_mask(flexjit.buffer(np.array([2 ** 40]))))


def test_notebook_score_mods():
    slopes = np.array(M.alibi_slopes(4), dtype=np.float32)
    assert score_text(M.alibi_closure(flexjit.buffer(slopes))) == M.EXPECTED["alibi_closure"]
    assert score_text(M.alibi_functional(4)) == M.EXPECTED["alibi_functional"]
    assert score_text(M.softcap) == M.EXPECTED["softcap"]
    assert score_text(M.relative_positional) == M.EXPECTED["relative_positional"]
    assert score_text(M.checkerboard()) == M.EXPECTED["checkerboard"]
    assert score_text(M.causal_bias()) == M.EXPECTED["causal_bias"]


def test_relative_bias_rank_2_buffer():
    bias = np.zeros((4, 127), dtype=np.float32)

    class Wrapped:  # the shape a torch tensor would give
        shape = bias.shape

        def __getitem__(self, index):
            return flexjit.buffer(bias)[index]

    assert score_text(M.relative_bias(Wrapped())) == M.EXPECTED["relative_bias"]


# ---- semantics ----------------------------------------------------------------------------


def test_comparisons_spell_greater_as_swapped_less():
    assert mask_text(lambda b, h, q, kv: q > kv) == "(kv_idx < q_idx)"
    assert mask_text(lambda b, h, q, kv: q >= kv) == "(kv_idx <= q_idx)"
    assert mask_text(lambda b, h, q, kv: 5 < q) == "(5 < q_idx)"
    assert mask_text(lambda b, h, q, kv: q > 5) == "(5 < q_idx)"
    assert mask_text(lambda b, h, q, kv: q != kv) == "(q_idx != kv_idx)"
    assert mask_text(lambda b, h, q, kv: 3 == q) == "(q_idx == 3)"


def test_int_float_promotion_follows_torch():
    # int op int stays int; with a float, the int is converted
    assert score_text(lambda s, b, h, q, kv: s + q * 2) == "(score + float((q_idx * 2)))"
    assert score_text(lambda s, b, h, q, kv: s + q * 2.0) == "(score + (float(q_idx) * 2.0f))"
    # / is true division: float even for two ints
    assert score_text(lambda s, b, h, q, kv: s * (q / kv)) == \
        "(score * (float(q_idx) / float(kv_idx)))"
    assert score_text(lambda s, b, h, q, kv: s + 1 / (q + 1)) == \
        "(score + (1.0f / float((q_idx + 1))))"
    # // and % are int floor division and remainder
    assert mask_text(lambda b, h, q, kv: q // 64 == kv // 64) == "((q_idx // 64) == (kv_idx // 64))"
    assert mask_text(lambda b, h, q, kv: (q - kv) % 3 == 0) == "(((q_idx - kv_idx) % 3) == 0)"
    # comparison of an int and a float compares floats
    assert mask_text(lambda b, h, q, kv: q < 1.5) == "(float(q_idx) < 1.5f)"
    assert mask_text(lambda b, h, q, kv: q * 0.5 <= kv) == "((float(q_idx) * 0.5f) <= float(kv_idx))"
    # a score_mod returning an int is converted
    assert score_text(lambda s, b, h, q, kv: q - kv) == "float((q_idx - kv_idx))"
    # a Python constant result
    assert score_text(lambda s, b, h, q, kv: 0.0) == "0.0f"
    assert mask_text(lambda b, h, q, kv: True) == "true"
    assert mask_text(flexjit.noop_mask) == "true"


def test_logic_on_bools_and_bitwise_on_ints():
    assert mask_text(lambda b, h, q, kv: (q >= kv) | (kv == 0)) == \
        "((kv_idx <= q_idx) || (kv_idx == 0))"
    assert mask_text(lambda b, h, q, kv: ~(q < kv)) == "!((q_idx < kv_idx))"
    assert mask_text(lambda b, h, q, kv: (q < kv) ^ (b == 1)) == "((q_idx < kv_idx) != (b == 1))"
    assert mask_text(lambda b, h, q, kv: (q & 1) == (kv | 2)) == "((q_idx & 1) == (kv_idx | 2))"
    assert mask_text(lambda b, h, q, kv: ~q == kv) == "((-(q_idx) - 1) == kv_idx)"
    # a constant operand of & / | decides or drops out (torch's and_masks starts from True)
    assert mask_text(lambda b, h, q, kv: True & (q >= kv)) == "(kv_idx <= q_idx)"
    assert mask_text(lambda b, h, q, kv: False | (q >= kv)) == "(kv_idx <= q_idx)"
    assert mask_text(flexjit.and_masks(M.causal, lambda b, h, q, kv: q - kv <= 8)) == \
        "((kv_idx <= q_idx) && ((q_idx - kv_idx) <= 8))"
    assert mask_text(flexjit.or_masks(M.causal, lambda b, h, q, kv: kv == 0)) == \
        "((kv_idx <= q_idx) || (kv_idx == 0))"


def test_functions_and_methods():
    assert score_text(lambda s, b, h, q, kv: flexjit.where(q >= kv, s, s * 0.5)) == \
        "where((kv_idx <= q_idx), score, (score * 0.5f))"
    assert score_text(lambda s, b, h, q, kv: flexjit.where(q >= kv, 1, 0.5)) == \
        "where((kv_idx <= q_idx), 1.0f, 0.5f)"
    assert mask_text(lambda b, h, q, kv: flexjit.where(b == 0, q >= kv, True)) == \
        "where((b == 0), (kv_idx <= q_idx), true)"
    assert score_text(lambda s, b, h, q, kv: flexjit.minimum(s, 3.0)) == "min(score, 3.0f)"
    assert score_text(lambda s, b, h, q, kv: flexjit.maximum(q, kv)) == "float(max(q_idx, kv_idx))"
    assert score_text(lambda s, b, h, q, kv: flexjit.clamp(s, -5.0, 5.0)) == \
        "min(max(score, -5.0f), 5.0f)"
    assert score_text(lambda s, b, h, q, kv: s.clamp(max=1)) == "min(score, 1.0f)"
    assert score_text(lambda s, b, h, q, kv: s + flexjit.clamp(q - kv, 0, 7)) == \
        "(score + float(min(max((q_idx - kv_idx), 0), 7)))"
    for name in ("exp", "exp2", "log", "log2", "sqrt", "rsqrt", "tanh", "tanh_approx", "sin",
                 "cos"):
        fn = getattr(flexjit, name)
        assert score_text(lambda s, b, h, q, kv: fn(s)) == "%s(score)" % name
        assert score_text(lambda s, b, h, q, kv: fn(q)) == "%s(float(q_idx))" % name
    assert score_text(lambda s, b, h, q, kv: s.exp() + abs(s)) == "(exp(score) + abs(score))"
    assert score_text(lambda s, b, h, q, kv: flexjit.sigmoid(s)) == \
        "(1.0f / (1.0f + exp(-(score))))"
    assert score_text(lambda s, b, h, q, kv: -s) == "-(score)"
    assert score_text(lambda s, b, h, q, kv: s ** 2) == "(score * score)"
    assert score_text(lambda s, b, h, q, kv: (q - kv) ** 2 + s) == \
        "let t0 = (q_idx - kv_idx)\n(float((t0 * t0)) + score)"
    assert score_text(lambda s, b, h, q, kv: s ** 0.5) == "sqrt(score)"
    assert score_text(lambda s, b, h, q, kv: s + q.float()) == "(score + float(q_idx))"
    assert mask_text(lambda b, h, q, kv: (q - kv).bool()) == "bool((q_idx - kv_idx))"
    # Python-level constants fold in Python
    assert score_text(lambda s, b, h, q, kv: s * flexjit.exp(0.0)) == "(score * 1.0f)"


def test_shared_subexpressions_become_lets():
    def mod(score, b, h, q, kv):
        d = q - kv
        return flexjit.where(d >= 0, score - d, score + d)
    assert score_text(mod) == ("let t0 = (q_idx - kv_idx)\n"
                               "let t1 = float(t0)\n"
                               "where((0 <= t0), (score - t1), (score + t1))")
    # structurally equal subexpressions are one node even when written twice
    assert score_text(lambda s, b, h, q, kv: s + (q - kv) * (q - kv)) == \
        "let t0 = (q_idx - kv_idx)\n(score + float((t0 * t0)))"


def test_buffers_are_named_in_order_and_shared_by_identity():
    a = np.arange(8, dtype=np.int32)
    c = np.ones((2, 8), dtype=np.float32)
    ba, bc = flexjit.buffer(a), flexjit.buffer(c)
    traced = flexjit.trace_score_mod(
        lambda s, b, h, q, kv: s * bc[h, kv] + ba[q] + ba[kv])
    assert traced.text == ("(((score * buf0:f32:2[h, kv_idx]) + float(buf1:i32:1[q_idx])) + "
                           "float(buf1:i32:1[kv_idx]))")
    assert [r.name for r in traced.buffers] == ["buf0", "buf1"]
    # a score_mod beside a block mask's mod continues its numbering and shares its buffers
    mask = flexjit.trace_mask_mod(lambda b, h, q, kv: ba[q] == ba[kv])
    score = flexjit.trace_score_mod(lambda s, b, h, q, kv: s + bc[h, q] + ba[kv],
                                    inherited_buffers=mask.buffers)
    assert score.text == "((score + buf1:f32:2[h, q_idx]) + float(buf0:i32:1[kv_idx]))"
    assert [r.name for r in score.buffers] == ["buf1", "buf0"]


def test_buffer_dtypes():
    for dtype, name, text in ((np.float16, "f16", "float"), (np.bool_, "bool", "bool"),
                              (np.float64, "f32", "float"), (np.uint8, "i32", "int")):
        arr = np.zeros(4, dtype=dtype)
        traced = flexjit.trace_score_mod(
            lambda s, b, h, q, kv: flexjit.where(flexjit.buffer(arr)[q] == 1, s, 0.0)
            if text != "bool" else flexjit.where(flexjit.buffer(arr)[q], s, 0.0))
        assert traced.buffers[0].dtype == name, dtype


def test_params():
    window = flexjit.Param("window", 256)
    traced = flexjit.trace_mask_mod(lambda b, h, q, kv: (q >= kv) & (q - kv <= window))
    assert traced.text == "((kv_idx <= q_idx) && ((q_idx - kv_idx) <= window:int))"
    assert traced.params == {"window": window}
    cap = flexjit.Param("cap", 30.0)
    assert score_text(lambda s, b, h, q, kv: cap * flexjit.tanh(s / cap)) == \
        "(cap:float * tanh((score / cap:float)))"


def test_float_text_is_the_printers():
    cases = [
        (0.5, "0.5f"), (0.1, "0.1f"), (1.0, "1.0f"), (30, "30.0f"), (-2.5, "-2.5f"),
        (0.0, "0.0f"), (-0.0, "-0.0f"), (1 / 3, "0.33333334f"), (1e-5, "1e-05f"),
        (1e-4, "0.0001f"), (1e16, "1e+16f"), (1e15, "1000000000000000.0f"),
        (16777217.0, "16777216.0f"), (3.4028235e38, "3.4028235e+38f"), (1e-45, "1e-45f"),
        (1e39, "inf"), (-1e39, "-inf"), (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan"),
        (123456.789, "123456.79f"), (0.007, "0.007f"), (2.0 ** -20, "9.536743e-07f"),
        (math.pi, "3.1415927f"), (100.0, "100.0f"), (1.5e10, "15000000000.0f"),
    ]
    for value, text in cases:
        assert float_text(value) == text, (value, float_text(value))
    assert float_text(-math.nan) in ("-nan", "nan")  # Python's -nan keeps the sign bit or not


def test_float_text_round_trips_float32():
    import struct
    rng = np.random.default_rng(0)
    for bits in rng.integers(0, 2 ** 32, size=20000, dtype=np.uint64):
        v = struct.unpack("<f", struct.pack("<I", int(bits)))[0]
        if math.isnan(v) or math.isinf(v):
            continue
        text = float_text(v)
        assert text.endswith("f")
        assert struct.pack("<f", float(text[:-1])) == struct.pack("<f", v), (v, text)
        # shortest: numpy's float32 repr has the same number of significant digits
        ours = text[:-1].lstrip("-").split("e")[0].replace(".", "").strip("0")
        theirs = np.format_float_scientific(np.float32(v), unique=True, trim="-")
        theirs = theirs.lstrip("-").split("e")[0].replace(".", "").strip("0")
        assert len(ours) == len(theirs), (v, text, theirs)


# ---- errors -------------------------------------------------------------------------------


def test_python_truth_value_is_an_error():
    with pytest.raises(TypeError, match=r"& \(and\), \| \(or\), ~ \(not\)"):
        mask_text(lambda b, h, q, kv: q >= kv and q - kv < 8)
    with pytest.raises(TypeError, match="where"):
        mask_text(lambda b, h, q, kv: q >= kv or kv == 0)
    with pytest.raises(TypeError, match="truth value"):
        score_text(lambda s, b, h, q, kv: s if q >= kv else -math.inf)
    with pytest.raises(TypeError, match="chained comparisons"):
        mask_text(lambda b, h, q, kv: 0 <= q - kv < 8)
    with pytest.raises(TypeError, match="minimum"):
        score_text(lambda s, b, h, q, kv: max(s, 0.0))
    with pytest.raises(TypeError, match="math"):
        score_text(lambda s, b, h, q, kv: math.exp(s))


def test_type_errors():
    with pytest.raises(TypeError, match="returns a bool"):
        mask_text(lambda b, h, q, kv: q - kv)
    with pytest.raises(TypeError, match="returns a number"):
        score_text(lambda s, b, h, q, kv: q >= kv)
    with pytest.raises(TypeError, match="takes ints"):
        score_text(lambda s, b, h, q, kv: s // 2)
    with pytest.raises(TypeError, match="takes ints"):
        score_text(lambda s, b, h, q, kv: s % 2.0)
    with pytest.raises(ZeroDivisionError):
        score_text(lambda s, b, h, q, kv: s / 0)
    with pytest.raises(ZeroDivisionError):
        mask_text(lambda b, h, q, kv: q % 0 == 0)
    with pytest.raises(OverflowError, match="int32"):
        mask_text(lambda b, h, q, kv: q < 2 ** 31)
    with pytest.raises(TypeError, match="bool condition"):
        score_text(lambda s, b, h, q, kv: flexjit.where(q, s, 0.0))
    with pytest.raises(TypeError, match="one type"):
        score_text(lambda s, b, h, q, kv: flexjit.where(q >= kv, s, q == kv))
    with pytest.raises(TypeError):
        score_text(lambda s, b, h, q, kv: -(q >= kv))
    with pytest.raises(TypeError, match="cannot be used"):
        score_text(lambda s, b, h, q, kv: s + "1")


def test_buffer_indexing_errors():
    arr = flexjit.buffer(np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(IndexError, match="rank 2"):
        score_text(lambda s, b, h, q, kv: s + arr[q])
    with pytest.raises(TypeError, match="slices"):
        score_text(lambda s, b, h, q, kv: s + arr[q, :])
    with pytest.raises(TypeError, match="indices are ints"):
        score_text(lambda s, b, h, q, kv: s + arr[q, s])
    with pytest.raises(TypeError, match="dtype"):
        flexjit.trace_score_mod(
            lambda s, b, h, q, kv: s + flexjit.buffer(np.zeros(4, dtype=np.complex64))[q])
    with pytest.raises(ValueError, match="rank 1 to 4"):
        flexjit.trace_score_mod(
            lambda s, b, h, q, kv: s + flexjit.buffer(np.zeros((1,) * 5, np.float32))[q, q, q, q, q])


def test_buffer_outside_tracing_indexes_normally():
    arr = np.arange(5)
    assert flexjit.buffer(arr)[3] == 3
    assert tracing._current == []


def test_numpy_scalars_and_dlpack_objects():
    assert mask_text(lambda b, h, q, kv: np.int32(5) < q) == "(5 < q_idx)"
    assert score_text(lambda s, b, h, q, kv: s * np.float32(0.5)) == "(score * 0.5f)"

    class DLPackOnly:  # a foreign tensor: only __dlpack__
        def __init__(self, arr):
            self.arr = arr

        def __dlpack__(self, stream=None):
            return self.arr.__dlpack__()

        def __dlpack_device__(self):
            return self.arr.__dlpack_device__()

    if not hasattr(np.ndarray, "__dlpack__"):
        pytest.skip("numpy without DLPack")
    d = DLPackOnly(np.arange(4, dtype=np.float32))
    traced = flexjit.trace_score_mod(lambda s, b, h, q, kv: s + flexjit.buffer(d)[kv])
    assert traced.text == "(score + buf0:f32:1[kv_idx])"
    assert traced.buffers[0].obj is d


def test_import_without_library(monkeypatch, tmp_path):
    from flexjit import _lib
    monkeypatch.setenv("FLEXJIT_LIBRARY", str(tmp_path / "missing" / "libflexjit.so"))
    _lib._reset_for_tests()
    try:
        with pytest.raises(flexjit.LibraryNotFoundError, match="FLEXJIT_LIBRARY.*not there"):
            flexjit.create_block_mask(M.causal, 1, 1, 128, 128, device="cpu")
        with pytest.raises(flexjit.LibraryNotFoundError, match="missing"):
            flexjit.compile_mask_mod(lambda b, h, q, kv: q - kv == 12345)  # not cached
        # tracing still works
        assert mask_text(M.causal) == "(kv_idx <= q_idx)"
    finally:
        monkeypatch.delenv("FLEXJIT_LIBRARY")
        _lib._reset_for_tests()


def test_import_in_a_fresh_interpreter_needs_no_library(tmp_path):
    import os
    import subprocess
    import sys
    env = dict(os.environ, FLEXJIT_LIBRARY=str(tmp_path / "nowhere.so"))
    code = ("import flexjit\n"
            "print(flexjit.trace_mask_mod(lambda b, h, q, kv: q >= kv).text)\n"
            "print(flexjit.available())\n"
            "try:\n"
            "    flexjit.create_block_mask(lambda b, h, q, kv: q >= kv, 1, 1, 128, 128, 'cpu')\n"
            "except flexjit.LibraryNotFoundError as e:\n"
            "    print('error:', e)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert out[0] == "(kv_idx <= q_idx)"
    assert out[1] == "False"
    assert out[2].startswith("error: libflexjit.so could not be loaded; looked at: "
                             "$FLEXJIT_LIBRARY: ") and "nowhere.so (not there)" in out[2]
