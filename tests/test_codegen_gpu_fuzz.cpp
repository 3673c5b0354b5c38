// The GPU half of the differential fuzzer: random mods (testing/RandomMods.h) run
// on the GPU -- both mods at arbitrary points through the eval_points template,
// masks also through create_mask -- against the interpreter under the
// agreement rule of testing/Agreement.h (Backend::Gpu); and the fuzz corpus on
// the GPU. A mismatch prints a corpus case (testing/FuzzCase.h). Every test skips
// cleanly without a CUDA device. FLEXJIT_FUZZ_SEED and FLEXJIT_FUZZ_MODS
// explore further than the default run.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include <flexjit/flexjit.h>

#include "flexjit/codegen/templates/flexjit_abi.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/runtime/DeviceErrors.h"
#include "flexjit/testing/Agreement.h"
#include "flexjit/testing/EvalPoints.h"
#include "flexjit/testing/FuzzCase.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/RandomMods.h"

using namespace flexjit;
using namespace flexjit::testing;

namespace {

struct Tally {
  long points = 0, inexact = 0, mismatches = 0;
  long reports = 0; // launches that reported a data-indexed load outside its buffer
  long silent = 0;  // launches where the interpreter finds one but LLVM dropped the load
};

// Checks the GPU's values of one mod at `points`; reports a few mismatches and
// prints the first ones as a corpus case. Returns the number of mismatches. With `outside`,
// also sets it when the interpreter finds a data-indexed load outside its buffer at a point
// (what the launch must report).
int check_values(const Expr& body, const Bindings& bindings, const std::vector<Point>& points,
                 const std::vector<Value>& got, const std::string& origin, Tally& tally,
                 bool* outside = nullptr) {
  const Agreement oracle(body, bindings);
  std::vector<Point> failed;
  int mismatches = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    if (outside && !*outside)
      *outside = oracle.reads_outside(points[i]);
    const Verdict v = oracle.check(Backend::Gpu, points[i], got[i]);
    ++tally.points;
    tally.inexact += !v.exact;
    if (v.ok)
      continue;
    ++tally.mismatches;
    if (failed.size() < 4)
      failed.push_back(points[i]);
    if (++mismatches > 3)
      continue;
    INFO(origin << ":\n" << print(body));
    INFO("GPU " << v.detail);
    CHECK(false);
  }
  if (mismatches > 0)
    fmt::print("---- fuzz corpus case (save as tests/fuzz_corpus/<name>.fz) ----\n{}----\n",
               format_case(body, bindings, failed, "GPU mismatch: " + origin));
  return mismatches;
}

// A launch's report against the interpreter: never without a load outside; LLVM may drop a
// load whose value it proves cannot matter (its instcombine folds more than optimize(): x <=
// INT_MAX, x % 1, ...), and with it the report: a silence is counted, never a wrong value.
// Returns 1 for a report without a load outside.
int check_report(bool reported, bool outside, Tally& tally) {
  CHECK((!reported || outside));
  tally.reports += reported;
  tally.silent += outside && !reported;
  return reported && !outside;
}

std::vector<Value> mask_values(const PointValues& v) {
  std::vector<Value> out(v.mask.size());
  for (size_t i = 0; i < out.size(); ++i)
    out[i].b = v.mask[i] != 0;
  return out;
}

std::vector<Value> score_values(const PointValues& v) {
  std::vector<Value> out(v.score.size());
  for (size_t i = 0; i < out.size(); ++i)
    out[i].f = v.score[i];
  return out;
}

// create_mask on the GPU against the interpreter over a small [B, H, Q, KV] grid.
int check_create_mask(const MaskMod& mask, const Bindings& host, const Bindings& device,
                      const std::string& origin, Tally& tally) {
  constexpr int B = 2, H = 3, Q = 19, KV = 37;
  const std::vector<uint8_t> gpu = create_mask(mask, B, H, Q, KV, device, Device::Cuda);
  Stream{}.synchronize();
  const bool reported = (cuda::take_device_errors() & FLEXJIT_DEVICE_ERROR_LOAD) != 0;
  std::vector<Point> points;
  std::vector<Value> got;
  for (int b = 0, i = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int q = 0; q < Q; ++q)
        for (int kv = 0; kv < KV; ++kv, ++i) {
          points.push_back(Point{b, h, q, kv, 0.0f});
          got.emplace_back().b = gpu[static_cast<size_t>(i)] != 0;
        }
  bool outside = false;
  const int mismatches =
      check_values(mask.body(), host, points, got, origin + " (create_mask)", tally, &outside);
  INFO(origin << " (create_mask):\n" << print(mask.body()));
  return mismatches + check_report(reported, outside, tally);
}

} // namespace

TEST_CASE("gpu fuzz: 2000 random mods agree with the interpreter", "[gpu][codegen][fuzz]") {
  SKIP_WITHOUT_CUDA();
  const int pairs = static_cast<int>(env_int("FLEXJIT_FUZZ_MODS", 2000) / 2); // mask + score each
  constexpr int kPoints = 200;
  const uint32_t seed = static_cast<uint32_t>(env_int("FLEXJIT_FUZZ_SEED", 20261122));
  std::mt19937 rng(seed);
  int tested = 0, rejected = 0, failed = 0;
  Tally tally;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; tested < pairs; ++i) {
    RandomMod r = random_pair(rng);
    const MaskMod mask("random", BoolExpr(r.body));
    const ScoreMod score("random", FloatExpr(r.score));
    const std::string origin = fmt::format("test_gpu_fuzz seed {} pair #{}", seed, i);
    INFO(origin);
    try {
      type_check(mask);
      type_check(score);
    } catch (const Error& e) {
      // A division by a constant zero is a user error the compiler reports.
      REQUIRE(std::string(e.what()).find("division by a constant zero") != std::string::npos);
      ++rejected;
      continue;
    }
    std::vector<Point> points;
    for (int k = 0; k < kPoints; ++k)
      points.push_back(random_point(rng));
    const DeviceBindings device = to_device({r.body, r.score}, r.bindings);
    const PointValues got = eval_points_cuda(mask, score, points, device.bindings);
    bool outside = false;
    failed += check_values(r.body, r.bindings, points, mask_values(got), origin + " mask", tally,
                           &outside) +
                  check_values(r.score, r.bindings, points, score_values(got), origin + " score",
                               tally, &outside) +
                  check_report(got.reported_outside, outside, tally) >
              0;
    if (i % 8 == 0)
      failed += check_create_mask(mask, r.bindings, device.bindings, origin + " mask", tally) > 0;
    ++tested;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN("gpu fuzz seed " << seed << ": " << 2 * tested << " mods (" << rejected << " rejected), "
                        << tally.points << " values, " << tally.inexact
                        << " not bit-exact but within the agreement rule, " << tally.mismatches
                        << " mismatches, " << tally.reports
                        << " launches reporting a data-indexed load outside its buffer (each "
                           "where the interpreter finds one), "
                        << tally.silent << " silent (the load dropped by LLVM as dead), " << seconds
                        << " s");
  REQUIRE(failed == 0);
  CHECK(tally.reports > 20);
  CHECK(tally.silent < tally.reports / 4);
  REQUIRE(rejected < tested / 10);
}

// Every mismatch ever found (tests/fuzz_corpus/*.fz), on the GPU.
TEST_CASE("gpu fuzz: every corpus case agrees on the GPU", "[gpu][codegen][fuzz]") {
  SKIP_WITHOUT_CUDA();
  std::mt19937 rng(7);
  Tally tally;
  for (const auto& [name, text] : fuzz_corpus()) {
    const FuzzCase c = parse_case(name, text);
    INFO("corpus case " << name << ": " << c.comment);
    std::vector<Point> points = c.points;
    for (int k = 0; k < 2000; ++k)
      points.push_back(random_point(rng));
    const DeviceBindings device = to_device({c.mod.body}, c.mod.bindings);
    if (c.is_mask) {
      const MaskMod mask("corpus", BoolExpr(c.mod.body));
      const PointValues got = eval_points_cuda(mask, ScoreMod(), points, device.bindings);
      CHECK(check_values(c.mod.body, c.mod.bindings, points, mask_values(got), name, tally) == 0);
    } else {
      const ScoreMod score("corpus", FloatExpr(c.mod.body));
      const PointValues got = eval_points_cuda(MaskMod(), score, points, device.bindings);
      CHECK(check_values(c.mod.body, c.mod.bindings, points, score_values(got), name, tally) == 0);
    }
  }
}

// Each inexact function alone over a sweep of inputs (every binade, the
// specials): the measured distance from the host's value, against the bound
// the agreement rule allows.
TEST_CASE("gpu fuzz: libdevice and tanh.approx stay within the agreement bounds",
          "[gpu][codegen][fuzz]") {
  SKIP_WITHOUT_CUDA();
  std::vector<Point> points;
  std::mt19937 rng(3);
  for (int e = -149; e <= 127; ++e)
    for (int k = 0; k < 8; ++k) {
      const float x = std::ldexp(std::uniform_real_distribution<float>(1.0f, 2.0f)(rng), e);
      points.push_back(Point{0, 0, 0, 0, x});
      points.push_back(Point{0, 0, 0, 0, -x});
    }
  for (float x : {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.72283f, 88.72284f, -103.97208f, 128.0f,
                  -149.0f, 1e30f, 3.14159265f, 1.5707964f})
    points.push_back(Point{0, 0, 0, 0, x});
  using Fn = FloatExpr (*)(const FloatExpr&);
  const std::pair<const char*, Fn> fns[] = {
      {"exp", exp}, {"exp2", exp2}, {"log", log},   {"log2", log2},
      {"sin", sin}, {"cos", cos},   {"tanh", tanh}, {"tanh_approx", tanh_approx}};
  for (auto [name, fn] : fns) {
    const ScoreMod mod(name, fn(var_score()));
    const PointValues got = eval_points_cuda(MaskMod(), mod, points);
    int64_t worst_ulps = 0;
    double worst_relative = 0;
    const Agreement oracle(mod.body(), {});
    for (size_t i = 0; i < points.size(); ++i) {
      const float want = oracle.want(points[i]).f;
      const float g = got.score[i];
      worst_ulps = std::max(worst_ulps, ulp_distance(g, want));
      if (std::isfinite(want) && want != 0.0f)
        worst_relative =
            std::max(worst_relative, std::fabs((static_cast<double>(g) - want) / want));
      Value v;
      v.f = g;
      const Verdict verdict = oracle.check(Backend::Gpu, points[i], v);
      INFO(name << " " << verdict.detail);
      CHECK(verdict.ok);
    }
    WARN(name << ": at most " << worst_ulps << " ulps and relative error " << worst_relative
              << " from the host's value over " << points.size() << " inputs");
  }
}
