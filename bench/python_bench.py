"""flexjit (the Python package) beside torch flex_attention on the very same torch tensors, in
one Python process: the 16 ANCHORS cases (bench/anchor_cases.py, the cases and mods
bench/torch_flex_anchor.py times), forward and, with --backward, forward + backward.

  FLEXJIT_LIBRARY=dist/lib/libflexjit.so PYTHONPATH=python python3 bench/python_bench.py --json out.jsonl
  ... --backward                  also forward + backward through autograd, for both
  ... --cases causal,natten-bf16  only these (a variant name, or an id like causal-f16-D64)
  ... --quick                     fewer repetitions (a smoke run; the compiles remain)

The library: $FLEXJIT_LIBRARY, else the installed package's own (flexjit._lib's search); the
package: PYTHONPATH, the installed copy, or else this tree's python/. Without torch, triton, a
CUDA device or the library it prints "skipped: <reason>" and exits 0. scripts/bench.sh --python
runs it over dist/.

Per case, on one seeded set of q, k, v (torch.randn on the GPU):
  torch    torch_flex_anchor.flex (flex_attention under torch.compile(dynamic=False), as the
           ANCHORS measurements build it) with torch's create_block_mask(mask_mod, 1, 1, S, S,
           device="cuda");
  flexjit  flexjit.flex_attention with the same Python mask_mod / score_mod (traced by the
           package) and flexjit.create_block_mask(mask_mod, 1, 1, S, S, device="cuda").
Correctness first: the first call of each (its compile: the "first call" columns) writes into
memory the caching allocator just handed back NaN-filled (out_poisoned says whether the output
landed there), then: every output element finite; torch's and flexjit's error against a float64
reference on 32 random query rows of (b=0, h=0..1) within the dtype's floor (flexjit's within
max(2 x torch's, floor)); flexjit against torch on the whole output within 2 x floor. With
--backward the same for dq, dk, dv of one forward + backward (float64 autograd on (b=0,
h=0..1) as the reference). A row that fails is marked FAIL and not timed.
Timing, the same for both: CUDA events around one call, a 256 MiB L2-clearing write before
each (outside the events, as triton.testing.do_bench does), --warmup calls first, the median of
--reps calls. Forward + backward: out = f(q, k, v); out.backward(g) per call, the gradients
reset (to None) before each. Block-mask builds: the host clock around a call and a device
synchronize, median of --mask-reps (torch's eager create_block_mask against flexjit's GPU
builder, tracing included). TF/s: anchor_cases.attention_flops (4 * density * B*H*S^2*D forward,
3.5 x that for forward + backward), torch's block-mask density for both, so a TF/s ratio is the
time ratio. fj/torch = torch's time / flexjit's (above 1: flexjit faster); geometric means over
the rows that passed.
"""

import argparse
import datetime
import gc
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import anchor_cases  # noqa: E402  the 16 cases, their mods and the FLOP count (no torch)

# ‖x - ref‖ / ‖ref‖ floors per dtype: (output, gradients), as python/tests/test_gpu.py's.
FLOOR = {"float16": (4e-3, 8e-3), "bfloat16": (2.5e-2, 4e-2)}
CHECK_ROWS = 32
GRAD_CHECK_MAX_S = 8192  # float64 autograd on (b=0, h=0..1): a few [2, S, S] float64 tensors
L2_FLUSH_BYTES = 256 << 20
SHORT_DTYPE = {"float16": "f16", "bfloat16": "bf16"}


# ---- cases (no torch) ------------------------------------------------------------------------

def case_id(c):
    return "%s-%s-D%d" % (c["case"], SHORT_DTYPE.get(c["dtype"], c["dtype"]), c["D"])


def all_cases():
    """The 16 ANCHORS cases, each with its id."""
    return [dict(c, id=case_id(c)) for c in anchor_cases.cases()]


def select_cases(spec):
    """The cases `spec` names (comma-separated: a variant name, an id, a prefix of an id such
    as causal-bf16, or a dtype f16 / bf16); all of them for an empty spec. An unknown name is
    an error (ValueError)."""
    cases = all_cases()
    if not spec:
        return cases
    chosen = []
    for word in [w.strip() for w in spec.split(",") if w.strip()]:
        hit = [c for c in cases if word in (c["case"], c["id"], SHORT_DTYPE[c["dtype"]])
               or c["id"].startswith(word + "-")]
        if not hit:
            raise ValueError("--cases: %r names no case (the cases: %s)"
                             % (word, ", ".join(c["id"] for c in cases)))
        chosen += [c for c in hit if c not in chosen]
    return [c for c in cases if c in chosen]


def flops(density, c, backward=False):
    """FLOPs of one forward, or of one forward + backward."""
    fwd = anchor_cases.attention_flops(density, c["B"], c["H"], c["S"], c["D"])
    if backward:
        return fwd + anchor_cases.attention_flops(density, c["B"], c["H"], c["S"], c["D"],
                                                  backward=True)
    return fwd


def tflops(flop, ms):
    return flop / ms / 1e9 if isinstance(ms, (int, float)) and ms > 0 else None


def speedup(torch_ms, fj_ms):
    ok = all(isinstance(x, (int, float)) and x > 0 for x in (torch_ms, fj_ms))
    return torch_ms / fj_ms if ok else None


def geomean(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


# ---- environment ------------------------------------------------------------------------------

def import_flexjit():
    """The package: from PYTHONPATH / the installed copy, else this tree's python/."""
    try:
        import flexjit
    except ImportError:
        sys.path.insert(0, os.path.join(REPO, "python"))
        import flexjit
    return flexjit


def skip_reason():
    """None when the GPU path can run, else why not."""
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        return "torch is not importable (%s)" % e
    try:
        import triton  # noqa: F401  torch.compile's flex_attention is Triton
    except Exception as e:
        return "triton is not importable (%s)" % e
    try:
        importlib.import_module("torch.nn.attention.flex_attention")
    except Exception as e:
        return "torch %s has no torch.nn.attention.flex_attention (%s)" % (torch.__version__, e)
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    try:
        flexjit = import_flexjit()
    except Exception as e:
        return "the flexjit package is not importable (%s)" % e
    try:
        flexjit._lib.lib()
    except flexjit.LibraryNotFoundError as e:
        return str(e)
    if not flexjit.cuda_available():
        return "libflexjit.so finds no CUDA device: " + flexjit.cuda_unavailable_reason()
    return None


def git_commit():
    try:
        out = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except Exception:
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


# ---- measuring (torch) ------------------------------------------------------------------------

class Bench:
    """What every case uses: torch, the compiled flex_attention, flexjit, the timers."""

    def __init__(self, args):
        import torch
        import torch_flex_anchor  # the compiled flex_attention the ANCHORS measurements use

        self.torch = torch
        self.api = importlib.import_module("torch.nn.attention.flex_attention")
        self.anchor = torch_flex_anchor
        self.flexjit = import_flexjit()
        self.args = args
        self.flush_buf = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device="cuda")

    # -- timing

    def sync(self):
        self.torch.cuda.synchronize()

    def wall_s(self, fn):
        """(seconds of one call, host clock between device synchronizes; its result)."""
        self.sync()
        t0 = time.perf_counter()
        result = fn()
        self.sync()
        return time.perf_counter() - t0, result

    def events_ms(self, fn, before=None):
        """Median ms of single calls of fn between CUDA events (an L2-clearing write and
        `before` ahead of each, outside the events), after --warmup calls."""
        torch, a = self.torch, self.args
        for _ in range(a.warmup):
            if before is not None:
                before()
            fn()
        self.sync()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(a.reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(a.reps)]
        for s, e in zip(starts, ends):
            if before is not None:
                before()
            self.flush_buf.zero_()
            s.record()
            fn()
            e.record()
        self.sync()
        return statistics.median(s.elapsed_time(e) for s, e in zip(starts, ends))

    def host_ms(self, fn, reps):
        return statistics.median(self.wall_s(fn)[0] * 1e3 for _ in range(reps))

    # -- correctness

    def poison(self, specs):
        """NaN-filled blocks of these (shape, dtype), freed back to the caching allocator: the
        next allocations of those sizes get them. Their pointers."""
        torch = self.torch
        blocks = [torch.full(shape, float("nan"), dtype=dt, device="cuda") for shape, dt in specs]
        self.sync()
        ptrs = {b.data_ptr() for b in blocks}
        del blocks
        return ptrs

    def nonfinite(self, t):
        return int((~self.torch.isfinite(t)).sum().item())

    def rel_err(self, x, ref):
        """‖x - ref‖ / ‖ref‖ in float64 (float32 for whole large tensors)."""
        torch = self.torch
        wide = torch.float64 if x.numel() <= (1 << 24) else torch.float32
        x, ref = x.to(wide), ref.to(wide)
        return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()

    def reference(self, qq, kk, vv, score_mod, mask_mod, rows):
        """float64 attention of the query rows `rows` of heads 0..1 over every key."""
        return anchor_cases.reference_attention(qq, kk, vv, score_mod, mask_mod, rows)

    # -- one case

    def run_case(self, c, seed):
        torch, fj, a = self.torch, self.flexjit, self.args
        B, H, S, D = c["B"], c["H"], c["S"], c["D"]
        dtype = getattr(torch, c["dtype"])
        floor_out, floor_grad = [f * a.tol_scale for f in FLOOR[c["dtype"]]]
        r = dict(id=c["id"], case=c["case"], B=B, H=H, S=S, D=D, dtype=c["dtype"])
        score_mod, mask_mod = {n: (sm, mm) for n, sm, mm in self.anchor.masks(S, H)}[c["case"]]
        gen = torch.Generator(device="cuda").manual_seed(seed)
        q, k, v = [torch.randn(B, H, S, D, device="cuda", dtype=dtype, generator=gen)
                   for _ in range(3)]
        rows = torch.randint(0, S, (CHECK_ROWS,), device="cuda", generator=gen)
        fails = []

        # Block masks: the first build of each, then whether they agree.
        def torch_mask():
            return self.api.create_block_mask(mask_mod, 1, 1, S, S, device="cuda")

        def fj_mask():
            return fj.create_block_mask(mask_mod, 1, 1, S, S, device="cuda")

        tbm = fbm = None
        if mask_mod is not None:
            r["torch_mask_first_s"], tbm = self.wall_s(torch_mask)
            r["flexjit_mask_first_s"], fbm = self.wall_s(fj_mask)
            density = (100 - tbm.sparsity()) / 100
            r["flexjit_density"] = round((100 - fbm.sparsity()) / 100, 6)
            dense_t = tbm.to_dense().cpu().to(torch.int32).reshape(-1)
            dense_f = fbm.to_dense().cpu().to(torch.int32).reshape(-1)
            r["block_masks_equal"] = bool(torch.equal(dense_t, dense_f))
        else:
            density = 1.0
        r["density"] = round(density, 6)

        def torch_call(qq, kk, vv):
            return self.anchor.flex(qq, kk, vv, score_mod=score_mod, block_mask=tbm)

        def fj_call(qq, kk, vv):
            return fj.flex_attention(qq, kk, vv, score_mod=score_mod, block_mask=fbm)

        # Forward: the first (checked) call of each into poisoned memory.
        out_specs = [((B, H, S, D), dtype), ((B, H, S), torch.float32)]
        outs = {}
        for side, call in (("torch", torch_call), ("flexjit", fj_call)):
            ptrs = self.poison(out_specs)
            r[side + "_first_call_s"], o = self.wall_s(lambda: call(q, k, v))
            r[side + "_out_poisoned"] = o.data_ptr() in ptrs
            outs[side] = o
        with torch.no_grad():
            ref = self.reference(q[:1, :2, rows].double(), k[:1, :2].double(),
                                 v[:1, :2].double(), score_mod, mask_mod, rows)
            for side, o in outs.items():
                bad = self.nonfinite(o)
                r[side + "_nonfinite"] = bad
                if bad:
                    fails.append("%s: %d non-finite output elements" % (side, bad))
                r[side + "_rel_err"] = self.rel_err(o[:1, :2, rows], ref)
            r["flexjit_vs_torch_rel_err"] = self.rel_err(outs["flexjit"], outs["torch"])
        e_t, e_f, e_ft = r["torch_rel_err"], r["flexjit_rel_err"], r["flexjit_vs_torch_rel_err"]
        if not e_t <= floor_out:
            fails.append("torch: error %.3g vs float64 > %.3g" % (e_t, floor_out))
        if not e_f <= max(2 * e_t, floor_out):
            fails.append("flexjit: error %.3g vs float64 > max(2 x torch's %.3g, %.3g)"
                         % (e_f, e_t, floor_out))
        if not e_ft <= 2 * floor_out:
            fails.append("flexjit vs torch: %.3g > %.3g" % (e_ft, 2 * floor_out))
        del outs, o, ref

        # Forward + backward: one checked call of each, the gradients compared.
        leaves = g = None
        if a.backward:
            leaves = [t.detach().requires_grad_() for t in (q, k, v)]  # q, k, v's storage
            g = torch.randn(B, H, S, D, device="cuda", dtype=dtype, generator=gen)

            def clear():
                for t in leaves:
                    t.grad = None

            grads = {}
            # out and dq, dk, dv (and room for a backward's temporaries) of q's size; lse's.
            grad_specs = [((B, H, S, D), dtype)] * 6 + [((B, H, S), torch.float32)] * 2
            for side, call in (("torch", torch_call), ("flexjit", fj_call)):
                clear()
                ptrs = self.poison(grad_specs)
                r[side + "_fwdbwd_first_call_s"], _ = self.wall_s(
                    lambda: call(*leaves).backward(g))
                grads[side] = [t.grad for t in leaves]
                # how many of dq, dk, dv were written into poisoned memory (of 3)
                r[side + "_grads_poisoned"] = sum(t.data_ptr() in ptrs for t in grads[side])
            clear()
            refs = [None] * 3
            if S <= GRAD_CHECK_MAX_S:
                qq, kk, vv = [t.detach()[:1, :2].double().requires_grad_() for t in (q, k, v)]
                self.reference(qq, kk, vv, score_mod, mask_mod,
                               torch.arange(S, device="cuda")).backward(g[:1, :2].double())
                refs = [qq.grad, kk.grad, vv.grad]
                del qq, kk, vv
            for i, n in enumerate(("dq", "dk", "dv")):
                for side in ("torch", "flexjit"):
                    bad = self.nonfinite(grads[side][i])
                    if bad:
                        fails.append("%s: %d non-finite %s elements" % (side, bad, n))
                    if refs[i] is not None:
                        r["%s_%s_rel_err" % (side, n)] = self.rel_err(grads[side][i][:1, :2],
                                                                      refs[i])
                r["flexjit_vs_torch_%s_rel_err" % n] = self.rel_err(grads["flexjit"][i],
                                                                     grads["torch"][i])
                et, ef = r.get("torch_%s_rel_err" % n), r.get("flexjit_%s_rel_err" % n)
                if refs[i] is not None and not et <= floor_grad:
                    fails.append("torch: %s error %.3g vs float64 > %.3g" % (n, et, floor_grad))
                if refs[i] is not None and not ef <= max(2 * et, floor_grad):
                    fails.append("flexjit: %s error %.3g vs float64 > max(2 x torch's %.3g, %.3g)"
                                 % (n, ef, et, floor_grad))
                eft = r["flexjit_vs_torch_%s_rel_err" % n]
                if not eft <= 2 * floor_grad:
                    fails.append("flexjit vs torch: %s %.3g > %.3g" % (n, eft, 2 * floor_grad))
            del grads, refs

        if fails:
            r["status"] = "FAIL"
            r["fail"] = "; ".join(fails)
            return r

        # Timing: the same method for both.
        if mask_mod is not None:
            r["torch_mask_ms"] = self.host_ms(torch_mask, a.mask_reps)
            r["flexjit_mask_ms"] = self.host_ms(fj_mask, a.mask_reps)
        flop = flops(density, c)
        for side, call in (("torch", torch_call), ("flexjit", fj_call)):
            ms = self.events_ms(lambda: call(q, k, v))
            r[side + "_fwd_ms"], r[side + "_fwd_tflops"] = ms, tflops(flop, ms)
        r["speedup_fwd"] = speedup(r["torch_fwd_ms"], r["flexjit_fwd_ms"])
        if a.backward:
            flop_fb = flops(density, c, backward=True)
            for side, call in (("torch", torch_call), ("flexjit", fj_call)):
                ms = self.events_ms(lambda: call(*leaves).backward(g), before=clear)
                r[side + "_fwdbwd_ms"], r[side + "_fwdbwd_tflops"] = ms, tflops(flop_fb, ms)
                clear()
            r["speedup_fwdbwd"] = speedup(r["torch_fwdbwd_ms"], r["flexjit_fwdbwd_ms"])
        r["status"] = "ok"
        return r


# ---- report (no torch) -----------------------------------------------------------------------

def _f(x, spec):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    return format(x, spec)


def table(rows, backward):
    """The markdown table of the rows, then the geometric means."""
    head = ["case", "dtype", "D", "density", "torch fwd ms", "fj fwd ms", "torch TF/s", "fj TF/s",
            "fj/torch fwd"]
    if backward:
        head += ["torch f+b ms", "fj f+b ms", "torch f+b TF/s", "fj f+b TF/s", "fj/torch f+b"]
    head += ["torch mask ms", "fj mask ms", "torch 1st call s", "fj 1st call s", "torch err",
             "fj err", "fj vs torch", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["case"], SHORT_DTYPE.get(r.get("dtype"), str(r.get("dtype"))), str(r["D"]),
                 _f(r.get("density"), ".3f"),
                 _f(r.get("torch_fwd_ms"), ".3f"), _f(r.get("flexjit_fwd_ms"), ".3f"),
                 _f(r.get("torch_fwd_tflops"), ".0f"), _f(r.get("flexjit_fwd_tflops"), ".0f"),
                 _f(r.get("speedup_fwd"), ".2f")]
        if backward:
            cells += [_f(r.get("torch_fwdbwd_ms"), ".3f"), _f(r.get("flexjit_fwdbwd_ms"), ".3f"),
                      _f(r.get("torch_fwdbwd_tflops"), ".0f"),
                      _f(r.get("flexjit_fwdbwd_tflops"), ".0f"), _f(r.get("speedup_fwdbwd"), ".2f")]
        first_fj = r.get("flexjit_first_call_s")
        cells += [_f(r.get("torch_mask_ms"), ".3f"), _f(r.get("flexjit_mask_ms"), ".3f"),
                  _f(r.get("torch_first_call_s"), ".2f"), _f(first_fj, ".2f"),
                  _f(r.get("torch_rel_err"), ".2e"), _f(r.get("flexjit_rel_err"), ".2e"),
                  _f(r.get("flexjit_vs_torch_rel_err"), ".2e"), status_cell(r)]
        lines.append("| " + " | ".join(cells) + " |")
    ok = [r for r in rows if r.get("status") == "ok"]
    means = ["geometric mean fj/torch over %d of %d cases: forward %s"
             % (len(ok), len(rows), _x(geomean([r.get("speedup_fwd") for r in ok])))]
    if backward:
        means.append("forward + backward %s"
                     % _x(geomean([r.get("speedup_fwdbwd") for r in ok])))
    return "\n".join(lines) + "\n\n" + ", ".join(means)


def _x(v):
    return "-" if v is None else "%.2fx" % v


def status_cell(r):
    s = r.get("status", "?")
    if s == "FAIL":
        return "FAIL: " + r.get("fail", "")
    if s == "error":
        return "error: " + r.get("error", "")
    notes = []
    if r.get("block_masks_equal") is False:
        notes.append("block masks differ")
    for side in ("torch", "flexjit"):
        if r.get(side + "_out_poisoned") is False:
            notes.append(side + " out not in poisoned memory")
    return s + (" (" + "; ".join(notes) + ")" if notes else "")


# ---- main ------------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[2:7]))
    ap.add_argument("--cases", default="",
                    help="comma-separated: variant names (causal), ids (causal-f16-D64), "
                         "prefixes (causal-bf16) or dtypes (f16, bf16); default all 16")
    ap.add_argument("--reps", type=int, default=None,
                    help="timed calls per measurement (median; default 100, --quick 10)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="untimed calls first (default 10, --quick 3)")
    ap.add_argument("--mask-reps", type=int, default=None,
                    help="block-mask builds timed (median; default 20, --quick 3)")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--backward", action="store_true",
                    help="also forward + backward through autograd, for both")
    ap.add_argument("--seed", type=int, default=0, help="q, k, v of case i from seed + i")
    ap.add_argument("--tol-scale", type=float, default=1.0,
                    help="multiply the error floors (f16 4e-3 / 8e-3, bf16 2.5e-2 / 4e-2 for "
                         "outputs / gradients)")
    ap.add_argument("--json", default=None, help="write one JSON object per case (JSON lines)")
    ap.add_argument("--list", action="store_true", help="print the selected cases and exit")
    a = ap.parse_args(argv)
    defaults = (10, 3, 3) if a.quick else (100, 10, 20)
    for name, d in zip(("reps", "warmup", "mask_reps"), defaults):
        if getattr(a, name) is None:
            setattr(a, name, d)
    if a.reps < 1 or a.warmup < 0 or a.mask_reps < 1:
        ap.error("--reps and --mask-reps must be at least 1, --warmup at least 0")
    return a


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cases = select_cases(a.cases)
    except ValueError as e:
        print("python_bench.py: %s" % e, file=sys.stderr)
        return 2
    if a.list:
        for c in cases:
            print("%-24s B=%d H=%d S=%d D=%d %s" % (c["id"], c["B"], c["H"], c["S"], c["D"],
                                                   c["dtype"]))
        return 0
    why = skip_reason()
    if why is not None:
        print("skipped: " + why)
        return 0

    bench = Bench(a)
    torch = bench.torch
    meta = dict(device=torch.cuda.get_device_name(), torch=torch.__version__,
                flexjit_commit=git_commit(), flexjit_library=bench.flexjit._lib.lib().flexjit_path,
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                reps=a.reps, warmup=a.warmup, mask_reps=a.mask_reps, backward=a.backward,
                # first calls: a cold flexjit cache compiles (scripts/bench.sh makes a fresh
                # one); torch's inductor cache may hold kernels of an earlier run
                flexjit_cache_dir=os.environ.get("FLEXJIT_CACHE_DIR"),
                cuda_cache_disable=os.environ.get("CUDA_CACHE_DISABLE"))
    print("flexjit (Python package) vs torch flex_attention, same tensors: %s, torch %s, "
          "flexjit %s (%s)" % (meta["device"], meta["torch"], meta["flexjit_commit"] or "?",
                               meta["flexjit_library"]), flush=True)
    sink = open(a.json, "w") if a.json else None
    rows = []
    try:
        for i, c in enumerate(cases):
            try:
                r = bench.run_case(c, a.seed + i)
            except Exception as e:  # one failing case must not lose the others
                r = dict(id=c["id"], case=c["case"], B=c["B"], H=c["H"], S=c["S"], D=c["D"],
                         dtype=c["dtype"], status="error", error=repr(e)[:400])
            r.update(meta)
            rows.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)  # progress; the table on stdout
            if sink is not None:
                sink.write(json.dumps(r) + "\n")
                sink.flush()
            gc.collect()
            torch.cuda.empty_cache()
    finally:
        if sink is not None:
            sink.close()
    print()
    print(table(rows, a.backward))
    return 0


if __name__ == "__main__":
    sys.exit(main())
