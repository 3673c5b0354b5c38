// Differential tests of the lowering: each mod JIT-compiled on the host through
// the same LLVM IR the GPU gets (math mapped to libm) must agree bit for bit
// with the interpreter, the semantic oracle, on random and extreme points.
#include <catch2/catch.hpp>

#include <bit>
#include <climits>
#include <cmath>
#include <limits>
#include <random>

#include "codegen/Codegen.h"
#include "compiler/Passes.h"
#include "tests/RandomMods.h"
#include "tests/SeedCatalog.h"

using namespace flexjit;
using flexjit::testing::random_mask;
using flexjit::testing::random_point;
using flexjit::testing::random_score;
using flexjit::testing::RandomMod;
using flexjit::testing::same_value;
using flexjit::testing::SeedCatalog;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Indices around the seed buffers' sizes and the int32 extremes.
Point seed_point(std::mt19937& rng) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto index = [&]() -> int32_t {
    switch (pick(0, 7)) {
    case 0:
      return INT_MIN + pick(0, 1);
    case 1:
      return INT_MAX - pick(0, 1);
    case 2:
      return pick(-3, 0);
    case 3:
      return static_cast<int32_t>(rng());
    default:
      return pick(0, 17000);
    }
  };
  const float specials[] = {kInf, -kInf, kNaN, -0.0f, 0.0f, 30.0f, -1e-40f, 3e38f};
  Point p{index(), index(), index(), index(), 0.0f};
  p.score = pick(0, 3) == 0 ? specials[pick(0, 7)]
                            : std::uniform_real_distribution<float>(-100.0f, 100.0f)(rng);
  return p;
}

std::string describe(const Point& p) {
  return fmt::format("b={} h={} q={} kv={} score={} ({:#x})", p.b, p.h, p.q, p.kv, p.score,
                     std::bit_cast<uint32_t>(p.score));
}

std::string describe(Type type, Value v) {
  switch (type) {
  case Type::Bool:
    return v.b ? "true" : "false";
  case Type::Int:
    return std::to_string(v.i);
  case Type::Float:
    return fmt::format("{} ({:#x})", v.f, std::bit_cast<uint32_t>(v.f));
  }
  return "?";
}

// Compares the JIT-compiled mod with the interpreter at `points` points; returns
// the number of mismatches (each reported through Catch's INFO/CHECK).
template <class Mod, class PointFn>
int compare(const Mod& mod, const Bindings& bindings, int points, PointFn&& point) {
  const HostJitMod jit = HostJitMod::compile(mod);
  const Program oracle(mod.body(), bindings);
  const FlexjitModArgs args = pack_mod_args(jit.signature(), resolve(jit.signature(), bindings));
  const Type type = mod.body().type();
  int mismatches = 0;
  for (int i = 0; i < points; ++i) {
    const Point p = point();
    Value got{};
    if constexpr (std::is_same_v<Mod, MaskMod>)
      got.b = jit.mask(p.b, p.h, p.q, p.kv, args);
    else
      got.f = jit.score(p.score, p.b, p.h, p.q, p.kv, args);
    const Value want = oracle.eval(p);
    if (same_value(type, got, want))
      continue;
    if (++mismatches > 3)
      continue; // report a few, count all
    INFO("mod '" << mod.name() << "':\n" << print(mod.body()));
    INFO("at " << describe(p) << ": jit " << describe(type, got) << ", interpreter "
               << describe(type, want));
    CHECK(false);
  }
  return mismatches;
}

} // namespace

TEST_CASE("lowering: seed masks and score mods match the interpreter bit for bit", "[codegen]") {
  const SeedCatalog seeds;
  std::mt19937 rng(1234);
  auto point = [&] { return seed_point(rng); };
  for (const MaskMod& mask : seeds.masks) {
    INFO("mask " << mask.name());
    REQUIRE(compare(mask, {}, 20000, point) == 0);
  }
  REQUIRE(compare(noop_mask(), {}, 100, point) == 0);
  for (const ScoreMod& score : seeds.scores) {
    INFO("score " << score.name());
    REQUIRE(compare(score, {}, 20000, point) == 0);
  }
}

TEST_CASE("lowering: params and call-time bindings reach the hooks", "[codegen]") {
  const MaskMod window = seeds::sliding_window(8);
  const HostJitMod jit = HostJitMod::compile(window);
  Bindings bindings;
  bindings.params["window"] = 3;
  const FlexjitModArgs args = pack_mod_args(jit.signature(), resolve(jit.signature(), bindings));
  REQUIRE(jit.mask(0, 0, 10, 7, args));
  REQUIRE(!jit.mask(0, 0, 10, 6, args));
  REQUIRE(!jit.mask(0, 0, 10, 11, args));
}

TEST_CASE("lowering: integer division edge cases never trap", "[codegen]") {
  const IntExpr d = param_i32("d");
  const HostJitMod floor_q = HostJitMod::compile(
      score_mod("fd", [&](Score, Idx, Idx, Idx q, Idx) { return FloatExpr(q / d); }));
  const HostJitMod mod_q = HostJitMod::compile(
      score_mod("md", [&](Score, Idx, Idx, Idx q, Idx) { return FloatExpr(q % d); }));
  struct Case {
    int32_t q, d;
    float floor_div, mod;
  };
  const Case cases[] = {{7, 2, 3, 1},
                        {-7, 2, -4, 1},
                        {7, -2, -4, -1},
                        {-7, -2, 3, -1},
                        {5, 0, 0, 0},
                        {INT_MIN, 0, 0, 0},
                        {INT_MIN, -1, static_cast<float>(INT_MIN), 0}};
  for (const Case& c : cases) {
    INFO("q=" << c.q << " d=" << c.d);
    FlexjitModArgs args{};
    args.int_params[0] = c.d;
    REQUIRE(floor_q.score(0, 0, 0, c.q, 0, args) == c.floor_div);
    REQUIRE(mod_q.score(0, 0, 0, c.q, 0, args) == c.mod);
  }
}

TEST_CASE("lowering: loads out of range in any dimension read 0", "[codegen]") {
  std::vector<float> table = {1, 2, 3, 4, 5, 6}; // [2, 3]
  const FloatBuffer t = buffer_f32("t", TensorView::contiguous(table.data(), DType::F32, {2, 3}));
  const HostJitMod jit =
      HostJitMod::compile(score_mod("t", [&](Score, Idx, Idx, Idx q, Idx kv) { return t(q, kv); }));
  const FlexjitModArgs args = pack_mod_args(jit.signature(), resolve(jit.signature(), {}));
  REQUIRE(jit.score(0, 0, 0, 1, 2, args) == 6.0f);
  REQUIRE(jit.score(0, 0, 0, 0, 0, args) == 1.0f);
  for (auto [q, kv] : {std::pair{2, 0}, {0, 3}, {-1, 0}, {0, -1}, {INT_MIN, INT_MIN}})
    REQUIRE(jit.score(0, 0, 0, q, kv, args) == 0.0f);
}

TEST_CASE("lowering: random mods match the interpreter bit for bit", "[codegen]") {
  constexpr int kMods = 1000; // of each kind, masks and score mods, that type-check
  constexpr int kPoints = 200;
  std::mt19937 rng(20261121);
  auto point = [&] { return random_point(rng); };
  int tested = 0, rejected = 0, failed = 0;
  for (int i = 0; tested < 2 * kMods; ++i) {
    const bool is_mask = tested % 2 == 0;
    RandomMod r = is_mask ? random_mask(rng) : random_score(rng);
    INFO("random mod #" << i);
    try {
      failed += (is_mask ? compare(MaskMod("random", BoolExpr(r.body)), r.bindings, kPoints, point)
                         : compare(ScoreMod("random", FloatExpr(r.body)), r.bindings, kPoints,
                                   point)) != 0;
      ++tested;
    } catch (const Error& e) {
      // A division by a constant zero is a user error the compiler reports.
      REQUIRE(std::string(e.what()).find("division by a constant zero") != std::string::npos);
      ++rejected;
    }
  }
  REQUIRE(failed == 0);
  REQUIRE(rejected < tested / 10);
}
