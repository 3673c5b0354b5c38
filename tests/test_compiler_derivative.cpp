// score_derivative (compiler/Derivative.cpp) against central finite differences of the
// interpreter, for the seed score mods and random ones, plus exact rules at kinks.
#include <algorithm>
#include <cmath>
#include <random>

#include <catch2/catch.hpp>

#include "flexjit/compiler/Interpreter.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/support/Error.h"
#include "flexjit/testing/RandomMods.h"
#include "flexjit/testing/SeedCatalog.h"

using namespace flexjit;
using namespace flexjit::testing;

namespace {

float at(const Program& program, Point p, float score) {
  p.score = score;
  return program.eval(p).f;
}

// Compares df(p) with central differences of f at p.score, where f is smooth there:
// two step sizes must agree (a kink or a jump between them makes the point
// undecidable, and it is skipped). Returns whether the point was compared.
bool compare_at(const Program& f, const Program& df, const Point& p) {
  const float s = p.score;
  const float h = 1e-2f * std::max(1.0f, std::fabs(s));
  const double f0 = at(f, p, s);
  const double wide = (double(at(f, p, s + h)) - at(f, p, s - h)) / (2.0 * h);
  const double narrow = (double(at(f, p, s + h / 2)) - at(f, p, s - h / 2)) / h;
  const double d = df.eval(p).f;
  if (!std::isfinite(f0) || !std::isfinite(wide) || !std::isfinite(narrow) || !std::isfinite(d))
    return false;
  // The derivative itself must be nearly constant across the step (a function that
  // oscillates faster than h, cos(2000 s) say, defeats finite differences).
  const double d_lo = at(df, p, s - h / 2), d_hi = at(df, p, s + h / 2);
  if (!(std::fabs(d_hi - d_lo) <= 0.05 * (1 + std::fabs(d))))
    return false;
  // float32 evaluation: the differences carry ~eps |f| / h of rounding.
  const double rounding = 8 * 6e-8 * std::fabs(f0) / h;
  if (std::fabs(wide - narrow) > 1e-2 * (1 + std::fabs(narrow)) + rounding)
    return false;
  INFO("score " << s << " f " << f0 << " d/ds " << d << " central " << narrow);
  REQUIRE(std::fabs(d - narrow) <= 2e-2 * (1 + std::fabs(narrow)) + 2 * rounding);
  return true;
}

// Extreme constants (1e30, INT_MAX, ...) make float32 evaluation absorb the score
// (1e30 - s == 1e30), so finite differences see a flat function the derivative
// rightly is not: such mods are left to the lowering tests.
bool moderate_constants(const Expr& body) {
  for (const Expr& e : topo_order(body)) {
    if (e.kind() == NodeKind::FloatConst && !(std::fabs(e->fval) <= 1e3f))
      return false;
    if (e.kind() == NodeKind::IntConst && std::abs(static_cast<int64_t>(e->ival)) > 1000)
      return false;
  }
  return true;
}

} // namespace

TEST_CASE("derivative: seed score mods match central differences", "[compiler][derivative]") {
  const SeedCatalog seeds;
  std::mt19937 rng(11);
  for (const ScoreMod& mod : seeds.scores) {
    INFO("score_mod " << mod.name());
    const Expr d = score_derivative(mod.body());
    const Program f(mod.body()), df(d);
    int compared = 0, finite = 0;
    for (int i = 0; i < 400; ++i) {
      Point p{static_cast<int32_t>(rng() % 2), static_cast<int32_t>(rng() % 16),
              static_cast<int32_t>(rng() % 512), static_cast<int32_t>(rng() % 512),
              std::uniform_real_distribution<float>(-40.0f, 40.0f)(rng)};
      finite += std::isfinite(f.eval(p).f);
      compared += compare_at(f, df, p);
    }
    // The seed mods are smooth wherever they are finite (masked-out points are -inf).
    REQUIRE(finite >= 150);
    REQUIRE(compared >= finite * 9 / 10);
  }
}

TEST_CASE("derivative: random score mods match central differences", "[compiler][derivative]") {
  std::mt19937 rng(2024);
  int compared = 0, attempted = 0, reading_score = 0;
  for (int m = 0; m < 3000; ++m) {
    const RandomMod mod = random_score(rng, 5);
    try { // what a user's score_mod passes before it is differentiated
      type_check(ScoreMod("random", FloatExpr(mod.body)));
    } catch (const Error&) {
      continue;
    }
    if (!moderate_constants(mod.body))
      continue;
    const Expr d = score_derivative(mod.body);
    REQUIRE(d.type() == Type::Float);
    const Program f(mod.body, mod.bindings), df(d, mod.bindings);
    reading_score += analyze_dependence(mod.body).score;
    for (int i = 0; i < 8; ++i) {
      Point p = random_point(rng);
      p.score = std::uniform_real_distribution<float>(-8.0f, 8.0f)(rng);
      INFO("mod " << m << ": " << print(mod.body) << "\nderivative: " << print(d));
      ++attempted;
      compared += compare_at(f, df, p);
    }
  }
  // Enough points were smooth and finite that the comparison means something.
  INFO(compared << " of " << attempted << " points compared; " << reading_score
                << " mods read the score");
  REQUIRE(reading_score > 400);
  REQUIRE(compared > attempted / 5);
}

TEST_CASE("derivative: exact rules at kinks, and no score read", "[compiler][derivative]") {
  const FloatExpr s = var_score();
  auto d_at = [](const FloatExpr& body, float score) {
    return evaluate(score_derivative(body), Point{0, 0, 0, 0, score}).f;
  };
  CHECK(d_at(s * s, 3.0f) == 6.0f);
  CHECK(d_at(where(s > 0.0f, s, s * 0.1f), -1.0f) == Approx(0.1f));
  CHECK(d_at(where(s > 0.0f, s, s * 0.1f), 2.0f) == 1.0f);
  CHECK(d_at(min(s, FloatExpr(1.0f)), 1.0f) == 1.0f); // a tie goes to the first operand
  CHECK(d_at(max(FloatExpr(1.0f), s), 1.0f) == 0.0f);
  CHECK(d_at(abs(s), 0.0f) == 0.0f);
  CHECK(d_at(abs(s), -2.0f) == -1.0f);
  CHECK(d_at(exp(s), 1.0f) == Approx(std::exp(1.0f)));
  CHECK(d_at(log(s), 4.0f) == Approx(0.25f));
  CHECK(d_at(s / 4.0f, 1.0f) == Approx(0.25f));
  CHECK(d_at(FloatExpr(2.0f) / s, 2.0f) == Approx(-0.5f));
  CHECK(d_at(30.0f * tanh(s / 30.0f), 15.0f) ==
        Approx(1.0f - std::tanh(0.5f) * std::tanh(0.5f)).epsilon(1e-5));
  CHECK(d_at(30.0f * tanh_approx(s / 30.0f), 0.0f) == Approx(1.0f));
  // A score_mod that ignores the score (a bias added elsewhere is still d = 1).
  const Expr constant = score_derivative(FloatExpr(var_q()) * 0.5f);
  REQUIRE(constant.kind() == NodeKind::FloatConst);
  CHECK(constant->fval == 0.0f);
  CHECK(d_at(s + FloatExpr(var_kv() - var_q()), 5.0f) == 1.0f);
}
