// The attention-level differential fuzzer (issue 15 item 1): random (mask_mod, score_mod)
// pairs (RandomMods' node mix, buffers and params) through random whole calls
// (testing/AttentionFuzz.h: forward, backward, decode; lengths not tile multiples, Q != KV,
// GQA, BSHD, block sizes, CPU and GPU block masks), each against the float64 reference at
// sampled rows, after the corpus (tests/fuzz_corpus_attention/*.fza). A row whose reference moves
// by more than a quarter of the tolerance when the scores move by 2e-5 (relative) is
// ill-conditioned for a float32 kernel and is skipped (random mods make such rows: exp of a large
// score, a jump in the score); the rest must agree. A failing call prints its corpus case (the
// call's line and its mods as a `mod pair`).
//   FLEXJIT_FUZZ_CALLS (default 400), FLEXJIT_FUZZ_SEED (default 1), FLEXJIT_FUZZ_SECONDS
//   (default 210: the run stops early, saying so, to stay within 4 minutes).
// NOT YET RUN ON A GPU (session 21 wrote it without a device): the skip rule's constants are
// first guesses; the paged and varlen paths are generated but not run here yet.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include <flexjit/flexjit.h>

#include "flexjit/compiler/Signature.h"
#include "flexjit/runtime/DeviceBindings.h"
#include "flexjit/runtime/Target.h"
#include "flexjit/testing/AttentionFuzz.h"
#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/FuzzCase.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/RandomMods.h"

using namespace flexjit;
using namespace flexjit::testing;

namespace {

struct FuzzOutcome {
  int rows = 0, skipped = 0;
  double worst = 0; // the largest relative row error among compared rows
  std::string failure;
};

double tolerance(DType dtype) {
  return dtype == DType::BF16 ? 2e-2 : 6e-3;
}

// Relative error of one row (‖got − ref‖ / max(‖ref‖, 1e-3)).
double row_error(const double* got, const double* ref, int n) {
  double num = 0, den = 0;
  for (int i = 0; i < n; ++i) {
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-3);
}

// The forward, backward or decode call c with mods `m` on the GPU, against the reference.
FuzzOutcome run_call(const FuzzCall& c, const RandomMod& m) {
  FuzzOutcome r;
  std::mt19937 rng(c.mod_seed * 31 + static_cast<uint32_t>(c.q_len) * 7 +
                   static_cast<uint32_t>(c.kv_len));
  const MaskMod mask("fuzz_mask", BoolExpr(m.body));
  const ScoreMod score("fuzz_score", FloatExpr(m.score));
  auto [q, k, v, out] = make_attention_tensors(c.B, c.Hq, c.Hkv, c.q_len, c.kv_len, c.dqk, c.dv,
                                               c.dtype, c.bshd, rng);
  const size_t rows = static_cast<size_t>(c.B) * c.Hq * c.q_len;
  DeviceBuffer lse_buf(rows * 4);
  const TensorView lse_view = lse_buf.view(DType::F32, {c.B, c.Hq, c.q_len});
  const DeviceBindings device = to_device({m.body, m.score}, m.bindings);

  BlockMaskOptions bo;
  bo.bindings = c.gpu_block_mask ? device.bindings : m.bindings;
  bo.device = c.gpu_block_mask ? Device::Cuda : Device::Host;
  bo.q_block = c.q_block;
  bo.kv_block = c.kv_block;
  BlockMask bm;
  if (c.block_mask)
    bm = create_block_mask(mask, c.B, 1, c.q_len, c.kv_len, bo);
  FlexAttentionOptions o;
  o.score_mod = score;
  o.block_mask = c.block_mask ? &bm : nullptr;
  o.lse = &lse_view;
  o.bindings = device.bindings;
  flex_attention(q.view, k.view, v.view, out.view, o);
  Stream{}.synchronize();

  // Sampled rows of the output; for the backward, dq's rows at the same positions.
  std::vector<int64_t> pick;
  for (int i = 0; i < 12; ++i)
    pick.push_back(static_cast<int64_t>(rng() % rows));
  const AttentionInputs in{c.B,   c.Hq,      c.Hkv,     c.q_len,   c.kv_len,
                           c.dqk, q.logical, k.logical, v.logical, c.dv};
  const MaskMod ref_mask = c.block_mask ? mask : MaskMod();
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.dqk));
  const AttentionRows ref = attention_reference(in, ref_mask, score, scale, m.bindings, pick);
  // The same rows with every score 2e-5 larger (relative): the conditioning test.
  const AttentionRows moved =
      attention_reference(in, ref_mask, score, scale * (1 + 2e-5), m.bindings, pick);
  const std::vector<uint16_t> stored = download_bits(out);
  const auto st = strides_of(c.Hq, c.q_len, c.dv, c.bshd);
  const double tol = tolerance(c.dtype);
  std::vector<double> got(static_cast<size_t>(c.dv));
  for (size_t i = 0; i < pick.size(); ++i) {
    const int64_t row = pick[i];
    const int qi = static_cast<int>(row % c.q_len), h = static_cast<int>(row / c.q_len % c.Hq),
              b = static_cast<int>(row / c.q_len / c.Hq);
    bool got_nan = false;
    for (int d = 0; d < c.dv; ++d) {
      got[d] = from_half_bits(stored[b * st[0] + h * st[1] + qi * st[2] + d], c.dtype);
      got_nan = got_nan || std::isnan(got[d]);
    }
    const double* want = &ref.out[i * c.dv];
    bool ref_nan = false;
    for (int d = 0; d < c.dv; ++d)
      ref_nan = ref_nan || std::isnan(want[d]);
    if (ref_nan || row_error(&moved.out[i * c.dv], want, c.dv) > tol / 4) {
      ++r.skipped; // NaN scores, or a row a float32 kernel cannot be held to
      continue;
    }
    ++r.rows;
    const double e = got_nan ? INFINITY : row_error(got.data(), want, c.dv);
    r.worst = std::max(r.worst, e);
    if (e > tol && r.failure.empty())
      r.failure = fmt::format("row (b {}, h {}, q {}): relative error {:.3g} (tolerance {:.3g})", b,
                              h, qi, e, tol);
  }

  if (c.path == FuzzPath::Backward && r.failure.empty()) {
    DeviceTensor d_out = make_tensor(c.B, c.Hq, c.q_len, c.dv, c.dtype, c.bshd, rng, true);
    DeviceTensor dq = make_tensor(c.B, c.Hq, c.q_len, c.dqk, c.dtype, c.bshd, rng, false);
    DeviceTensor dk = make_tensor(c.B, c.Hkv, c.kv_len, c.dqk, c.dtype, c.bshd, rng, false);
    DeviceTensor dv = make_tensor(c.B, c.Hkv, c.kv_len, c.dv, c.dtype, c.bshd, rng, false);
    flex_attention_backward(q.view, k.view, v.view, out.view, d_out.view, dq.view, dk.view, dv.view,
                            o);
    Stream{}.synchronize();
    // The backward reference over the whole problem (the calls are small enough); dv in full.
    const AttentionGrads g =
        attention_backward_reference(in, ref_mask, score, scale, m.bindings, d_out.logical);
    const AttentionGrads g_moved = attention_backward_reference(
        in, ref_mask, score, scale * (1 + 2e-5), m.bindings, d_out.logical);
    const std::vector<uint16_t> dv_bits = download_bits(dv);
    const auto vst = strides_of(c.Hkv, c.kv_len, c.dv, c.bshd);
    std::vector<double> got_dv(g.dv.size());
    for (int b = 0; b < c.B; ++b)
      for (int h = 0; h < c.Hkv; ++h)
        for (int s = 0; s < c.kv_len; ++s)
          for (int d = 0; d < c.dv; ++d)
            got_dv[((static_cast<size_t>(b) * c.Hkv + h) * c.kv_len + s) * c.dv + d] =
                from_half_bits(dv_bits[b * vst[0] + h * vst[1] + s * vst[2] + d], c.dtype);
    if (relative_error(g_moved.dv, g.dv) <= tol / 4) {
      const double e = relative_error(got_dv, g.dv);
      r.worst = std::max(r.worst, e);
      if (!(e <= tol))
        r.failure = fmt::format("dv: relative error {:.3g} (tolerance {:.3g})", e, tol);
    } else {
      ++r.skipped;
    }
  }
  return r;
}

} // namespace

TEST_CASE("gpu: the attention fuzz corpus replays", "[gpu][fuzz][attention-fuzz]") {
  SKIP_WITHOUT_CUDA();
  for (const auto& [name, text] : attention_fuzz_corpus()) {
    const AttentionFuzzCase c = parse_attention_case(name, text);
    if (c.call.path == FuzzPath::Paged || c.call.path == FuzzPath::Varlen)
      continue; // not run here yet (run_call)
    RandomMod pair;
    pair.body = c.mods.mod.body;
    pair.score = c.mods.mod.score;
    pair.bindings = c.mods.mod.bindings; // views into c.mods' storage, alive here
    const FuzzOutcome r = run_call(c.call, pair);
    INFO(name << ": " << format_call(c.call) << "\n" << c.comment);
    CHECK(r.failure.empty());
    CHECK(r.rows > 0);
  }
}

TEST_CASE("gpu: random mods through random whole attention calls agree with the reference",
          "[gpu][fuzz][attention-fuzz]") {
  SKIP_WITHOUT_CUDA();
  const int calls = static_cast<int>(env_int("FLEXJIT_FUZZ_CALLS", 400));
  const auto seed = static_cast<uint32_t>(env_int("FLEXJIT_FUZZ_SEED", 1));
  const double seconds = static_cast<double>(env_int("FLEXJIT_FUZZ_SECONDS", 210));
  std::mt19937 rng(seed);
  const Arch arch = current_target().arch;
  const auto start = std::chrono::steady_clock::now();
  int run = 0, rows = 0, skipped = 0, not_compiled = 0, failures = 0;
  for (int i = 0; i < calls; ++i) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds) {
      WARN("stopped after " << i << " calls: FLEXJIT_FUZZ_SECONDS=" << seconds);
      break;
    }
    FuzzCall c = random_call(rng, arch, 5000, int64_t{1} << 22, 48);
    if (c.path == FuzzPath::Paged || c.path == FuzzPath::Varlen)
      continue;                         // generated, not run here yet
    if (c.path == FuzzPath::Backward) { // the full backward reference: keep it small
      c.q_len = std::min(c.q_len, 300);
      c.kv_len = std::min(c.kv_len, 300);
    }
    std::mt19937 mod_rng(c.mod_seed);
    const RandomMod m = random_pair(mod_rng, 4);
    FuzzOutcome r;
    try {
      r = run_call(c, m);
    } catch (const Error& e) {
      // The library's documented Errors for a pair this call cannot take: too large for the
      // kernel's node limit, or a buffer indexed by q_idx / kv_idx that is shorter than the
      // call's lengths (README's Errors).
      const std::string what = e.what();
      if (what.find("nodes after optimization") != std::string::npos ||
          what.find(" is indexed by ") != std::string::npos) {
        ++not_compiled;
        continue;
      }
      r.failure = fmt::format("Error: {}", e.what());
    }
    ++run;
    rows += r.rows;
    skipped += r.skipped;
    if (!r.failure.empty()) {
      ++failures;
      FAIL_CHECK(fmt::format("{}\n# save as tests/fuzz_corpus_attention/<name>.fza:\n{}", r.failure,
                             format_attention_case(c, m, r.failure)));
    }
  }
  INFO(run << " calls, " << rows << " rows compared, " << skipped << " skipped, " << not_compiled
           << " pairs over the node limit");
  WARN("attention fuzz: " << run << " calls, " << rows << " rows compared, " << skipped
                          << " skipped (ill-conditioned or NaN), " << not_compiled
                          << " pairs refused (node limit, short buffers), " << failures
                          << " failures");
  CHECK(failures == 0);
  CHECK(rows > run * 4); // most rows are comparable: the skip rule does not hide everything
}
