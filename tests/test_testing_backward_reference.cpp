// The float64 backward reference (testing/AttentionReference) against central differences
// of the forward reference: the yardstick the GPU backward is measured with must itself
// be right, for GQA, masks with fully masked rows and nonlinear score_mods.
#include <cmath>
#include <random>

#include <catch2/catch.hpp>

#include "flexjit/testing/AttentionReference.h"

using namespace flexjit;
using namespace flexjit::testing;

namespace {

double loss(const AttentionInputs& in, const MaskMod& mask, const ScoreMod& score, double scale,
            const std::vector<float>& d_out) {
  const AttentionRows out = attention_reference(in, mask, score, scale, {});
  double l = 0;
  for (size_t i = 0; i < out.out.size(); ++i)
    l += out.out[i] * d_out[i];
  return l;
}

} // namespace

TEST_CASE("backward reference: gradients match central differences of the forward",
          "[testing][reference][backward]") {
  const std::vector<std::pair<MaskMod, ScoreMod>> mods = {
      {MaskMod(), ScoreMod()},
      {mask_mod("causal_plus_1", [](Idx, Idx, Idx q, Idx kv) { return kv <= q + 1; }),
       score_mod("softcap", [](Score s, Idx, Idx, Idx, Idx) { return 2.0f * tanh(s / 2.0f); })},
      // rows 0 and 1 attend nothing; a bias and a square in the score
      {mask_mod("late", [](Idx, Idx, Idx q, Idx kv) { return q >= 2 && kv <= q + 2; }),
       score_mod("bias_sq",
                 [](Score s, Idx, Idx h, Idx q, Idx kv) {
                   return s * s * 0.5f + FloatExpr(kv - q) * 0.1f * FloatExpr(h + 1);
                 })},
  };
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  AttentionInputs in;
  in.B = 1, in.Hq = 2, in.Hkv = 1, in.q_len = 5, in.kv_len = 7, in.D = 4;
  const double scale = 0.7;
  for (const auto& [mask, score] : mods) {
    INFO("mask " << mask.name() << " score " << score.name());
    in.q.resize(size_t{2} * 5 * 4);
    in.k.resize(size_t{1} * 7 * 4);
    in.v.resize(in.k.size());
    for (auto* t : {&in.q, &in.k, &in.v})
      for (float& x : *t)
        x = uni(rng);
    std::vector<float> d_out(in.q.size());
    for (float& x : d_out)
      x = uni(rng);
    const AttentionGrads g = attention_backward_reference(in, mask, score, scale, {}, d_out);
    int nonzero = 0;
    for (auto [tensor, grad] : {std::pair{&in.q, &g.dq}, {&in.k, &g.dk}, {&in.v, &g.dv}}) {
      REQUIRE(grad->size() == tensor->size());
      for (size_t i = 0; i < tensor->size(); ++i) {
        const float x = (*tensor)[i], eps = 1e-2f;
        (*tensor)[i] = x + eps;
        const double up = loss(in, mask, score, scale, d_out);
        (*tensor)[i] = x - eps;
        const double down = loss(in, mask, score, scale, d_out);
        (*tensor)[i] = x;
        const double fd = (up - down) / (2.0 * eps);
        INFO("element " << i << " reference " << (*grad)[i] << " central " << fd);
        REQUIRE(std::fabs((*grad)[i] - fd) <= 2e-3 + 2e-2 * std::fabs(fd));
        nonzero += std::fabs(fd) > 1e-3;
      }
    }
    REQUIRE(nonzero > 40); // the comparison is not between zeros
  }
}
