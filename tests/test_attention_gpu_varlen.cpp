// attention_forward_varlen on a real device: packed sequences of random lengths (1, and lengths
// no tile divides; q and kv lengths unequal) against the float64 reference of each sequence on
// its own, with FlashAttention's rules written as that sequence's mods (causal bottom-right,
// windows, softcap, ALiBi, a user score_mod at local positions); GQA; the lse; poisoned outputs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include <flexjit/flexjit.h>

#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/HalfFloat.h"

using namespace flexjit;
using namespace flexjit::testing;

namespace {

struct VarlenCase {
  std::vector<int> len_q, len_k;
  int Hq = 8, Hkv = 2, D = 128;
  DType dtype = DType::BF16;
  bool causal = false, alibi = false, user_score = false, user_mask = false;
  int left = -1, right = -1;
  float softcap = 0.0f;
};

// Packed [total, H, D] bits of random values, and each sequence's logical [1, H, len, D].
struct Packed {
  DeviceBuffer buf;
  TensorView view;
  std::vector<std::vector<float>> seqs;
};
Packed pack(const std::vector<int>& lens, int H, int D, DType dtype, std::mt19937& rng,
            bool random) {
  const int64_t total = std::accumulate(lens.begin(), lens.end(), int64_t{0});
  std::vector<uint16_t> bits(static_cast<size_t>(std::max<int64_t>(total, 1)) * H * D, 0xffff);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Packed p;
  int64_t t0 = 0;
  for (int len : lens) {
    std::vector<float> seq(static_cast<size_t>(H) * len * D);
    for (int t = 0; t < len; ++t)
      for (int h = 0; h < H; ++h)
        for (int d = 0; d < D; ++d) {
          const uint16_t x = random ? to_half_bits(normal(rng), dtype) : 0xffff;
          bits[((t0 + t) * H + h) * D + d] = x;
          seq[(static_cast<size_t>(h) * len + t) * D + d] = from_half_bits(x, dtype);
        }
    p.seqs.push_back(std::move(seq));
    t0 += len;
  }
  p.buf = DeviceBuffer(bits.size() * 2);
  p.buf.upload(bits.data(), bits.size() * 2);
  p.view = p.buf.view(dtype, {total, H, D});
  return p;
}

std::vector<int32_t> cumulative(const std::vector<int>& lens) {
  std::vector<int32_t> cu = {0};
  for (int len : lens)
    cu.push_back(cu.back() + len);
  return cu;
}

void check_varlen_case(const VarlenCase& c) {
  const int B = static_cast<int>(c.len_q.size());
  INFO(to_string(c.dtype) << " d" << c.D << " B " << B << (c.causal ? " causal" : "") << " window ("
                          << c.left << ", " << c.right << ") softcap " << c.softcap
                          << (c.alibi ? " alibi" : "") << (c.user_score ? " user score" : ""));
  std::mt19937 rng(B * 131 + c.D);
  Packed q = pack(c.len_q, c.Hq, c.D, c.dtype, rng, true);
  Packed k = pack(c.len_k, c.Hkv, c.D, c.dtype, rng, true);
  Packed v = pack(c.len_k, c.Hkv, c.D, c.dtype, rng, true);
  Packed out = pack(c.len_q, c.Hq, c.D, c.dtype, rng, false); // NaN poison
  const std::vector<int32_t> cu_q = cumulative(c.len_q), cu_k = cumulative(c.len_k);
  DeviceBuffer cu_buf((cu_q.size() + cu_k.size()) * 4);
  cu_buf.upload(cu_q.data(), cu_q.size() * 4);
  cu_buf.upload(cu_k.data(), cu_k.size() * 4, cu_q.size() * 4);
  const TensorView cq = TensorView::contiguous(cu_buf.data(), DType::I32, {B + 1}, Device::Cuda);
  const TensorView ck = TensorView::contiguous(static_cast<const int32_t*>(cu_buf.data()) + B + 1,
                                               DType::I32, {B + 1}, Device::Cuda);
  std::vector<float> slopes(static_cast<size_t>(c.Hq));
  for (int h = 0; h < c.Hq; ++h)
    slopes[h] = std::exp2(-8.0f * (h + 1) / c.Hq);
  DeviceBuffer slope_buf(slopes.size() * 4);
  slope_buf.upload(slopes.data(), slopes.size() * 4);
  const TensorView slope_view = slope_buf.view(DType::F32, {c.Hq});
  const int total_q = cu_q.back();
  DeviceBuffer lse_buf(static_cast<size_t>(c.Hq) * total_q * 4);
  const TensorView lse_view = lse_buf.view(DType::F32, {c.Hq, total_q});

  VarlenOptions o;
  o.causal = c.causal;
  o.window_left = c.left;
  o.window_right = c.right;
  o.softcap = c.softcap;
  o.alibi_slopes = c.alibi ? &slope_view : nullptr;
  o.lse = &lse_view;
  o.max_seqlen_q = *std::max_element(c.len_q.begin(), c.len_q.end());
  o.max_seqlen_k = *std::max_element(c.len_k.begin(), c.len_k.end());
  if (c.user_mask) // per head: the block mask is built per head
    o.mask_mod = mask_mod("user", [](Idx b, Idx h, Idx qi, Idx kv) {
      return (kv + h) % 4 != 0 || qi == 0 || b == 1;
    });
  if (c.user_score)
    o.score_mod = score_mod("user", [](Score s, Idx, Idx h, Idx qi, Idx kv) {
      return s + FloatExpr(h) * 0.1f - FloatExpr(qi - kv) * 0.001f;
    });
  attention_forward_varlen(q.view, k.view, v.view, cq, ck, out.view, o);

  const size_t total_bits = static_cast<size_t>(total_q) * c.Hq * c.D;
  std::vector<uint16_t> bits(total_bits);
  out.buf.download(bits.data(), total_bits * 2);
  std::vector<float> lse(static_cast<size_t>(c.Hq) * total_q);
  lse_buf.download(lse.data(), lse.size() * 4);
  for (int b = 0; b < B; ++b) {
    const int lq = c.len_q[b], lk = c.len_k[b], d = lk - lq;
    if (lq == 0)
      continue;
    INFO("sequence " << b << ": " << lq << " q, " << lk << " kv");
    // Sequence b's own mods, FlashAttention's rules at its local positions.
    const MaskMod mask = mask_mod("seq", [&](Idx, Idx h, Idx i, Idx j) {
      BoolExpr m = BoolExpr(true);
      if (c.user_mask)
        m = m && ((j + h) % 4 != 0 || i == 0 || b == 1);
      if (c.causal)
        m = m && j <= i + d;
      if (c.left >= 0)
        m = m && j >= i + d - c.left;
      if (c.right >= 0)
        m = m && j <= i + d + c.right;
      return m;
    });
    const ScoreMod score = score_mod("seq", [&](Score s, Idx, Idx h, Idx i, Idx j) {
      FloatExpr x = s;
      if (c.user_score)
        x = x + FloatExpr(h) * 0.1f - FloatExpr(i - j) * 0.001f;
      if (c.softcap > 0)
        x = c.softcap * tanh(x / c.softcap);
      if (c.alibi) {
        FloatExpr slope = 0.0f;
        for (int h2 = 0; h2 < c.Hq; ++h2)
          slope = where(h == h2, FloatExpr(slopes[h2]), slope);
        x = x - slope * FloatExpr(abs(i + d - j));
      }
      return x;
    });
    const AttentionInputs in{1, c.Hq, c.Hkv, lq, lk, c.D, q.seqs[b], k.seqs[b], v.seqs[b], c.D};
    const AttentionRows ref =
        attention_reference(in, mask, score, 1.0 / std::sqrt(double(c.D)), {});
    std::vector<double> got, got_lse, ref_lse;
    long nans = 0;
    for (size_t r = 0; r < ref.rows.size(); ++r) {
      const int h = static_cast<int>(ref.rows[r] / lq), i = static_cast<int>(ref.rows[r] % lq);
      const size_t t = static_cast<size_t>(cu_q[b] + i);
      for (int e = 0; e < c.D; ++e) {
        got.push_back(from_half_bits(bits[(t * c.Hq + h) * c.D + e], c.dtype));
        nans += std::isnan(got.back());
      }
      if (!std::isinf(ref.lse[r])) {
        got_lse.push_back(lse[static_cast<size_t>(h) * total_q + t]);
        ref_lse.push_back(ref.lse[r]);
      }
    }
    CHECK(nans == 0);
    CHECK(relative_error(got, ref.out) < (c.dtype == DType::BF16 ? 1e-2 : 3e-3));
    CHECK(relative_error(got_lse, ref_lse) < 1e-3);
  }
}

} // namespace

TEST_CASE("gpu: attention_forward_varlen matches each sequence's float64 reference",
          "[gpu][attention][varlen]") {
  SKIP_WITHOUT_CUDA();
  VarlenCase c;
  c.len_q = {1, 129, 300, 17, 0, 1000};
  c.len_k = {1, 129, 513, 40, 7, 1000};
  c.causal = true;
  check_varlen_case(c); // causal bottom-right, q != kv lengths, an empty q sequence
  c.causal = false;
  c.left = 64;
  c.right = 16;
  c.softcap = 30.0f;
  c.alibi = true;
  c.user_score = true;
  check_varlen_case(c);
  c.user_mask = true;
  c.alibi = false;
  check_varlen_case(c);
  // 16 random sequences, f16 D 64, no GQA.
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> len(1, 700);
  VarlenCase r;
  for (int i = 0; i < 16; ++i) {
    r.len_q.push_back(len(rng));
    r.len_k.push_back(r.len_q.back());
  }
  r.dtype = DType::F16;
  r.D = 64;
  r.Hq = r.Hkv = 4;
  r.causal = true;
  check_varlen_case(r);
}
