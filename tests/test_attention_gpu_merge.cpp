// merge_attention on a real device: one attention computed as 4 kv shards (flex_attention over
// each shard's keys, with its lse) merged pairwise -- in place, as a context-parallel loop does
// -- against the float64 reference of the whole; a part that saw no key (lse -inf, out NaN) is
// not read; bad arguments are Errors (test_attention_errors.cpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include <flexjit/flexjit.h>

#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/HalfFloat.h"

#include "AttentionCases.h"

using namespace flexjit;
using namespace flexjit::testing;

TEST_CASE("gpu: 4 kv shards merged with merge_attention equal one attention",
          "[gpu][attention][merge]") {
  SKIP_WITHOUT_CUDA();
  MergeCase c;
  check_merge_case(c); // bf16 D 128, GQA 4
  c.dtype = DType::F16;
  c.D = 64;
  c.bshd = true;
  c.q_len = 1;
  check_merge_case(c);
  c.D = 256;
  c.bshd = false;
  c.Hkv = 8; // no GQA
  c.q_len = 129;
  c.kv_len = 513;
  check_merge_case(c);
}

// Context parallelism end to end: the second half of a causal sequence's queries (a q shard at
// q_offset 500) against 4 kv shards, each flex_attention with the offset causal mask (its own
// block mask, built with its offsets) and an offset relative-position score_mod, merged in place:
// the whole sequence's rows 500..999. Rows a shard's keys all lie after are fully masked there
// (lse -inf), which the merge leaves out.
TEST_CASE("gpu: a causal sequence over a q shard and 4 kv shards (offset_mod) merges to the whole",
          "[gpu][attention][merge][offsets]") {
  SKIP_WITHOUT_CUDA();
  const int B = 2, Hq = 4, Hkv = 2, S = 1000, q0 = 500, D = 64;
  const DType dtype = DType::BF16;
  std::mt19937 rng(7);
  DeviceTensor q = make_tensor(B, Hq, S, D, dtype, false, rng, true);
  DeviceTensor k = make_tensor(B, Hkv, S, D, dtype, false, rng, true);
  DeviceTensor v = make_tensor(B, Hkv, S, D, dtype, false, rng, true);
  const MaskMod causal = mask_mod("causal", [](Idx, Idx, Idx qi, Idx kv) { return qi >= kv; });
  const ScoreMod bias = score_mod(
      "rel_bias", [](Score s, Idx, Idx, Idx qi, Idx kv) { return s + FloatExpr(qi - kv) * 0.01f; });
  const int nq = S - q0;
  const TensorView q_shard = kv_rows(q.view, q0, nq); // rows of q, as kv_rows does for K / V
  const int64_t bounds[] = {0, 200, 500, 997, S};
  DeviceTensor acc = make_tensor(B, Hq, nq, D, dtype, false, rng, false);
  Lse acc_lse(B, Hq, nq), part_lse(B, Hq, nq);
  DeviceTensor part = make_tensor(B, Hq, nq, D, dtype, false, rng, false);
  for (int j = 0; j < 4; ++j) {
    const int n = static_cast<int>(bounds[j + 1] - bounds[j]);
    FlexAttentionOptions o;
    bind_offsets(o.bindings, q0, static_cast<int>(bounds[j]));
    BlockMaskOptions bo;
    bo.bindings = o.bindings;
    const BlockMask bm = create_block_mask(offset_mod(causal), 1, 1, nq, n, bo);
    o.block_mask = &bm;
    o.score_mod = offset_mod(bias);
    o.lse = j == 0 ? &acc_lse.view : &part_lse.view;
    flex_attention(q_shard, kv_rows(k.view, bounds[j], n), kv_rows(v.view, bounds[j], n),
                   j == 0 ? acc.view : part.view, o);
    if (j > 0)
      merge_attention(acc.view, acc_lse.view, part.view, part_lse.view, acc.view, acc_lse.view);
  }
  Stream{}.synchronize();
  std::vector<int64_t> rows;
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < Hq; ++h)
      for (int i = q0; i < S; i += 7)
        rows.push_back((static_cast<int64_t>(b) * Hq + h) * S + i);
  const AttentionInputs in{B, Hq, Hkv, S, S, D, q.logical, k.logical, v.logical, D};
  const AttentionRows ref =
      attention_reference(in, causal, bias, 1.0 / std::sqrt(double(D)), {}, rows);
  const size_t shard_rows = static_cast<size_t>(B) * Hq * nq;
  std::vector<uint16_t> bits(shard_rows * D);
  acc.buffer.download(bits.data(), bits.size() * 2);
  std::vector<float> lse(shard_rows);
  acc_lse.buf.download(lse.data(), shard_rows * 4);
  std::vector<double> got, got_lse;
  for (size_t i = 0; i < ref.rows.size(); ++i) {
    const int64_t r = ref.rows[i], qi = r % S - q0, bh = r / S;
    const size_t row = static_cast<size_t>(bh * nq + qi);
    for (int d = 0; d < D; ++d)
      got.push_back(from_half_bits(bits[row * D + d], dtype));
    got_lse.push_back(lse[row]);
  }
  CHECK(relative_error(got, ref.out) < 1e-2);
  CHECK(relative_error(got_lse, ref.lse) < 1e-4);
}
