#include "AttentionFuzzRun.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>

#include <fmt/format.h>

#include "CacheCases.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/PreparedMods.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/runtime/DeviceBindings.h"
#include "flexjit/runtime/DeviceErrors.h"
#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/HalfFloat.h"

namespace flexjit::testing {

namespace {

double tolerance(DType dtype) {
  return dtype == DType::BF16 ? 2e-2 : 6e-3;
}

// The conditioning test's relative move of every score (through the scale).
constexpr double kScoreMove = 2e-5;

// Relative error of one row (‖got − ref‖ / max(‖ref‖, 1e-3)).
double row_error(const double* got, const double* ref, int n) {
  double num = 0, den = 0;
  for (int i = 0; i < n; ++i) {
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-3);
}

// What the reference computes for a call: its inputs (sequences padded to one length where
// their lengths differ), the mask the call applies and each batch's key count.
struct Reference {
  AttentionInputs in;
  MaskMod mask;
  std::vector<int> kv_lens; // empty: every key
};

// A sampled output row: its row in the reference ((b * Hq + h) * q_len + q of Reference::in)
// and the element offset of its first value in the output's stored bits.
struct Sample {
  int64_t ref_row = 0;
  int64_t offset = 0;
};

// The sampled rows of `stored` (the output's bits) against the reference, and against the
// reference with every score moved by kScoreMove (the conditioning test); into r.
void compare_rows(const FuzzCall& c, const Reference& ref, const ScoreMod& score,
                  const Bindings& bindings, const std::vector<Sample>& picks,
                  const std::vector<uint16_t>& stored, FuzzOutcome& r) {
  std::vector<int64_t> rows;
  for (const Sample& s : picks)
    rows.push_back(s.ref_row);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.dqk));
  const AttentionRows want =
      attention_reference(ref.in, ref.mask, score, scale, bindings, rows, ref.kv_lens);
  const AttentionRows moved = attention_reference(ref.in, ref.mask, score, scale * (1 + kScoreMove),
                                                  bindings, rows, ref.kv_lens);
  const double tol = tolerance(c.dtype);
  const int q_len = ref.in.q_len, Hq = ref.in.Hq;
  std::vector<double> got(static_cast<size_t>(c.dv));
  for (size_t i = 0; i < picks.size(); ++i) {
    const int64_t row = rows[i];
    const int qi = static_cast<int>(row % q_len), h = static_cast<int>(row / q_len % Hq),
              b = static_cast<int>(row / q_len / Hq);
    bool got_nan = false;
    for (int d = 0; d < c.dv; ++d) {
      got[d] = from_half_bits(stored[static_cast<size_t>(picks[i].offset + d)], c.dtype);
      got_nan = got_nan || std::isnan(got[d]);
    }
    const double* w = &want.out[i * c.dv];
    bool ref_nan = false;
    for (int d = 0; d < c.dv; ++d)
      ref_nan = ref_nan || std::isnan(w[d]);
    if (ref_nan || row_error(&moved.out[i * c.dv], w, c.dv) > tol / 4) {
      ++r.skipped; // NaN scores, or a row a float32 kernel cannot be held to
      continue;
    }
    ++r.rows;
    const double e = got_nan ? INFINITY : row_error(got.data(), w, c.dv);
    r.worst = std::max(r.worst, e);
    if (e > tol && r.failure.empty())
      r.failure = fmt::format("row (b {}, h {}, q {}): relative error {:.3g} (tolerance {:.3g})", b,
                              h, qi, e, tol);
  }
}

// `n` random rows of a [B, Hq, q_len, dv] output stored BHSD or BSHD.
std::vector<Sample> sample_rows_of(const FuzzCall& c, bool bshd, int n, std::mt19937& rng) {
  const auto st = strides_of(c.Hq, c.q_len, c.dv, bshd);
  const uint64_t rows = static_cast<uint64_t>(c.B) * c.Hq * c.q_len;
  std::vector<Sample> picks;
  for (int i = 0; i < n; ++i) {
    const auto row = static_cast<int64_t>(rng() % rows);
    const int64_t qi = row % c.q_len, h = row / c.q_len % c.Hq, b = row / c.q_len / c.Hq;
    picks.push_back({row, b * st[0] + h * st[1] + qi * st[2]});
  }
  return picks;
}

// [lens.size(), H, S, D] of each sequence b's head h rows (lens[b] rows of D floats from
// rows(b, h)), zero past each length.
std::vector<float> pad_rows(int H, int S, int D, const std::vector<int>& lens,
                            const std::function<const float*(int b, int h)>& rows) {
  std::vector<float> out(lens.size() * H * S * D, 0.0f);
  for (size_t b = 0; b < lens.size(); ++b)
    for (int h = 0; h < H; ++h)
      std::copy_n(rows(static_cast<int>(b), h), static_cast<size_t>(lens[b]) * D,
                  out.begin() + static_cast<std::ptrdiff_t>(((b * H + h) * S) * D));
  return out;
}

// The inputs' uploads (cuMemcpyHtoD on the legacy stream: a pageable copy may still be in
// flight when it returns) done before a kernel on a non-blocking stream reads them.
void finish_uploads() {
  Stream{}.synchronize();
}

// A flex_attention call of c: its lse [B, Hq, q_len], its block mask (c.block_mask: over B
// batches and one head, built where c says) and its options (on `stream`). Not movable: the
// options point at its members.
struct FlexCall {
  DeviceBuffer lse_buf;
  TensorView lse_view;
  BlockMask bm;
  FlexAttentionOptions o;

  FlexCall(const FuzzCall& c, const RandomMod& m, const MaskMod& mask, const ScoreMod& score,
           const DeviceBindings& device, void* stream)
      : lse_buf(static_cast<size_t>(c.B) * c.Hq * c.q_len * 4) {
    lse_view = lse_buf.view(DType::F32, {c.B, c.Hq, c.q_len});
    if (c.block_mask) {
      BlockMaskOptions bo;
      bo.bindings = c.gpu_block_mask ? device.bindings : m.bindings;
      bo.device = c.gpu_block_mask ? Device::Cuda : Device::Host;
      bo.q_block = c.q_block;
      bo.kv_block = c.kv_block;
      // A mask that reads h needs a block mask per head (H = 1 would give every head head 0's
      // tiles: a call the user got wrong, not a kernel's fault).
      const int H = analyze_dependence(mask.body()).h ? c.Hq : 1;
      bm = create_block_mask(mask, c.B, H, c.q_len, c.kv_len, bo);
    }
    o.score_mod = score;
    o.block_mask = c.block_mask ? &bm : nullptr;
    o.lse = &lse_view;
    o.bindings = device.bindings;
    o.stream = stream;
  }
  FlexCall(const FlexCall&) = delete;
  FlexCall& operator=(const FlexCall&) = delete;

  // flex_attention after the inputs' uploads, returning when it is done.
  void run(const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out) {
    finish_uploads();
    flex_attention(q, k, v, out, o);
    check_device_errors(o.stream);
  }
};

// Forward, backward and decode: whole [B, H, S, D] tensors in either layout.
FuzzOutcome run_dense(const FuzzCall& c, const RandomMod& m, const MaskMod& mask,
                      const ScoreMod& score, const DeviceBindings& device, void* stream,
                      int sample_rows, std::mt19937& rng) {
  FuzzOutcome r;
  auto [q, k, v, out] = make_attention_tensors(c.B, c.Hq, c.Hkv, c.q_len, c.kv_len, c.dqk, c.dv,
                                               c.dtype, c.bshd, rng);
  const bool backward = c.path == FuzzPath::Backward;
  DeviceTensor d_out, dq, dk, dv; // the backward's
  if (backward) {
    d_out = make_tensor(c.B, c.Hq, c.q_len, c.dv, c.dtype, c.bshd, rng, true);
    dq = make_tensor(c.B, c.Hq, c.q_len, c.dqk, c.dtype, c.bshd, rng, false);
    dk = make_tensor(c.B, c.Hkv, c.kv_len, c.dqk, c.dtype, c.bshd, rng, false);
    dv = make_tensor(c.B, c.Hkv, c.kv_len, c.dv, c.dtype, c.bshd, rng, false);
  }
  FlexCall call(c, m, mask, score, device, stream);
  call.run(q.view, k.view, v.view, out.view);

  // Sampled rows of the output; for the backward, dv in full.
  const Reference ref{
      {c.B, c.Hq, c.Hkv, c.q_len, c.kv_len, c.dqk, q.logical, k.logical, v.logical, c.dv},
      c.block_mask ? mask : MaskMod(),
      {}};
  compare_rows(c, ref, score, m.bindings, sample_rows_of(c, c.bshd, sample_rows, rng),
               download_bits(out), r);

  if (backward && r.failure.empty()) {
    flex_attention_backward(q.view, k.view, v.view, out.view, d_out.view, dq.view, dk.view, dv.view,
                            call.o);
    check_device_errors(stream);
    // The backward reference over the whole problem (the calls are small enough).
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.dqk));
    const AttentionGrads g =
        attention_backward_reference(ref.in, ref.mask, score, scale, m.bindings, d_out.logical);
    const AttentionGrads g_moved = attention_backward_reference(
        ref.in, ref.mask, score, scale * (1 + kScoreMove), m.bindings, d_out.logical);
    const std::vector<uint16_t> dv_bits = download_bits(dv);
    const auto vst = strides_of(c.Hkv, c.kv_len, c.dv, c.bshd);
    std::vector<double> got_dv(g.dv.size());
    for (int b = 0; b < c.B; ++b)
      for (int h = 0; h < c.Hkv; ++h)
        for (int s = 0; s < c.kv_len; ++s)
          for (int d = 0; d < c.dv; ++d)
            got_dv[((static_cast<size_t>(b) * c.Hkv + h) * c.kv_len + s) * c.dv + d] =
                from_half_bits(dv_bits[b * vst[0] + h * vst[1] + s * vst[2] + d], c.dtype);
    const double tol = tolerance(c.dtype);
    // The backward recomputes P from the forward's float32 lse: where |lse| is so large that
    // its rounding alone (|lse| * 2^-24) moves P by more than a quarter of the tolerance (a
    // score mod returning 1.7e7, say), no float32 kernel can be held to the float64 dv.
    double max_lse = 0;
    for (double x : g.lse)
      max_lse = std::isfinite(x) ? std::max(max_lse, std::abs(x)) : max_lse;
    if (max_lse * 0x1p-24 > tol / 4) {
      ++r.skipped;
    } else if (relative_error(g_moved.dv, g.dv) <= tol / 4) {
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

// A paged KV cache of capacity c.kv_len: shuffled pages, each sequence b's keys [0,
// c.kv_lens[b]) (NaN in every other slot), q and out BHSD.
FuzzOutcome run_paged(const FuzzCall& c, const RandomMod& m, const MaskMod& mask,
                      const ScoreMod& score, const DeviceBindings& device, void* stream,
                      int sample_rows, std::mt19937& rng) {
  FuzzOutcome r;
  CacheCase cc;
  cc.B = c.B;
  cc.Hq = c.Hq;
  cc.Hkv = c.Hkv;
  cc.q_len = c.q_len;
  cc.D = c.dqk;
  cc.Dv = c.dv;
  cc.dtype = c.dtype;
  cc.page_size = c.page_size;
  cc.capacity = c.kv_len;
  cc.kv_lens.assign(c.kv_lens.begin(), c.kv_lens.end());
  const CacheTensors t = make_cache(cc, rng);
  const KvCache cache = cache_of(cc, t);
  DeviceTensor q = make_tensor(c.B, c.Hq, c.q_len, c.dqk, c.dtype, false, rng, true);
  DeviceTensor out = make_tensor(c.B, c.Hq, c.q_len, c.dv, c.dtype, false, rng, false);
  FlexCall call(c, m, mask, score, device, stream); // the block mask built for the capacity
  call.o.kv_cache = &cache;
  call.run(q.view, t.k_view, t.v_view, out.view);

  // Each sequence's keys padded to the capacity; the reference stops at each one's length.
  auto padded = [&](bool values) {
    const int D = values ? c.dv : c.dqk;
    return pad_rows(c.Hkv, c.kv_len, D, c.kv_lens, [&](int b, int h) {
      const Sequence& s = t.seqs[static_cast<size_t>(b)];
      return (values ? s.v : s.k).data() + static_cast<size_t>(h) * c.kv_lens[b] * D;
    });
  };
  const Reference ref{
      {c.B, c.Hq, c.Hkv, c.q_len, c.kv_len, c.dqk, q.logical, padded(false), padded(true), c.dv},
      c.block_mask ? mask : MaskMod(),
      c.kv_lens};
  compare_rows(c, ref, score, m.bindings, sample_rows_of(c, false, sample_rows, rng),
               download_bits(out), r);
  return r;
}

// attention_forward_varlen over c.seq_lens packed (q and kv lengths equal), causal or not;
// the pair at each sequence's local positions (b the sequence).
FuzzOutcome run_varlen(const FuzzCall& c, const RandomMod& m, const MaskMod& mask,
                       const ScoreMod& score, const DeviceBindings& device, void* stream,
                       int sample_rows, std::mt19937& rng) {
  FuzzOutcome r;
  const int total = static_cast<int>(c.total_q()), n = static_cast<int>(c.seq_lens.size());
  if (total == 0) { // a corpus line may say so; random_call never does
    r.failure = "a varlen call without tokens";
    return r;
  }
  const int max_len = *std::max_element(c.seq_lens.begin(), c.seq_lens.end());
  // Packed [total, H, D] tensors are BSHD [1, H, total, D] ones.
  auto [q, k, v, out] =
      make_attention_tensors(1, c.Hq, c.Hkv, total, total, c.dqk, c.dv, c.dtype, true, rng);
  std::vector<int32_t> cu = {0};
  for (int len : c.seq_lens)
    cu.push_back(cu.back() + len);
  DeviceBuffer cu_buf(cu.size() * 4);
  cu_buf.upload(cu.data(), cu.size() * 4);
  const TensorView cu_view = cu_buf.view(DType::I32, {n + 1});
  DeviceBuffer lse_buf(static_cast<size_t>(c.Hq) * total * 4);
  const TensorView lse_view = lse_buf.view(DType::F32, {c.Hq, total});
  VarlenOptions o;
  o.causal = c.causal;
  o.max_seqlen_q = o.max_seqlen_k = max_len;
  o.mask_mod = mask;
  o.score_mod = score;
  o.bindings = device.bindings;
  o.lse = &lse_view;
  o.stream = stream;
  finish_uploads();
  attention_forward_varlen(q.buffer.view(c.dtype, {total, c.Hq, c.dqk}),
                           k.buffer.view(c.dtype, {total, c.Hkv, c.dqk}),
                           v.buffer.view(c.dtype, {total, c.Hkv, c.dv}), cu_view, cu_view,
                           out.buffer.view(c.dtype, {total, c.Hq, c.dv}), o);
  check_device_errors(stream);

  const MaskMod causal = mask_mod("fuzz_causal", [](Idx, Idx, Idx qi, Idx kv) { return kv <= qi; });
  const Reference ref{{n, c.Hq, c.Hkv, max_len, max_len, c.dqk,
                       pad_sequences(q.logical, c.Hq, c.dqk, c.seq_lens),
                       pad_sequences(k.logical, c.Hkv, c.dqk, c.seq_lens),
                       pad_sequences(v.logical, c.Hkv, c.dv, c.seq_lens), c.dv},
                      c.causal ? and_masks({mask, causal}) : mask,
                      c.seq_lens};
  // Random tokens and heads: the row of token t's sequence at its local position.
  std::vector<Sample> picks;
  for (int i = 0; i < sample_rows; ++i) {
    const int t = static_cast<int>(rng() % static_cast<uint32_t>(total));
    const int h = static_cast<int>(rng() % static_cast<uint32_t>(c.Hq));
    const int b = static_cast<int>(std::upper_bound(cu.begin(), cu.end(), t) - cu.begin()) - 1;
    picks.push_back(
        {(int64_t{b} * c.Hq + h) * max_len + (t - cu[b]), (int64_t{t} * c.Hq + h) * c.dv});
  }
  compare_rows(c, ref, score, m.bindings, picks, download_bits(out), r);
  return r;
}

} // namespace

FuzzOutcome run_fuzz_call(const FuzzCall& c, const RandomMod& m, void* stream, int sample_rows) {
  std::mt19937 rng(c.mod_seed * 31 + static_cast<uint32_t>(c.q_len) * 7 +
                   static_cast<uint32_t>(c.kv_len));
  const MaskMod mask("fuzz_mask", BoolExpr(m.body));
  const ScoreMod score("fuzz_score", FloatExpr(m.score));
  const DeviceBindings device = to_device({m.body, m.score}, m.bindings);
  // A pair with data-indexed loads may find an index outside (random data): its kernels'
  // reports are taken here, never raised by the next call (the report itself is compared
  // point by point in [gpu][fuzz]); any other pair's report reaches the next call: a failure.
  struct TakeReports {
    bool on;
    ~TakeReports() {
      if (on)
        cuda::take_device_errors();
    }
  } take{!data_indexed_loads({m.body, m.score}).empty()};
  switch (c.path) {
  case FuzzPath::Forward:
  case FuzzPath::Backward:
  case FuzzPath::Decode:
    return run_dense(c, m, mask, score, device, stream, sample_rows, rng);
  case FuzzPath::Paged:
    return run_paged(c, m, mask, score, device, stream, sample_rows, rng);
  case FuzzPath::Varlen:
    return run_varlen(c, m, mask, score, device, stream, sample_rows, rng);
  }
  return {};
}

bool documented_refusal(const Error& e) {
  const std::string what = e.what();
  return what.find("nodes after optimization") != std::string::npos ||
         what.find(" is indexed by ") != std::string::npos ||
         what.find("division by a constant zero") != std::string::npos ||
         what.find("an index read from buffer data must lie inside the buffer") !=
             std::string::npos || // the CPU builder or the reference at a sampled row
         what.find("a mod's load at an index read from buffer data") != std::string::npos;
}

ModPool soak_pool(int size, int hot) {
  ModPool pool;
  pool.hot = static_cast<size_t>(std::clamp(hot, 1, size));
  for (uint32_t seed = 0; static_cast<int>(pool.mods.size()) < size; ++seed) {
    std::mt19937 rng(seed);
    RandomMod m = random_pair(rng, 4);
    std::shared_ptr<const PreparedMods> p;
    try {
      p = prepare_mods(MaskMod("fuzz_mask", BoolExpr(m.body)),
                       ScoreMod("fuzz_score", FloatExpr(m.score)));
    } catch (const Error&) { // a documented type-check Error (a constant zero divisor, ...)
      continue;
    }
    if (p->nodes > kMaxAttentionModNodes || !p->indexed_dims.empty() ||
        !data_indexed_loads({m.body, m.score}).empty()) // its reports would reach any thread
      continue;
    pool.seeds.push_back(seed);
    pool.mods.push_back(std::move(m));
  }
  return pool;
}

FuzzCall soak_call(std::mt19937& rng, Arch arch, const ModPool& pool, bool warm_up, size_t* index) {
  FuzzCall c;
  do
    c = random_call(rng, arch, 256, int64_t{1} << 16);
  while (c.path == FuzzPath::Paged || c.path == FuzzPath::Varlen);
  const size_t cold = pool.seeds.size() - pool.hot;
  if (!warm_up && cold > 0 && rng() % kColdShare == 0)
    *index = pool.hot + rng() % cold;
  else
    *index = rng() % pool.hot;
  c.mod_seed = pool.seeds[*index];
  c.dtype = *index % 2 == 0 ? DType::F16 : DType::BF16;
  c.dqk = c.dv = *index % 2 == 0 ? 64 : 128;
  c.block_mask = true;
  c.B = std::min(c.B, 2);
  c.Hq = std::min(c.Hq, 8);           // a multiple of Hkv (at most 4) still
  if (c.path == FuzzPath::Backward) { // its reference: ~10 ms of one core at most
    c.Hq = std::min(c.Hq, 4);
    c.q_len = std::min(c.q_len, 96);
    c.kv_len = std::min(c.kv_len, 96);
  }
  return c;
}

std::vector<float> pad_sequences(const std::vector<float>& packed, int H, int D,
                                 const std::vector<int>& lens) {
  const int64_t total = std::accumulate(lens.begin(), lens.end(), int64_t{0});
  const int max_len = lens.empty() ? 0 : *std::max_element(lens.begin(), lens.end());
  std::vector<int64_t> start = {0};
  for (int len : lens)
    start.push_back(start.back() + len);
  return pad_rows(H, max_len, D, lens, [&](int b, int h) {
    return packed.data() + (h * total + start[static_cast<size_t>(b)]) * D;
  });
}

} // namespace flexjit::testing
