// score_derivative (compiler/Derivative.cpp) against central finite differences of the
// interpreter, for the seed score mods and random ones, plus exact rules at kinks.
#include <algorithm>
#include <cmath>
#include <random>

#include <catch2/catch.hpp>

#include "flexjit/compiler/Interpreter.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Signature.h"
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
    const Program f(mod.body, mod.bindings, DataIndexCheck::ReadZero),
        df(d, mod.bindings, DataIndexCheck::ReadZero);
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

namespace {

// load_adjoints of `buffers` at point p against central differences of the body in each
// float32 element a load reads there (the adjoints of loads that read one element summed),
// under the same smoothness tests as compare_at. Returns how many elements were compared.
int compare_loads(const Expr& body, const Bindings& bindings,
                  const std::vector<std::string>& buffers, const Point& p) {
  struct Element {
    float* x;
    double adjoint;
  };
  std::vector<Element> elements;
  const std::vector<LoadAdjoint> adjoints = load_adjoints(body, buffers);
  const ModSignature sig = ModSignature::of({body});
  const ResolvedArgs args = resolve(sig, bindings); // the views the loads read
  auto bound_view = [&](const BufferDecl& decl) {
    const auto slot = std::find_if(sig.buffers.begin(), sig.buffers.end(),
                                   [&](const auto& d) { return d->name == decl.name; });
    return args.buffers[static_cast<size_t>(slot - sig.buffers.begin())];
  };
  // The adjoints' sum at this point with the element at x (for the smoothness test).
  auto adjoint_at = [&](const Element& e, float x) {
    const float x0 = *e.x;
    *e.x = x;
    double total = 0;
    for (const LoadAdjoint& la : adjoints) // loads of other elements add the same either way
      total += Program(la.adjoint, bindings, DataIndexCheck::ReadZero).eval(p).f;
    *e.x = x0;
    return total;
  };
  for (const LoadAdjoint& la : adjoints) {
    REQUIRE(la.load.kind() == NodeKind::Load);
    REQUIRE(la.adjoint.type() == Type::Float);
    const TensorView view = bound_view(*la.load->buffer);
    if (view.dtype != DType::F32)
      continue; // a float32 step is not representable in f16 / bf16 storage
    int64_t offset = 0;
    bool inside = true;
    for (int d = 0; d < view.rank; ++d) {
      const int32_t i =
          Program(la.load->operands[static_cast<size_t>(d)], bindings, DataIndexCheck::ReadZero)
              .eval(p)
              .i;
      inside = inside && i >= 0 && i < view.sizes[d];
      offset += static_cast<int64_t>(i) * view.strides[d];
    }
    if (!inside)
      continue; // reads 0, not an element
    float* x = static_cast<float*>(const_cast<void*>(view.data)) + offset;
    const double a = Program(la.adjoint, bindings, DataIndexCheck::ReadZero).eval(p).f;
    auto same =
        std::find_if(elements.begin(), elements.end(), [&](const Element& e) { return e.x == x; });
    if (same == elements.end())
      elements.push_back({x, a});
    else
      same->adjoint += a;
  }
  const Program f(body, bindings, DataIndexCheck::ReadZero);
  int compared = 0;
  for (const Element& e : elements) {
    const float x0 = *e.x;
    auto f_at = [&](float x) {
      *e.x = x;
      const double v = f.eval(p).f;
      *e.x = x0;
      return v;
    };
    if (!(std::fabs(x0) <= 1e3f))
      continue; // steps of a huge value absorb (as moderate_constants says of constants)
    const float h = 1e-2f * std::max(1.0f, std::fabs(x0));
    const double f0 = f_at(x0);
    // The derivative must be nearly constant across the step (cos(1000 x) is not).
    const double d_lo = adjoint_at(e, x0 - h / 2), d_hi = adjoint_at(e, x0 + h / 2);
    if (!(std::fabs(d_hi - d_lo) <= 0.05 * (1 + std::fabs(e.adjoint))))
      continue;
    const double wide = (f_at(x0 + h) - f_at(x0 - h)) / (2.0 * h);
    const double narrow = (f_at(x0 + h / 2) - f_at(x0 - h / 2)) / h;
    if (!std::isfinite(f0) || !std::isfinite(wide) || !std::isfinite(narrow) ||
        !std::isfinite(e.adjoint))
      continue;
    const double rounding = 8 * 6e-8 * std::fabs(f0) / h;
    if (std::fabs(wide - narrow) > 1e-2 * (1 + std::fabs(narrow)) + rounding)
      continue; // a kink or a jump within the step
    INFO("element " << x0 << " f " << f0 << " adjoint " << e.adjoint << " central " << narrow);
    REQUIRE(std::fabs(e.adjoint - narrow) <= 2e-2 * (1 + std::fabs(narrow)) + 2 * rounding);
    ++compared;
  }
  return compared;
}

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = scale * std::sin(0.7f * static_cast<float>(i) + 0.3f);
  return v;
}

} // namespace

TEST_CASE("derivative: the adjoints of buffer loads match central differences",
          "[compiler][derivative][buffer-grad]") {
  constexpr int H = 4, S = 40, kBuckets = 32;
  std::vector<float> rel = ramp(static_cast<size_t>(H) * (2 * S - 1), 0.5f); // [H, 2S - 1]
  std::vector<float> table = ramp(static_cast<size_t>(H) * kBuckets, 0.8f);  // [H, 32]
  std::vector<float> slopes = ramp(H, 0.25f);                                // [H]
  std::vector<float> scales = ramp(H, 1.5f);
  const TensorView rel_view = TensorView::contiguous(rel.data(), DType::F32, {H, 2 * S - 1});
  const TensorView table_view = TensorView::contiguous(table.data(), DType::F32, {H, kBuckets});
  const TensorView slopes_view = TensorView::contiguous(slopes.data(), DType::F32, {H});
  const TensorView scales_view = TensorView::contiguous(scales.data(), DType::F32, {H});
  const FloatBuffer bias = buffer_f32("rel_bias", rel_view);
  const FloatBuffer t5 = buffer_f32("t5_table", table_view);
  const FloatBuffer alibi = buffer_f32("alibi_slopes", slopes_view);
  const FloatBuffer scale = buffer_f32("head_scale", scales_view);
  const FloatExpr s = var_score();
  const IntExpr h = var_h(), q = var_q(), kv = var_kv();
  const IntExpr rel_pos = q - kv;
  // T5's buckets: exact below 8, logarithmic above, by direction (16 per side).
  const IntExpr distance = abs(rel_pos);
  const IntExpr log_bucket =
      min(IntExpr(8) + to_int(log(FloatExpr(distance) / 8.0f) * 3.0f), IntExpr(15));
  const IntExpr bucket =
      where(rel_pos > 0, IntExpr(16), IntExpr(0)) + where(distance < 8, distance, log_bucket);
  struct Named {
    const char* name;
    FloatExpr body;
    std::vector<std::string> buffers;
  };
  const std::vector<Named> mods = {
      {"relative bias", s + bias(h, rel_pos + (S - 1)), {"rel_bias"}},
      {"T5 bucket table", s + t5(h, bucket), {"t5_table"}},
      {"ALiBi slopes", s - alibi[h] * FloatExpr(distance), {"alibi_slopes"}},
      {"one load used twice, under tanh",
       20.0f * tanh(s * scale[h] / 20.0f) + bias(h, rel_pos + (S - 1)) * bias(h, rel_pos + (S - 1)),
       {"rel_bias", "head_scale"}},
      {"two loads of one element when q == kv", s * (bias(h, q) + bias(h, kv)), {"rel_bias"}},
      {"a load not asked for has no adjoint", s + t5(h, bucket) * alibi[h], {"alibi_slopes"}},
  };
  std::mt19937 rng(7);
  for (const Named& m : mods) {
    INFO(m.name << ": " << print(m.body));
    int compared = 0;
    for (int i = 0; i < 200; ++i) {
      const Point p{0, static_cast<int32_t>(rng() % H), static_cast<int32_t>(rng() % S),
                    static_cast<int32_t>(rng() % S),
                    std::uniform_real_distribution<float>(-6.0f, 6.0f)(rng)};
      compared += compare_loads(m.body, {}, m.buffers, p);
    }
    CHECK(compared >= 150);
  }
  // Which loads come back: one per distinct load node of the buffers asked for.
  CHECK(load_adjoints(mods[3].body, {"rel_bias"}).size() == 1);
  CHECK(load_adjoints(mods[3].body, {"rel_bias", "head_scale"}).size() == 2);
  CHECK(load_adjoints(mods[4].body, {"rel_bias"}).size() == 2);
  CHECK(load_adjoints(mods[5].body, {"alibi_slopes"}).size() == 1);
  CHECK(load_adjoints(mods[0].body, {"t5_table"}).empty());
  // An index computed from the score carries no derivative to the score's side.
  const FloatExpr via_index = t5(h, to_int(s) & 31) * 2.0f;
  const std::vector<LoadAdjoint> indexed = load_adjoints(via_index, {"t5_table"});
  REQUIRE(indexed.size() == 1);
  CHECK(evaluate(indexed[0].adjoint, Point{0, 0, 0, 0, 3.0f}).f == 2.0f);
}

TEST_CASE("derivative: the adjoints of random mods' float32 buffer loads match central "
          "differences",
          "[compiler][derivative][buffer-grad]") {
  std::mt19937 rng(99);
  int compared = 0, with_loads = 0;
  for (int m = 0; m < 3000; ++m) {
    RandomMod mod = random_score(rng, 5);
    try {
      type_check(ScoreMod("random", FloatExpr(mod.body)));
    } catch (const Error&) {
      continue;
    }
    if (!moderate_constants(mod.body))
      continue;
    std::vector<std::string> names;
    for (const auto& decl : analyze_dependence(mod.body).buffers)
      if (decl->dtype == DType::F32)
        names.push_back(decl->name);
    if (names.empty() || load_adjoints(mod.body, names).empty())
      continue;
    ++with_loads;
    INFO("mod " << m << ": " << print(mod.body));
    for (int i = 0; i < 16; ++i) {
      Point p = random_point(rng);
      p.score = std::uniform_real_distribution<float>(-8.0f, 8.0f)(rng);
      compared += compare_loads(mod.body, mod.bindings, names, p);
    }
  }
  INFO(compared << " elements compared over " << with_loads << " mods with float loads");
  REQUIRE(with_loads > 100);
  REQUIRE(compared > 200);
}
