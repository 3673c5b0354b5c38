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

TEST_CASE("backward reference: captured buffers' gradients match central differences",
          "[testing][reference][backward][buffer-grad]") {
  // A T5 bucket table [H, 16], a relative bias [H, 2S - 1] and ALiBi slopes [H], over GQA
  // with a mask that leaves the first row empty; the loss is sum(out * d_out).
  constexpr int H = 2, S = 6;
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<float> table(H * 16), rel(H * (2 * S - 1)), slopes(H);
  for (auto* t : {&table, &rel, &slopes})
    for (float& x : *t)
      x = uni(rng);
  const FloatBuffer t5 =
      buffer_f32("t5", TensorView::contiguous(table.data(), DType::F32, {H, 16}));
  const FloatBuffer bias =
      buffer_f32("rel", TensorView::contiguous(rel.data(), DType::F32, {H, 2 * S - 1}));
  const FloatBuffer alibi =
      buffer_f32("slopes", TensorView::contiguous(slopes.data(), DType::F32, {H}));
  const MaskMod mask =
      mask_mod("late", [](Idx, Idx, Idx q, Idx kv) { return q >= 1 && kv <= q + 1; });
  struct Named {
    ScoreMod score;
    std::string buffer;
    std::vector<float>* data;
  };
  const std::vector<Named> mods = {
      {score_mod("t5",
                 [&](Score s, Idx, Idx h, Idx q, Idx kv) {
                   const IntExpr d = q - kv;
                   return s + t5(h, where(d > 0, IntExpr(8), IntExpr(0)) + min(abs(d), IntExpr(7)));
                 }),
       "t5", &table},
      {score_mod("relative",
                 [&](Score s, Idx, Idx h, Idx q, Idx kv) {
                   return 2.0f * tanh((s + bias(h, q - kv + (S - 1))) / 2.0f);
                 }),
       "rel", &rel},
      {score_mod("alibi", [&](Score s, Idx, Idx h, Idx q,
                              Idx kv) { return s - alibi[h] * FloatExpr(abs(q - kv)); }),
       "slopes", &slopes},
  };
  AttentionInputs in;
  in.B = 1, in.Hq = H, in.Hkv = 1, in.q_len = S, in.kv_len = S, in.D = 4;
  for (auto* t : {&in.q, &in.k, &in.v}) {
    t->resize(size_t{H} * S * 4);
    for (float& x : *t)
      x = uni(rng);
  }
  in.k.resize(size_t{S} * 4);
  in.v.resize(size_t{S} * 4);
  std::vector<float> d_out(in.q.size());
  for (float& x : d_out)
    x = uni(rng);
  const double scale = 0.5;
  for (const Named& m : mods) {
    INFO("score " << m.score.name());
    const AttentionGrads g =
        attention_backward_reference(in, mask, m.score, scale, {}, d_out, {m.buffer});
    REQUIRE(g.buffers.count(m.buffer) == 1);
    const std::vector<double>& grad = g.buffers.at(m.buffer);
    REQUIRE(grad.size() == m.data->size());
    int nonzero = 0;
    for (size_t i = 0; i < grad.size(); ++i) {
      const float x = (*m.data)[i], eps = 1e-2f;
      (*m.data)[i] = x + eps;
      const double up = loss(in, mask, m.score, scale, d_out);
      (*m.data)[i] = x - eps;
      const double down = loss(in, mask, m.score, scale, d_out);
      (*m.data)[i] = x;
      const double fd = (up - down) / (2.0 * eps);
      INFO("element " << i << " reference " << grad[i] << " central " << fd);
      REQUIRE(std::fabs(grad[i] - fd) <= 2e-3 + 2e-2 * std::fabs(fd));
      nonzero += std::fabs(fd) > 1e-3;
    }
    CHECK(nonzero >= static_cast<int>(grad.size()) / 3); // not a comparison of zeros
  }
  CHECK_THROWS_WITH(
      attention_backward_reference(in, mask, mods[0].score, scale, {}, d_out, {"rel"}),
      Catch::Contains("reads no buffer 'rel'"));
}
