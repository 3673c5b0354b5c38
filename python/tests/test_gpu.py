"""flexjit against torch.nn.attention.flex_attention on identical tensors, forward, lse and
gradients (marker `gpu`: needs torch with CUDA and libflexjit.so; skipped otherwise).

    FLEXJIT_LIBRARY=/path/to/libflexjit.so python3 -m pytest -m gpu python/tests -v

Each case runs the same Python mods through both: torch's eager flex_attention in float64 is the
reference, torch's in the inputs' dtype measures what low precision costs, and flexjit's error
against the reference must be within max(2 x torch's, a floor). The mods use torch functions
(torch.where, torch.tanh, torch.exp2), which flexjit traces through __torch_function__.
"""

import math

import pytest

import flexjit

import mods as M

torch = pytest.importorskip("torch")
tfa = pytest.importorskip("torch.nn.attention.flex_attention")

pytestmark = pytest.mark.gpu

# ‖x - ref‖ / ‖ref‖ floors per dtype: (output, gradients)
FLOOR = {torch.float16: (4e-3, 8e-3), torch.bfloat16: (2.5e-2, 4e-2)}


def torch_flex(q, k, v, score_mod, block_mask, enable_gqa, scale=None):
    """torch's flex_attention (eager) returning (out, lse), across the return_lse ->
    return_aux change."""
    AuxRequest = getattr(tfa, "AuxRequest", None)
    if AuxRequest is not None:
        out, aux = tfa.flex_attention(q, k, v, score_mod=score_mod, block_mask=block_mask,
                                      scale=scale, enable_gqa=enable_gqa,
                                      return_aux=AuxRequest(lse=True))
        return out, aux.lse
    return tfa.flex_attention(q, k, v, score_mod=score_mod, block_mask=block_mask, scale=scale,
                              enable_gqa=enable_gqa, return_lse=True)


def rel_err(x, ref):
    x, ref = x.double(), ref.double()
    return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def lse_err(x, ref):
    """Max |x - ref| over finite entries; -inf must match -inf exactly."""
    x, ref = x.double(), ref.double()
    inf_x, inf_r = torch.isinf(x), torch.isinf(ref)
    assert torch.equal(inf_x, inf_r), "lse: -inf rows differ"
    if (~inf_r).any():
        return (x[~inf_r] - ref[~inf_r]).abs().max().item()
    return 0.0


def make_inputs(B, Hq, Hkv, L, S, E, dtype, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    q = torch.randn(B, Hq, L, E, device="cuda", dtype=dtype, generator=g)
    k = torch.randn(B, Hkv, S, E, device="cuda", dtype=dtype, generator=g)
    v = torch.randn(B, Hkv, S, E, device="cuda", dtype=dtype, generator=g)
    d_out = torch.randn(B, Hq, L, E, device="cuda", dtype=dtype, generator=g)
    return q, k, v, d_out


def run_torch(q, k, v, d_out, mask_mod, score_mod, gqa, precision):
    B, Hq, L, _ = q.shape
    S = k.shape[2]
    args = [t.detach().to(precision).clone().requires_grad_() for t in (q, k, v)]
    bm = tfa.create_block_mask(mask_mod, B, Hq, L, S, device="cuda") if mask_mod else None
    out, lse = torch_flex(*args, score_mod, bm, gqa)
    out.backward(d_out.to(precision))
    return out.detach(), lse.detach(), [a.grad for a in args]


def run_flexjit(q, k, v, d_out, mask_mod, score_mod, gqa, block_device):
    B, Hq, L, _ = q.shape
    S = k.shape[2]
    args = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    bm = (flexjit.create_block_mask(mask_mod, B, Hq, L, S, device=block_device)
          if mask_mod else None)
    out, lse = flexjit.flex_attention(*args, score_mod=score_mod, block_mask=bm,
                                      enable_gqa=gqa, return_lse=True)
    assert out.shape == q.shape[:3] + (v.shape[-1],) and out.dtype == q.dtype
    assert lse.shape == q.shape[:3] and lse.dtype == torch.float32
    out.backward(d_out)
    torch.cuda.synchronize()
    return out.detach(), lse.detach(), [a.grad for a in args]


def compare(q, k, v, d_out, mask_mod, score_mod, gqa=False, block_device="cuda"):
    ref_out, ref_lse, ref_grads = run_torch(q, k, v, d_out, mask_mod, score_mod, gqa,
                                            torch.float64)
    lp_out, lp_lse, lp_grads = run_torch(q, k, v, d_out, mask_mod, score_mod, gqa, q.dtype)
    fj_out, fj_lse, fj_grads = run_flexjit(q, k, v, d_out, mask_mod, score_mod, gqa,
                                           block_device)
    floor_out, floor_grad = FLOOR[q.dtype]
    report = []
    e_fj, e_lp = rel_err(fj_out, ref_out), rel_err(lp_out, ref_out)
    report.append("out %.3g (torch %.3g)" % (e_fj, e_lp))
    ok = e_fj <= max(2 * e_lp, floor_out)
    l_fj, l_lp = lse_err(fj_lse, ref_lse), lse_err(lp_lse, ref_lse)
    report.append("lse %.3g (torch %.3g)" % (l_fj, l_lp))
    ok &= l_fj <= max(2 * l_lp, 2e-2)
    for name, g_fj, g_lp, g_ref in zip(("dq", "dk", "dv"), fj_grads, lp_grads, ref_grads):
        e_fj, e_lp = rel_err(g_fj, g_ref), rel_err(g_lp, g_ref)
        report.append("%s %.3g (torch %.3g)" % (name, e_fj, e_lp))
        ok &= e_fj <= max(2 * e_lp, floor_grad)
        assert g_fj.shape == g_ref.shape and g_fj.dtype == q.dtype
    print("; ".join(report))
    assert ok, "; ".join(report)
    return fj_out, fj_lse


# ---- the mods, in torch's spelling ------------------------------------------------------------


def softcap_torch(score, b, h, q_idx, kv_idx):
    return torch.tanh(score / M.SOFTCAP) * M.SOFTCAP


def doc_ids(S, seed=1, dtype=torch.int32):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(20, 300, (64,), generator=g)
    ids = torch.repeat_interleave(torch.arange(64), lengths)[:S]
    return ids.to(dtype).cuda()


def rel_bias(H, L, S, seed=2):
    """bias[h, kv - q + L - 1], a [H, L + S - 1] float32 table."""
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(H, L + S - 1, generator=g).cuda()

    def score_mod(score, b, h, q_idx, kv_idx):
        return score + table[h, kv_idx - q_idx + (L - 1)]
    return score_mod


def alibi_slopes(H):
    return torch.tensor(M.alibi_slopes(H), dtype=torch.float32, device="cuda")


# (id, mask_mod factory, score_mod factory, B, Hq, Hkv, L, S, E, dtype, GQA, block mask device)
CASES = [
    ("causal", lambda: M.causal, lambda: None, 2, 4, 4, 1024, 1024, 64, torch.bfloat16, False,
     "cuda"),
    ("causal_odd_f16", lambda: M.causal, lambda: None, 1, 2, 2, 1000, 777, 128, torch.float16,
     False, "cuda"),
    ("sliding_window_odd_cpu_mask", lambda: M.sliding_window, lambda: None, 1, 2, 2, 1000, 777,
     64, torch.bfloat16, False, "cpu"),
    ("prefix_lm", lambda: M.prefix_lm, lambda: None, 1, 2, 2, 777, 1000, 128, torch.bfloat16,
     False, "cuda"),
    ("document", lambda: M.document_mask(doc_ids(1000)), lambda: None, 2, 2, 2, 1000, 1000, 64,
     torch.bfloat16, False, "cuda"),
    ("document_int64_relative_bias", lambda: M.document_mask(doc_ids(1000, dtype=torch.int64)),
     lambda: rel_bias(4, 1000, 1000), 1, 4, 4, 1000, 1000, 64, torch.float16, False, "cuda"),
    ("natten", lambda: M.natten, lambda: None, 1, 2, 2, 1024, 1024, 64, torch.bfloat16, False,
     "cuda"),
    ("alibi_closure_causal", lambda: M.causal, lambda: M.alibi_closure(alibi_slopes(8)), 1, 8, 8,
     1024, 1024, 64, torch.bfloat16, False, "cuda"),
    ("alibi_functional", lambda: None, lambda: M.alibi_functional(4, ops=torch), 1, 4, 4, 512,
     768, 64, torch.float16, False, "cuda"),
    ("softcap_odd", lambda: None, lambda: softcap_torch, 2, 4, 4, 1000, 777, 128, torch.bfloat16,
     False, "cuda"),
    ("gqa_causal", lambda: M.causal, lambda: None, 1, 8, 2, 1024, 1024, 128, torch.bfloat16, True,
     "cuda"),
    ("gqa_sliding_softcap_odd", lambda: M.sliding_window, lambda: softcap_torch, 1, 6, 2, 1000,
     777, 64, torch.float16, True, "cuda"),
    ("checkerboard_torch_where", lambda: None, lambda: M.checkerboard(ops=torch), 1, 2, 2, 512,
     512, 64, torch.bfloat16, False, "cuda"),
    ("causal_bias_score_mod_only", lambda: None, lambda: M.causal_bias(ops=torch), 1, 2, 2, 640,
     640, 64, torch.float16, False, "cuda"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_against_torch(case):
    _, mask_f, score_f, B, Hq, Hkv, L, S, E, dtype, gqa, block_device = case
    q, k, v, d_out = make_inputs(B, Hq, Hkv, L, S, E, dtype)
    compare(q, k, v, d_out, mask_f(), score_f(), gqa=gqa, block_device=block_device)


# ---- semantics ------------------------------------------------------------------------------


def test_lse_is_the_natural_log_logsumexp():
    q, k, v, _ = make_inputs(1, 2, 2, 300, 500, 64, torch.float16)
    bm = flexjit.create_block_mask(M.causal, 1, 2, 300, 500)
    out, lse = flexjit.flex_attention(q, k, v, block_mask=bm, return_lse=True)
    s = (q.double() @ k.double().transpose(-1, -2)) / math.sqrt(64)
    mask = torch.arange(300, device="cuda")[:, None] >= torch.arange(500, device="cuda")[None, :]
    s = s.masked_fill(~mask, -math.inf)
    ref_lse = s.logsumexp(-1)
    ref_out = s.softmax(-1) @ v.double()
    assert (lse.double() - ref_lse).abs().max().item() < 1e-2
    assert rel_err(out, ref_out) < 4e-3


def test_scale_and_return_aux():
    q, k, v, _ = make_inputs(1, 2, 2, 256, 256, 64, torch.bfloat16)
    out = flexjit.flex_attention(q, k, v, scale=0.3)
    ref = torch.softmax((q.double() @ k.double().transpose(-1, -2)) * 0.3, -1) @ v.double()
    assert rel_err(out, ref) < 2e-2
    AuxRequest = getattr(tfa, "AuxRequest", None)
    if AuxRequest is not None:
        out2, aux = flexjit.flex_attention(q, k, v, scale=0.3, return_aux=AuxRequest(lse=True))
        assert torch.equal(out2, out) and aux.lse.shape == (1, 2, 256)


def test_layouts_are_read_in_place_or_made_contiguous():
    q, k, v, _ = make_inputs(2, 4, 4, 512, 384, 64, torch.bfloat16)
    bm = flexjit.create_block_mask(M.causal, 2, 4, 512, 384)
    ref = flexjit.flex_attention(q, k, v, block_mask=bm)
    # BSHD storage, seen as BHSD: strided, read in place
    qs, ks, vs = [t.transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v)]
    assert qs.stride(1) == 64 and not qs.is_contiguous()
    assert rel_err(flexjit.flex_attention(qs, ks, vs, block_mask=bm), ref) < 5e-3
    # expanded (stride 0) batch and a non-contiguous head dim: copied first
    k1, v1 = k[:1].expand(2, -1, -1, -1), v[:1].expand(2, -1, -1, -1)
    out = flexjit.flex_attention(q, k1, v1, block_mask=bm)
    assert torch.equal(out, flexjit.flex_attention(q, k1.contiguous(), v1.contiguous(),
                                                   block_mask=bm))
    qt = q.transpose(-1, -2).contiguous().transpose(-1, -2)
    assert qt.stride(-1) != 1
    assert rel_err(flexjit.flex_attention(qt, k, v, block_mask=bm), ref) < 5e-3


def test_gradients_through_expanded_inputs():
    q, k, v, d_out = make_inputs(2, 2, 2, 256, 256, 64, torch.float16)
    k1 = k[:1].detach().clone().requires_grad_()
    out = flexjit.flex_attention(q, k1.expand(2, -1, -1, -1), v)
    out.backward(d_out)
    k2 = k[:1].detach().clone().requires_grad_()
    ref = tfa.flex_attention(q.double(), k2.double().expand(2, -1, -1, -1), v.double())
    ref.backward(d_out.double())
    assert rel_err(k1.grad, k2.grad) < 1e-2


def test_gqa_needs_enable_gqa():
    q, k, v, _ = make_inputs(1, 4, 2, 128, 128, 64, torch.bfloat16)
    with pytest.raises(ValueError, match="enable_gqa"):
        flexjit.flex_attention(q, k, v)
    flexjit.flex_attention(q, k, v, enable_gqa=True)


def test_input_errors():
    q, k, v, _ = make_inputs(1, 2, 2, 128, 128, 64, torch.bfloat16)
    with pytest.raises(TypeError, match="one dtype"):
        flexjit.flex_attention(q, k.half(), v)
    with pytest.raises(ValueError, match="CUDA"):
        flexjit.flex_attention(q.cpu(), k.cpu(), v.cpu())
    bm = flexjit.create_block_mask(M.causal, 1, 1, 256, 256)
    with pytest.raises(ValueError, match="block_mask"):
        flexjit.flex_attention(q, k, v, block_mask=bm)
    with pytest.raises(flexjit.FlexJitError):  # head dim 40 is not in the kernel table
        q40 = torch.randn(1, 2, 128, 40, device="cuda", dtype=torch.bfloat16)
        flexjit.flex_attention(q40, q40, q40)


def test_block_mask_on_gpu_equals_host_and_torch():
    doc = doc_ids(1000)
    for fn in (M.causal, M.sliding_window, M.natten, M.document_mask(doc)):
        gpu = flexjit.create_block_mask(fn, 1, 1, 1000, 1000, device="cuda")
        cpu = flexjit.create_block_mask(fn, 1, 1, 1000, 1000, device="cpu")
        assert torch.equal(gpu.states().cpu(), cpu.states().cpu())
        assert gpu.sparsity() == pytest.approx(cpu.sparsity())
        ref = tfa.create_block_mask(fn, 1, 1, 1000, 1000, device="cuda")
        assert torch.equal(gpu.to_dense().cpu(), ref.to_dense().cpu().to(torch.int32))
        assert gpu.sparsity() == pytest.approx(ref.sparsity(), abs=1e-6)


def test_numpy_buffer_block_mask_used_on_the_gpu():
    np = pytest.importorskip("numpy")
    ids = doc_ids(512).cpu().numpy()
    fn = M.document_mask(flexjit.buffer(ids))
    bm = flexjit.create_block_mask(fn, 1, 1, 512, 512, device="cpu")
    q, k, v, d_out = make_inputs(1, 2, 2, 512, 512, 64, torch.bfloat16)
    out = flexjit.flex_attention(q, k, v, block_mask=bm)  # the buffer is copied to the GPU once
    ref = flexjit.flex_attention(
        q, k, v, block_mask=flexjit.create_block_mask(M.document_mask(torch.from_numpy(ids).cuda()),
                                                      1, 1, 512, 512))
    assert torch.equal(out, ref)
    del np


def test_param_changes_without_retracing():
    window = flexjit.Param("window", 64)

    def swa(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx <= window)
    q, k, v, d_out = make_inputs(1, 2, 2, 512, 512, 64, torch.float16)
    out64 = flexjit.flex_attention(q, k, v, block_mask=flexjit.create_block_mask(swa, 1, 2, 512,
                                                                                  512))
    window.value = 200
    out200 = flexjit.flex_attention(q, k, v, block_mask=flexjit.create_block_mask(swa, 1, 2, 512,
                                                                                   512))
    ref = tfa.flex_attention(q.double(), k.double(), v.double(), block_mask=tfa.create_block_mask(
        lambda b, h, qi, ki: (qi >= ki) & (qi - ki <= 200), 1, 2, 512, 512, device="cuda"))
    assert rel_err(out200, ref) < 4e-3
    assert not torch.equal(out64, out200)


def test_runs_on_the_current_stream():
    q, k, v, _ = make_inputs(1, 2, 2, 1024, 1024, 64, torch.bfloat16)
    bm = flexjit.create_block_mask(M.causal, 1, 2, 1024, 1024)
    ref = flexjit.flex_attention(q, k, v, block_mask=bm)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        out = flexjit.flex_attention(q, k, v, block_mask=bm)
    s.synchronize()
    assert torch.equal(out, ref)


def test_torch_functions_trace():
    text = flexjit.trace_score_mod(
        lambda s, b, h, q, kv: torch.where(q >= kv, torch.clamp(s, min=-5.0, max=5.0),
                                           torch.exp(s) + torch.abs(s))).text
    assert text == "where((kv_idx <= q_idx), min(max(score, -5.0f), 5.0f), (exp(score) + abs(score)))"
    bias = torch.zeros(4, 10, device="cuda")
    text = flexjit.trace_score_mod(lambda s, b, h, q, kv: s + bias[h, q % 10] * torch.tensor(2.0)).text
    assert text == "(score + (buf0:f32:2[h, (q_idx % 10)] * 2.0f))"
    text = flexjit.trace_mask_mod(tfa.and_masks(M.causal, lambda b, h, q, kv: q - kv < 8)).text
    assert text == "((kv_idx <= q_idx) && ((q_idx - kv_idx) < 8))"
    text = flexjit.trace_mask_mod(tfa.noop_mask).text
    assert text == "true"


def test_nan_and_inf_inputs_reach_the_rows_they_reach_in_torch():
    """NaN or inf in q, k or v: NaN reaches exactly the rows torch's flex_attention makes NaN
    (a key of NaN: every row attending it; a query with inf: its scores are +-inf, its row NaN),
    the other rows agree, nothing hangs (README, "Bad data read by a mod")."""
    q, k, v, _ = make_inputs(1, 4, 2, 300, 300, 64, torch.float16, seed=5)
    k[0, 1, 200] = float("nan")  # key 200 of kv head 1 (query heads 2, 3)
    q[0, 0, 10, 0] = float("inf")  # query 10 of head 0
    q[0, 3, 250, 7] = float("-inf")
    bm = flexjit.create_block_mask(M.causal, 1, 1, 300, 300)
    out, lse = flexjit.flex_attention(q, k, v, block_mask=bm, enable_gqa=True, return_lse=True)
    torch.cuda.synchronize()
    ref_bm = tfa.create_block_mask(M.causal, 1, 1, 300, 300, device="cuda")
    ref = tfa.flex_attention(q.float(), k.float(), v.float(), block_mask=ref_bm, enable_gqa=True)
    got_nan = torch.isnan(out).any(-1)
    want_nan = torch.isnan(ref).any(-1)
    assert want_nan[0, 2, 200:].all() and want_nan[0, 0, 10] and not want_nan[0, 0, :10].any()
    assert torch.equal(got_nan, want_nan)
    assert torch.equal(torch.isnan(lse), want_nan)
    finite = ~want_nan
    assert torch.allclose(out.float()[finite], ref[finite], atol=2e-3, rtol=2e-3)
