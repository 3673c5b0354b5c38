"""Against libflexjit.so, on the CPU (no torch): traced text round-trips through the library's
parser and printer; block masks built on the host match brute force over the dense mask.

Skipped without the library (conftest.py); FLEXJIT_LIBRARY or <repo>/build/libflexjit.so."""

import random

import numpy as np
import pytest

import flexjit
from flexjit import _lib

import mods as M

pytestmark = pytest.mark.lib


def canonical(kind, text):
    return flexjit.mods.CompiledMod(kind, text).text


# ---- round trip -------------------------------------------------------------------------------


def _notebook_mods():
    doc = flexjit.buffer(np.repeat(np.arange(8, dtype=np.int32), 64))
    slopes = flexjit.buffer(np.array(M.alibi_slopes(4), dtype=np.float32))
    bias = np.zeros((4, 127), dtype=np.float32)

    class Bias:
        shape = bias.shape

        def __getitem__(self, index):
            return flexjit.buffer(bias)[index]

    return [
        ("causal", "mask", M.causal),
        ("sliding_window", "mask", M.sliding_window),
        ("prefix_lm", "mask", M.prefix_lm),
        ("document", "mask", M.document_mask(doc)),
        ("natten", "mask", M.natten),
        ("alibi_closure", "score", M.alibi_closure(slopes)),
        ("alibi_functional", "score", M.alibi_functional(4)),
        ("softcap", "score", M.softcap),
        ("relative_positional", "score", M.relative_positional),
        ("relative_bias", "score", M.relative_bias(Bias())),
        ("checkerboard", "score", M.checkerboard()),
        ("causal_bias", "score", M.causal_bias()),
    ]


@pytest.mark.parametrize("name,kind,fn", _notebook_mods(), ids=[m[0] for m in _notebook_mods()])
def test_round_trip_notebook_mods(name, kind, fn):
    traced = (flexjit.trace_mask_mod if kind == "mask" else flexjit.trace_score_mod)(fn)
    assert traced.text == M.EXPECTED[name]
    mod = flexjit.mods.CompiledMod(kind, traced.text)
    assert mod.text == traced.text  # the library prints back exactly what the tracer wrote
    assert mod.is_mask() == (kind == "mask")
    assert mod.hash == flexjit.mods.CompiledMod(kind, mod.text).hash


def _random_mod(rng, kind):
    """A random mod written with Python operators and flexjit functions."""
    ints = ["b", "h", "q", "kv"]
    arr_i = flexjit.buffer(np.arange(16, dtype=np.int32))
    arr_f = flexjit.buffer(np.ones((4, 16), dtype=np.float32))

    def int_expr(env, depth):
        r = rng.random()
        if depth <= 0 or r < 0.25:
            return env[rng.choice(ints)] if rng.random() < 0.7 else rng.randint(-100, 100)
        a, b = int_expr(env, depth - 1), int_expr(env, depth - 1)
        op = rng.choice("+-*/%&|mMac")
        if op in "/%":
            b = rng.randint(1, 9)
            return a // b if op == "/" else a % b
        if op == "m":
            return flexjit.minimum(a, b)
        if op == "M":
            return flexjit.maximum(a, b)
        if op == "a":
            return abs(a) if not isinstance(a, int) else abs(b) if not isinstance(b, int) else 3
        if op == "c":
            return arr_i[a % 16] if not isinstance(a, int) else arr_i[5]
        return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                "&": lambda: a & b, "|": lambda: a | b}[op]()

    def float_expr(env, depth):
        r = rng.random()
        if depth <= 0 or r < 0.2:
            if kind == "score" and rng.random() < 0.5:
                return env["score"]
            return rng.choice([0.5, -1.25, 3.0, 1e-3, 1 / 3, 1e20, -0.0, 7.0])
        choice = rng.randrange(9)
        a = float_expr(env, depth - 1)
        if choice == 0:
            return a + int_expr(env, depth - 1)
        if choice == 1:
            return a * float_expr(env, depth - 1)
        if choice == 2:
            return a / rng.choice([2.0, 3, 0.75])
        if choice == 3:
            return flexjit.where(bool_expr(env, depth - 1), a, float_expr(env, depth - 1))
        if choice == 4:
            return getattr(flexjit, rng.choice(["exp", "tanh", "sin", "log2", "sqrt"]))(a)
        if choice == 5:
            return int_expr(env, depth - 1) / rng.randint(1, 5)
        if choice == 6:
            return arr_f[env["h"] % 4, env["kv"] % 16] - a
        if choice == 7:
            return flexjit.clamp(a, -3.0, 3)
        return -a

    def bool_expr(env, depth):
        r = rng.random()
        if depth <= 0 or r < 0.3:
            a, b = int_expr(env, 1), int_expr(env, 1)
            if isinstance(a, int) and isinstance(b, int):
                a = env["q"]
            return [lambda: a < b, lambda: a <= b, lambda: a > b, lambda: a >= b,
                    lambda: a == b, lambda: a != b][rng.randrange(6)]()
        choice = rng.randrange(5)
        a = bool_expr(env, depth - 1)
        if choice == 0:
            return a & bool_expr(env, depth - 1)
        if choice == 1:
            return a | bool_expr(env, depth - 1)
        if choice == 2:
            return ~a
        if choice == 3:
            return float_expr(env, depth - 1) < int_expr(env, depth - 1)
        return a ^ bool_expr(env, depth - 1)

    depth = rng.randint(1, 5)
    if kind == "mask":
        def fn(b, h, q, kv):
            return bool_expr({"b": b, "h": h, "q": q, "kv": kv}, depth)
    else:
        def fn(score, b, h, q, kv):
            return float_expr({"score": score, "b": b, "h": h, "q": q, "kv": kv}, depth)
    return fn


def test_round_trip_random_mods():
    rng = random.Random(16)
    checked = 0
    for i in range(600):
        kind = "mask" if i % 2 else "score"
        fn = _random_mod(random.Random(rng.random()), kind)
        try:
            traced = (flexjit.trace_mask_mod if kind == "mask" else flexjit.trace_score_mod)(fn)
        except (TypeError, ZeroDivisionError, OverflowError):
            continue  # a random mod Python-side constant-folded into something invalid
        assert canonical(kind, traced.text) == traced.text, traced.text
        checked += 1
    assert checked > 400


def test_round_trip_params_and_declared_buffers():
    window = flexjit.Param("window", 64)
    cap = flexjit.Param("cap", 30.0)
    text = flexjit.trace_mask_mod(lambda b, h, q, kv: (q >= kv) & (q - kv <= window)).text
    assert canonical("mask", text) == text
    text = flexjit.trace_score_mod(lambda s, b, h, q, kv: cap * flexjit.tanh(s / cap)).text
    assert canonical("score", text) == text
    mod = flexjit.mods.CompiledMod("score", text)
    assert mod.signature.strip() == "param cap float"
    doc = flexjit.buffer(np.zeros(8, np.int32))
    mod = flexjit.compile_mask_mod(M.document_mask(doc))
    assert mod.signature.strip() == "buffer buf0 i32 1"


def test_parse_errors_are_flexjit_errors():
    with pytest.raises(flexjit.FlexJitError, match="line 1, column"):
        flexjit.mods.CompiledMod("mask", "(q_idx >= ")
    with pytest.raises(flexjit.FlexJitError, match="bool"):
        flexjit.mods.CompiledMod("mask", "q_idx - kv_idx")
    with pytest.raises(flexjit.FlexJitError):
        flexjit.mods.CompiledMod("mask", "score > 0.0f")


def test_library_facts():
    L = _lib.lib()
    assert L.flexjit_api_version() == _lib.C_API_VERSION
    assert isinstance(flexjit.cuda_available(), bool)
    if not flexjit.cuda_available():
        assert flexjit.cuda_unavailable_reason()


# ---- block masks on the host ------------------------------------------------------------------


class _IntArray(np.ndarray):
    """numpy ints with torch's .abs(), so that the mods run on arrays for brute force."""

    def abs(self):
        return np.abs(self)


def dense_mask(fn, B, H, L, S):
    ar = lambda n: np.arange(n, dtype=np.int32).view(_IntArray)  # noqa: E731
    b = ar(B)[:, None, None, None]
    h = ar(H)[None, :, None, None]
    q = ar(L)[None, None, :, None]
    kv = ar(S)[None, None, None, :]
    m = np.asarray(fn(b, h, q, kv), dtype=bool)
    return np.broadcast_to(m, (B, H, L, S))


def brute_states(dense, qb, kb):
    B, H, L, S = dense.shape
    nq, nk = -(-L // qb), -(-S // kb)
    out = np.zeros((B, H, nq, nk), dtype=np.uint8)
    for i in range(nq):
        for j in range(nk):
            tile = dense[:, :, i * qb:(i + 1) * qb, j * kb:(j + 1) * kb]
            any_ = tile.any(axis=(2, 3))
            all_ = tile.all(axis=(2, 3))
            out[:, :, i, j] = np.where(all_, 2, np.where(any_, 1, 0))
    return out


DOC = np.repeat(np.arange(10, dtype=np.int64), [90, 10, 200, 3, 150, 47, 300, 100, 60, 40])

CASES = [
    ("causal", M.causal, 1, 1, 1024, 1024, 128),
    ("causal_odd", M.causal, 1, 1, 1000, 777, 128),
    ("sliding_window", M.sliding_window, 1, 1, 1000, 777, (128, 64)),
    ("prefix_lm", M.prefix_lm, 1, 1, 777, 1000, 128),
    ("document", M.document_mask(flexjit.buffer(DOC)), 1, 1, 1000, 1000, 128),
    ("natten", M.natten, 1, 1, 256, 256, 64),
    ("per_head", lambda b, h, q, kv: q - kv <= 64 * (h + 1) + 32 * b, 2, 3, 600, 500, 128),
]


@pytest.mark.parametrize("name,fn,B,H,L,S,block", CASES, ids=[c[0] for c in CASES])
def test_block_mask_on_the_host_matches_brute_force(name, fn, B, H, L, S, block):
    bm = flexjit.create_block_mask(fn, B, H, L, S, device="cpu", BLOCK_SIZE=block)
    qb, kb = block if isinstance(block, tuple) else (block, block)
    assert bm.shape == (B, H, L, S)
    assert bm.BLOCK_SIZE == (qb, kb)
    assert bm.seq_lengths == (L, S)
    assert bm.num_blocks == (-(-L // qb), -(-S // kb))
    if name == "document":
        dense = dense_mask(M.document_mask(DOC), B, H, L, S)
    else:
        dense = dense_mask(fn, B, H, L, S)
    expected = brute_states(dense, qb, kb)
    states = np.asarray(bm.states())
    np.testing.assert_array_equal(states, expected)
    np.testing.assert_array_equal(np.asarray(bm.to_dense()), (expected != 0).astype(np.int32))
    # torch's formula: non-empty tiles count whole, over B*H*L*S scores
    computed = (expected != 0).sum() * qb * kb
    assert bm.sparsity() == pytest.approx(100.0 * (1 - computed / (B * H * L * S)), abs=1e-9)
    text = str(bm)
    assert text == bm.to_string() and len(text) > 0
    assert "BlockMask" in repr(bm)


def test_block_mask_broadcast_and_text():
    bm = flexjit.create_block_mask(M.causal, None, None, 256, 256, device="cpu")
    assert bm.shape == (1, 1, 256, 256)
    np.testing.assert_array_equal(np.asarray(bm.states())[0, 0], [[1, 0], [2, 1]])
    assert bm.sparsity() == pytest.approx(25.0)
    bm2 = flexjit.create_block_mask("(kv_idx <= q_idx)", 1, 1, 256, 256, device="cpu")
    np.testing.assert_array_equal(np.asarray(bm2.states()), np.asarray(bm.states()))


def test_params_rebind_without_retracing():
    window = flexjit.Param("window", 128)

    def swa(b, h, q, kv):
        return (q >= kv) & (q - kv <= window)
    a = np.asarray(flexjit.create_block_mask(swa, 1, 1, 1024, 1024, device="cpu").states())
    window.value = 512
    c = np.asarray(flexjit.create_block_mask(swa, 1, 1, 1024, 1024, device="cpu").states())
    window.value = 128
    assert (a != c).any()
    dense = dense_mask(lambda b, h, q, kv: (q >= kv) & (q - kv <= 512), 1, 1, 1024, 1024)
    np.testing.assert_array_equal(c, brute_states(dense, 128, 128))


def test_block_mask_errors():
    with pytest.raises(flexjit.FlexJitError):
        flexjit.create_block_mask(M.causal, 1, 1, 0, 128, device="cpu")
    with pytest.raises(ValueError, match="device"):
        flexjit.create_block_mask(M.causal, 1, 1, 128, 128, device="tpu")
    with pytest.raises(flexjit.FlexJitError):  # a declared buffer nobody binds
        flexjit.create_block_mask("(doc:i32:1[q_idx] == 0)", 1, 1, 128, 128, device="cpu")


def test_cuda_block_mask_without_a_device_says_so():
    if flexjit.cuda_available():
        pytest.skip("a CUDA device is present (the GPU tests cover it)")
    with pytest.raises(flexjit.FlexJitError):  # CudaUnavailableError is one
        flexjit.create_block_mask(M.causal, 1, 1, 256, 256, device="cuda")


def test_strided_numpy_buffers_are_bound_without_a_copy():
    base = np.repeat(np.arange(40, dtype=np.int32), 50)  # 2000 ids
    strided = base[::2]  # 1000 ids, stride 2 elements: bound in place
    assert not strided.flags["C_CONTIGUOUS"]
    fn = M.document_mask(flexjit.buffer(strided))
    traced = flexjit.trace_mask_mod(fn)
    assert traced.buffers[0].obj is strided
    bm = flexjit.create_block_mask(fn, 1, 1, 1000, 1000, device="cpu", BLOCK_SIZE=64)
    dense = dense_mask(M.document_mask(np.ascontiguousarray(strided)), 1, 1, 1000, 1000)
    np.testing.assert_array_equal(np.asarray(bm.states()), brute_states(dense, 64, 64))
    # a 2-D transposed view: strides (1, 8)
    table = np.arange(64, dtype=np.float32).reshape(8, 8).T
    fn2 = lambda b, h, q, kv: flexjit.buffer(table)[q % 8, kv % 8] > 20.0  # noqa: E731
    bm2 = flexjit.create_block_mask(fn2, 1, 1, 256, 256, device="cpu", BLOCK_SIZE=64)
    dense2 = dense_mask(lambda b, h, q, kv: table[q % 8, kv % 8] > 20.0, 1, 1, 256, 256)
    np.testing.assert_array_equal(np.asarray(bm2.states()), brute_states(dense2, 64, 64))
