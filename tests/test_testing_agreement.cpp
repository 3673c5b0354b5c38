// The agreement rule itself (testing/Agreement.h): what it accepts and, as much, what it
// must still reject -- a rule that accepted anything would make every differential
// test pass.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include <flexjit/flexjit.h>

#include "flexjit/testing/Agreement.h"

using namespace flexjit;
using flexjit::testing::Agreement;
using flexjit::testing::Backend;

namespace {

// The point of tests/fuzz_corpus/gpu_sin_of_exp_pair739.fz: exp(score) = 1.3e8, whose
// ulp is 8, so its 4-ulp band spans 10 periods of sin.
constexpr uint32_t kSteepScore = 0x41957338; // 18.68126

Point at_score(float score) {
  return Point{0, 0, 0, 0, score};
}

Value f(float x) {
  Value v{};
  v.f = x;
  return v;
}

Value i(int32_t x) {
  Value v{};
  v.i = x;
  return v;
}

float ulps_away(float x, int n) {
  return std::bit_cast<float>(std::bit_cast<uint32_t>(x) + static_cast<uint32_t>(n));
}

bool gpu_ok(const Expr& body, const Point& p, Value got) {
  const testing::Verdict v = Agreement(body, {}).check(Backend::Gpu, p, got);
  INFO(v.detail);
  return v.ok;
}

} // namespace

TEST_CASE("agreement: exact operations agree bit for bit, on every backend",
          "[testing][agreement]") {
  const Point p{1, 2, 30, 7, 1.5f};
  const Expr sum = var_q() + var_kv();
  CHECK(gpu_ok(sum, p, i(37)));
  CHECK_FALSE(gpu_ok(sum, p, i(38)));
  const FloatExpr scaled = var_score() * 3.0f;
  CHECK(gpu_ok(scaled, p, f(4.5f)));
  CHECK_FALSE(gpu_ok(scaled, p, f(ulps_away(4.5f, 1))));
  CHECK_FALSE(gpu_ok(scaled, p, f(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("agreement: a transcendental of an exact operand stays within its ulp band",
          "[testing][agreement]") {
  for (float x : {0.5f, 3.0f, -100.0f, std::bit_cast<float>(0x4cf7834eu) /* 1.3e8 */}) {
    INFO("sin(" << x << ")");
    const Expr e = sin(var_score());
    const float want = std::sin(x);
    CHECK(gpu_ok(e, at_score(x), f(want)));
    CHECK(gpu_ok(e, at_score(x), f(ulps_away(want, 4))));
    CHECK(gpu_ok(e, at_score(x), f(ulps_away(want, -4))));
    // A wrong sin is caught, also at a huge argument: only an operand that carries
    // error (rule 5) widens the band.
    CHECK_FALSE(gpu_ok(e, at_score(x), f(ulps_away(want, 5))));
    CHECK_FALSE(gpu_ok(e, at_score(x), f(ulps_away(want, -100))));
    CHECK_FALSE(gpu_ok(e, at_score(x), f(-want)));
    CHECK_FALSE(gpu_ok(e, at_score(x), f(std::numeric_limits<float>::quiet_NaN())));
  }
}

TEST_CASE("agreement: rule 5, sin and cos of an operand that carries a steep error",
          "[testing][agreement]") {
  const Point p = at_score(std::bit_cast<float>(kSteepScore));
  for (bool is_sin : {true, false}) {
    const Expr e = is_sin ? sin(exp(var_score())) : cos(exp(var_score()));
    // exp's band makes the operand any of 9 floats 8 apart: the result may be anything
    // in [-1, 1] ...
    for (float got : {-1.0f, -0.75f, 0.0f, 0.13f, 0.5f, 1.0f})
      CHECK(gpu_ok(e, p, f(got)));
    // ... and nothing else.
    CHECK_FALSE(gpu_ok(e, p, f(1.5f)));
    CHECK_FALSE(gpu_ok(e, p, f(-1.01f)));
    CHECK_FALSE(gpu_ok(e, p, f(std::numeric_limits<float>::quiet_NaN())));
    // The host JIT's libm is the interpreter's: bit for bit there.
    const Agreement host(e, {});
    const Value want = host.want(p);
    CHECK(host.check(Backend::HostJit, p, want).ok);
    CHECK_FALSE(host.check(Backend::HostJit, p, f(ulps_away(want.f, 1))).ok);
  }
}

TEST_CASE("agreement: rule 5 follows the interval through later operations",
          "[testing][agreement]") {
  const Point p = at_score(std::bit_cast<float>(kSteepScore));
  // The pair 739 chain: log2(log(sqrt(c) * sin(exp(score)))), c = 1.1e35 (sqrt 3.4e17).
  // With sin in (0, 1] the value is anything up to log2(log(3.4e17)) = 5.3349, NaN for
  // sin <= 0; the H100 gave about 5.26 (exp one ulp low: sin = 0.134).
  const FloatExpr c(std::bit_cast<float>(0x79af0000u)); // the case's bf16 buffer element
  const Expr chain = log2(log(sqrt(c) * sin(exp(var_score()))));
  CHECK(gpu_ok(chain, p, f(5.2610397f)));
  CHECK(gpu_ok(chain, p, f(5.0f)));
  CHECK(gpu_ok(chain, p, f(std::numeric_limits<float>::quiet_NaN())));
  CHECK_FALSE(gpu_ok(chain, p, f(5.34375f)));
  CHECK_FALSE(gpu_ok(chain, p, f(6.0f)));
  // An int computed from it: to_int(100 * sin) is anything in [-100, 100].
  const Expr percent = to_int(sin(exp(var_score())) * 100.0f);
  CHECK(gpu_ok(percent, p, i(-100)));
  CHECK(gpu_ok(percent, p, i(37)));
  CHECK(gpu_ok(percent, p, i(100)));
  CHECK_FALSE(gpu_ok(percent, p, i(101)));
  CHECK_FALSE(gpu_ok(percent, p, i(-250)));
  // Nested: sin(exp(sin(exp(s)))). The inner sin is anything in [-1, 1], so the outer
  // operand is in [exp(-1), exp(1)] = [0.37, 2.72], where sin takes [sin(0.37), 1] =
  // [0.36, 1] (its peak pi/2 is inside): not the whole range.
  const Expr nested = sin(exp(sin(exp(var_score()))));
  CHECK(gpu_ok(nested, p, f(0.37f)));
  CHECK(gpu_ok(nested, p, f(0.8f)));
  CHECK(gpu_ok(nested, p, f(1.0f)));
  CHECK_FALSE(gpu_ok(nested, p, f(0.3f)));
  CHECK_FALSE(gpu_ok(nested, p, f(-0.5f)));
}

TEST_CASE("agreement: rule 5 still catches a wrong sin at a small argument",
          "[testing][agreement]") {
  // exp(0.1) = 1.105 carries 4 ulps (5e-7) into sin, about as much as sin's own band:
  // the rule widens the result by a few ulps, no more.
  const Point p = at_score(0.1f);
  const Expr e = sin(exp(var_score()));
  const float want = std::sin(std::exp(0.1f));
  CHECK(gpu_ok(e, p, f(want)));
  CHECK(gpu_ok(e, p, f(ulps_away(want, 3))));
  CHECK(gpu_ok(e, p, f(ulps_away(want, -3))));
  CHECK_FALSE(gpu_ok(e, p, f(ulps_away(want, 40))));
  CHECK_FALSE(gpu_ok(e, p, f(ulps_away(want, -1000))));
  CHECK_FALSE(gpu_ok(e, p, f(std::cos(std::exp(0.1f))))); // the wrong function
  CHECK_FALSE(gpu_ok(e, p, f(0.0f)));
  // cos at the same point, and an exact operation after it.
  const Expr c = cos(exp(var_score())) + 1.0f;
  const float want_c = std::cos(std::exp(0.1f)) + 1.0f;
  CHECK(gpu_ok(c, p, f(want_c)));
  CHECK_FALSE(gpu_ok(c, p, f(want_c + 0.01f)));
}
