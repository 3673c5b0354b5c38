"""bench/python_bench.py without a GPU or torch: its case table is torch_flex_anchor.py's (the
16 ANCHORS cases), its FLOP count is the anchors' rule, the mods trace, the table renders, and
without torch the script prints "skipped: ..." and exits 0. flexjit's block masks of the mods
against brute force need libflexjit.so (marker lib)."""

import ast
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import flexjit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(REPO, "bench")
SCRIPT = os.path.join(BENCH, "python_bench.py")
ANCHOR = os.path.join(BENCH, "torch_flex_anchor.py")
# The untouched original of the ANCHORS measurements, where this checkout has ../shared.
SHARED_ANCHOR = os.path.join(os.path.dirname(REPO), "shared", "anchors", "torch_flex_anchor.py")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pb = _load("python_bench", SCRIPT)
import anchor_cases  # noqa: E402  (bench/ is on sys.path once python_bench is loaded)


def _tree(path):
    with open(path) as f:
        source = f.read()
    return source, ast.parse(source)


def _function(tree, name):
    return next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)


# ---- numpy stand-ins for the torch calls the anchors' mods make -------------------------------


class Arr(np.ndarray):
    """An ndarray with torch's .clamp(min, max) and .abs()."""

    def clamp(self, lo, hi):
        return np.clip(self, lo, hi)

    def abs(self):
        return np.abs(self)


class FakeTorch:
    int32 = np.int32

    @staticmethod
    def zeros(n, dtype=None, device=None):
        return np.zeros(n, dtype=dtype or np.float32).view(Arr)

    exp2 = staticmethod(np.exp2)
    tanh = staticmethod(np.tanh)


def _numpy_doc(S):
    doc = np.zeros(S, dtype=np.int32)
    bounds = anchor_cases.document_bounds(S)
    for i in range(len(bounds) - 1):
        doc[bounds[i]:bounds[i + 1]] = i
    return doc.view(Arr)


def _original_masks(path):
    """torch_flex_anchor.py's own masks(S, H) (the original defines it), run over numpy."""
    source, tree = _tree(path)
    fn = _function(tree, "masks")
    namespace = {"torch": FakeTorch}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), path, "exec"), namespace)
    return namespace["masks"]


def _original_shapes(tree):
    """The `shapes = [...]` list of the original's __main__: (B, H, S, D, dtype name)."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "shapes" and isinstance(node.value, ast.List)):
            out = []
            for t in node.value.elts:
                *nums, dt = t.elts
                out.append(tuple(ast.literal_eval(n) for n in nums) + (dt.attr,))
            return out
    raise AssertionError("no shapes list")


# ---- the case table ---------------------------------------------------------------------------


def test_case_table_is_the_16_anchors_cases():
    cases = pb.all_cases()
    assert len(cases) == 16
    assert len({c["id"] for c in cases}) == 16
    assert [(c["B"], c["H"], c["S"], c["D"], c["dtype"]) for c in cases[::8]] == \
        [(16, 16, 8192, 64, "float16"), (4, 16, 8192, 128, "bfloat16")]
    assert [c["case"] for c in cases] == anchor_cases.VARIANTS * 2
    assert cases[0]["id"] == "noop-f16-D64" and cases[-1]["id"] == "softcap_causal-bf16-D128"


def test_torch_flex_anchor_uses_the_shared_table():
    """bench/torch_flex_anchor.py defines no cases of its own: its shapes and mods come from
    anchor_cases, and compare_torch.py's variants and shapes too."""
    source, tree = _tree(ANCHOR)
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                for a in n.names}
    assert {("anchor_cases", "SHAPES"), ("anchor_cases", "masks")} <= imported
    assert not any(isinstance(n, ast.FunctionDef) and n.name == "masks" for n in ast.walk(tree))
    assert "for (B, H, S, D, dt) in SHAPES" in source
    ct = _load("compare_torch_for_test", os.path.join(BENCH, "compare_torch.py"))
    assert ct.VARIANTS == anchor_cases.VARIANTS
    assert [(B, H, 8192, D, dt) for B, H, D, dt in ct.SHAPES] == anchor_cases.SHAPES


@pytest.mark.skipif(not os.path.exists(SHARED_ANCHOR), reason="no ../shared/anchors here")
def test_cases_and_mods_equal_the_original_anchor_script():
    """The original ../shared/anchors/torch_flex_anchor.py (its masks() and shapes): the same
    names in the same order, the same shapes, and mods that give the same masks and scores
    (run over numpy on sampled rows of S = 8192)."""
    _, tree = _tree(SHARED_ANCHOR)
    assert _original_shapes(tree) == anchor_cases.SHAPES
    S, H = 8192, 16
    original = _original_masks(SHARED_ANCHOR)(S, H)
    ours = anchor_cases.mods(S, H, _numpy_doc(S), FakeTorch)
    assert [n for n, _, _ in original] == [n for n, _, _ in ours] == anchor_cases.VARIANTS
    rng = np.random.default_rng(0)
    rows = np.concatenate([[0, 1, 127, 128, 2047, 2048, 2049, 4095, 4096, 5119, 5120, 6143,
                            6144, 8191], rng.integers(0, S, 50)]).astype(np.int32)
    q = rows.reshape(-1, 1).view(Arr)
    kv = np.arange(S, dtype=np.int32).reshape(1, -1).view(Arr)
    score = rng.standard_normal((len(rows), S)) * 10
    for (name, sm_o, mm_o), (_, sm, mm) in zip(original, ours):
        assert (mm_o is None) == (mm is None) and (sm_o is None) == (sm is None), name
        if mm is not None:
            want = np.broadcast_to(mm_o(0, 0, q, kv), (len(rows), S))
            got = np.broadcast_to(mm(0, 0, q, kv), (len(rows), S))
            assert want.any() and np.array_equal(want, got), name
        if sm is not None:
            for h in (0, 5, 15):
                hh = np.array(h, dtype=np.int32)
                np.testing.assert_array_equal(sm_o(score, 0, hh, q, kv), sm(score, 0, hh, q, kv))


def test_select_cases():
    assert [c["id"] for c in pb.select_cases("causal")] == ["causal-f16-D64", "causal-bf16-D128"]
    assert [c["id"] for c in pb.select_cases("natten-bf16,noop-f16-D64")] == \
        ["noop-f16-D64", "natten-bf16-D128"]
    assert len(pb.select_cases("bf16")) == 8
    assert len(pb.select_cases("")) == 16
    with pytest.raises(ValueError, match="names no case"):
        pb.select_cases("causa")


# ---- FLOP count -------------------------------------------------------------------------------


def _keyword_expr(tree, keyword):
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == keyword:
            value = node.value  # round(EXPR, 1) or EXPR if ... else None
            if isinstance(value, ast.IfExp):
                value = value.body
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "round":
                value = value.args[0]
            return compile(ast.Expression(body=value), "<anchor>", "eval")
    raise AssertionError("no keyword " + keyword)


def test_flop_count_is_the_anchor_scripts():
    """TF/s of python_bench for a time equals torch_flex_anchor.py's TF/s expressions (forward
    4 x, backward 10 x density * B*H*D*S^2), evaluated from its source."""
    _, tree = _tree(ANCHOR)
    assign = next(n for n in ast.walk(_function(tree, "bench_case"))
                  if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "flops")
    flops_expr = compile(ast.Expression(body=assign.value), "<anchor>", "eval")
    fw_expr = _keyword_expr(tree, "flex_fw_tflops")
    bw_expr = _keyword_expr(tree, "flex_bw_tflops")
    for c in pb.all_cases():
        for density in (1.0, 0.508, 0.108):
            env = dict(density=density, B=c["B"], H=c["H"], S=c["S"], D=c["D"], fw=3.0, bw=7.0)
            env["flops"] = eval(flops_expr, {}, env)
            assert pb.tflops(pb.flops(density, c), 3.0) == pytest.approx(eval(fw_expr, {}, env))
            bwd_flop = pb.flops(density, c, backward=True) - pb.flops(density, c)
            assert pb.tflops(bwd_flop, 7.0) == pytest.approx(eval(bw_expr, {}, env))
            assert pb.flops(density, c) == pytest.approx(
                anchor_cases.attention_flops(density, c["B"], c["H"], c["S"], c["D"], c["D"]))
    # compare_torch.py divides by the same function.
    with open(os.path.join(BENCH, "compare_torch.py")) as f:
        assert "flop = anchor_cases.attention_flops(density, B, H, S, D, Dv)" in f.read()


# ---- the mods through flexjit ------------------------------------------------------------------


def _flexjit_mods(S=8192, H=16):
    return anchor_cases.mods(S, H, flexjit.buffer(np.asarray(_numpy_doc(S))), flexjit)


def test_the_mods_trace():
    texts = {}
    for name, sm, mm in _flexjit_mods():
        texts[name] = (flexjit.trace_mask_mod(mm).text if mm else None,
                       flexjit.trace_score_mod(sm).text if sm else None)
    assert texts["noop"] == (None, None)
    assert texts["causal"] == ("(kv_idx <= q_idx)", None)
    assert texts["document"][0] == \
        "((buf0:i32:1[q_idx] == buf0:i32:1[kv_idx]) && (kv_idx <= q_idx))"
    assert texts["natten"][0].count("abs(") == 2
    assert "exp2(" in texts["alibi_causal"][1] and "tanh(" in texts["softcap_causal"][1]


def _brute_force_tiles(mask_mod, S, block=128):
    """[S / block, S / block] bool: which tiles hold a true element (numpy, row block by row
    block)."""
    n = S // block
    kv = np.arange(S, dtype=np.int32).reshape(1, -1).view(Arr)
    out = np.zeros((n, n), dtype=bool)
    for qb in range(n):
        q = np.arange(qb * block, (qb + 1) * block, dtype=np.int32).reshape(-1, 1).view(Arr)
        m = np.broadcast_to(mask_mod(0, 0, q, kv), (block, S))
        out[qb] = np.asarray(m).reshape(block, n, block).any(axis=(0, 2))
    return out


@pytest.mark.lib
def test_flexjit_block_masks_are_brute_forces():
    """flexjit's block masks of the traced mods (the host builder) at S = 8192: exactly the
    tiles brute force over the mods (run on numpy) finds nonzero."""
    S = 8192
    numpy_mods = anchor_cases.mods(S, 16, _numpy_doc(S), FakeTorch)
    for (name, _, mm), (_, _, mm_np) in zip(_flexjit_mods(S), numpy_mods):
        if mm is None:
            continue
        bm = flexjit.create_block_mask(mm, 1, 1, S, S, device="cpu")
        got = np.asarray(bm.to_dense()).reshape(S // 128, S // 128).astype(bool)
        want = _brute_force_tiles(mm_np, S)
        assert np.array_equal(got, want), name
        assert (100 - bm.sparsity()) / 100 == pytest.approx(want.mean(), abs=1e-9), name


# ---- report ------------------------------------------------------------------------------------


def test_table_and_geomean():
    rows = [dict(case="causal", dtype="float16", D=64, density=0.508, torch_fwd_ms=2.0,
                 flexjit_fwd_ms=1.0, speedup_fwd=2.0, torch_fwdbwd_ms=4.0, flexjit_fwdbwd_ms=4.0,
                 speedup_fwdbwd=1.0, status="ok", flexjit_out_poisoned=False),
            dict(case="natten", dtype="bfloat16", D=128, density=0.108, speedup_fwd=0.5,
                 status="ok", block_masks_equal=False),
            dict(case="noop", dtype="float16", D=64, status="FAIL", fail="flexjit: error 1"),
            dict(case="document", dtype="float16", D=64, status="error", error="boom")]
    text = pb.table(rows, backward=True)
    lines = text.splitlines()
    assert lines[0].startswith("| case |") and "fj/torch f+b" in lines[0]
    assert len({line.count("|") for line in lines[:6]}) == 1  # every row has every column
    assert "FAIL: flexjit: error 1" in text and "error: boom" in text
    assert "block masks differ" in text and "flexjit out not in poisoned memory" in text
    assert "over 2 of 4 cases: forward 1.00x, forward + backward 1.00x" in text
    assert "f+b" not in pb.table(rows, backward=False)
    assert pb.geomean([2.0, 8.0, None]) == pytest.approx(4.0)
    assert pb.speedup(3.0, 1.5) == 2.0 and pb.speedup(None, 1.0) is None


# ---- without torch -----------------------------------------------------------------------------


def _run(args, block_torch):
    """The script in a subprocess; block_torch: `import torch` fails there even where torch is
    installed (sys.modules['torch'] = None)."""
    if block_torch:
        code = ("import runpy, sys; sys.modules['torch'] = None; sys.argv = %r; "
                "runpy.run_path(%r, run_name='__main__')" % ([SCRIPT] + args, SCRIPT))
        cmd = [sys.executable, "-c", code]
    else:
        cmd = [sys.executable, SCRIPT] + args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)


def test_without_torch_it_says_skipped_and_exits_0(tmp_path):
    out = tmp_path / "out.jsonl"
    p = _run(["--quick", "--backward", "--json", str(out)], block_torch=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("skipped: torch is not importable"), p.stdout
    assert not out.exists()


def test_the_plain_command_line_without_torch():
    try:
        import torch  # noqa: F401
        pytest.skip("this python has torch: the plain run would measure")
    except ImportError:
        pass
    p = _run([], block_torch=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines() == ["skipped: torch is not importable (No module named "
                                             "'torch')"]


def test_list_and_bad_cases():
    p = _run(["--list"], block_torch=True)
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 16
    p = _run(["--cases", "nope"], block_torch=True)
    assert p.returncode == 2 and "names no case" in p.stderr
    json.dumps(pb.all_cases())  # the rows' case fields are JSON
