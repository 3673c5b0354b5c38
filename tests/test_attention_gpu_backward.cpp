// flex_attention_backward on a real device against the float64 backward reference
// (testing/AttentionReference, itself checked against finite differences): every seed-003
// variant, f16/bf16, D = 64/128, GQA, odd and unequal lengths, BSHD, fully masked rows;
// gradients poisoned (NaN) before the call. Skips cleanly without a CUDA device.
#include <catch2/catch.hpp>

#include <flexjit/flexjit.h>

#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/SeedMods.h"

#include "AttentionCases.h"
#include "Instantiations.h"

using namespace flexjit;
using namespace flexjit::testing;

namespace {

void check_variants(DType dtype, int D) {
  const int S = 200;
  std::vector<int32_t> doc_ids(S);
  for (int i = 0; i < S; ++i)
    doc_ids[i] = i < 70 ? 0 : (i < 150 ? 1 : 2);
  const std::vector<float> slopes = seeds::alibi_slopes(4);
  struct Variant {
    const char* name;
    MaskMod mask;
    ScoreMod score;
    bool use_block_mask;
  };
  const std::vector<Variant> variants = {
      {"noop", MaskMod(), ScoreMod(), false},
      {"causal", seeds::causal(), ScoreMod(), true},
      {"sliding_window(64)", seeds::sliding_window(64), ScoreMod(), true},
      {"prefix_lm(100)", seeds::prefix_lm(100), ScoreMod(), true},
      {"document", seeds::document(doc_ids), ScoreMod(), true},
      {"sasa(16, 2)", seeds::sasa(16, 2), ScoreMod(), true},
      {"natten(10, 20, 5, 5)", seeds::natten(10, 20, 5, 5), ScoreMod(), true},
      {"alibi, causal", seeds::causal(), seeds::alibi(4), true},
      {"alibi (buffer), causal", seeds::causal(), seeds::alibi_buffer(slopes), true},
      {"soft cap tanh", MaskMod(), seeds::soft_cap(20.0f, false), false},
      {"soft cap tanh_approx, causal", seeds::causal(), seeds::soft_cap(20.0f, true), true},
      {"checkerboard", MaskMod(), seeds::checkerboard(), false},
  };
  for (const Variant& var : variants) {
    BwdCase c;
    c.q_len = c.kv_len = S;
    c.D = D;
    c.dtype = dtype;
    c.mask = var.mask;
    c.score = var.score;
    c.use_block_mask = var.use_block_mask;
    check_backward(c, var.name);
  }
}

} // namespace

// Every seed-003 variant on every backward instantiation of the variant table, one
// generated case (a section named "<dtype> d<head dim>") at a time.
TEST_CASE("gpu backward: every seed-003 variant", "[gpu][attention][backward]") {
  SKIP_WITHOUT_CUDA();
  const Instantiation kernel =
      GENERATE(from_range(instantiations(TemplateKind::AttentionBackward)));
  SECTION(kernel.name()) {
    check_variants(kernel.dtype, kernel.head_dim);
  }
}

TEST_CASE("gpu backward: GQA, unequal odd lengths, BSHD, fully masked rows",
          "[gpu][attention][backward]") {
  SKIP_WITHOUT_CUDA();
  for (int i = 0; i < 4; ++i) {
    BwdCase c;
    c.B = 2;
    c.Hq = 6;
    c.Hkv = i % 2 ? 3 : 1;
    c.q_len = 131 + 37 * i;
    c.kv_len = 259 - 41 * i;
    c.D = i < 2 ? 64 : 128;
    c.dtype = i % 2 ? DType::BF16 : DType::F16;
    c.bshd = i >= 2;
    c.seed = 17 + i;
    // Rows q < 40 attend nothing; the others a causal band shifted by 30.
    c.mask = mask_mod("late_band", [](Idx, Idx, Idx q, Idx kv) { return q >= 40 && kv <= q + 30; });
    c.score = i == 3 ? seeds::soft_cap(15.0f) : ScoreMod();
    check_backward(c, "gqa/odd/bshd/empty rows " + std::to_string(i));
  }
}

// Block masks with other tiles than 128 x 128: kv blocks of 64 (finer than the sm_90a
// kernel's 128 kv rows per CTA: the runtime runs the sm_80 kernel) and of 256 (two CTAs per
// block), q blocks of 256 (four q tiles per block).
TEST_CASE("gpu backward: block masks with 64 and 256 row tiles", "[gpu][attention][backward]") {
  SKIP_WITHOUT_CUDA();
  const struct { int q_block, kv_block; } shapes[] = {{128, 64}, {256, 64}, {128, 256}, {256, 256}};
  int i = 0;
  for (const auto& shape : shapes) {
    BwdCase c;
    c.q_len = 300 + 61 * i;
    c.kv_len = 520 - 45 * i;
    c.D = i % 2 ? 128 : 64;
    c.dtype = i < 2 ? DType::BF16 : DType::F16;
    c.q_block = shape.q_block;
    c.kv_block = shape.kv_block;
    c.mask = i % 2 ? seeds::sliding_window(100) : seeds::causal();
    c.score = i == 2 ? seeds::alibi(4) : ScoreMod();
    c.seed = 40 + i++;
    check_backward(c, "blocks " + std::to_string(c.q_block) + "x" + std::to_string(c.kv_block));
  }
}
