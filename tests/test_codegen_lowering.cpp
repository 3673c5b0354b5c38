// Differential tests of the lowering: each mod JIT-compiled on the host through
// the same LLVM IR the GPU gets (math mapped to libm) must agree with the
// interpreter, the semantic oracle, under the agreement rule of
// testing/Agreement.h (on the host: bit for bit), on random and extreme points.
// A mismatch prints a fuzz corpus case (testing/FuzzCase.h) to add to
// tests/fuzz_corpus/; the corpus runs here as regression tests.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <limits>
#include <random>
#include <set>

#include "flexjit/codegen/Codegen.h"
#include "flexjit/codegen/HostJit.h"
#include "flexjit/codegen/PackArgs.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/testing/Agreement.h"
#include "flexjit/testing/FuzzCase.h"
#include "flexjit/testing/RandomMods.h"
#include "flexjit/testing/SeedCatalog.h"

using namespace flexjit;
using flexjit::testing::Agreement;
using flexjit::testing::Backend;
using flexjit::testing::random_mask;
using flexjit::testing::random_point;
using flexjit::testing::random_score;
using flexjit::testing::RandomMod;
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

// Compares the JIT-compiled mod with the interpreter under the agreement rule
// at `points` points (the `extra` ones first); returns the number of
// mismatches, each reported through Catch's INFO/CHECK (a few) and the first
// few as one corpus case printed to stdout.
// `reports`, when given, counts the points where the JIT reported a data-indexed load outside
// its buffer (each one the oracle's too, or it is a mismatch).
template <class Mod, class PointFn>
int compare(const Mod& mod, const Bindings& bindings, int points, PointFn&& point,
            const std::vector<Point>& extra = {}, const std::string& origin = "",
            int* reports = nullptr) {
  const HostJitMod jit = HostJitMod::compile(mod);
  const Agreement oracle(mod.body(), bindings);
  uint32_t word = 0; // the JIT's report of a data-indexed load outside its buffer
  const FlexjitModArgs args =
      pack_mod_args(jit.signature(), resolve(jit.signature(), bindings), &word);
  int mismatches = 0;
  std::vector<Point> failed;
  for (int i = 0; i < points + static_cast<int>(extra.size()); ++i) {
    const Point p = i < static_cast<int>(extra.size()) ? extra[static_cast<size_t>(i)] : point();
    Value got{};
    word = 0;
    if constexpr (std::is_same_v<Mod, MaskMod>)
      got.b = jit.mask(p.b, p.h, p.q, p.kv, args);
    else
      got.f = jit.score(p.score, p.b, p.h, p.q, p.kv, args);
    const testing::Verdict v =
        oracle.check(Backend::HostJit, p, got, word == FLEXJIT_DEVICE_ERROR_LOAD);
    CHECK((word == 0 || word == FLEXJIT_DEVICE_ERROR_LOAD));
    if (reports)
      *reports += word != 0;
    if (v.ok)
      continue;
    if (failed.size() < 4)
      failed.push_back(p);
    if (++mismatches > 3)
      continue; // report a few, count all
    INFO("mod '" << mod.name() << "':\n" << print(mod.body()));
    INFO("host JIT " << v.detail);
    CHECK(false);
  }
  if (mismatches > 0)
    fmt::print("---- fuzz corpus case (save as tests/fuzz_corpus/<name>.fz) ----\n{}----\n",
               testing::format_case(mod.body(), bindings, failed,
                                    fmt::format("host JIT mismatch: {}", origin)));
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
  const FlexjitModArgs args =
      pack_mod_args(jit.signature(), resolve(jit.signature(), bindings), nullptr);
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
  const FlexjitModArgs args = pack_mod_args(jit.signature(), resolve(jit.signature(), {}), nullptr);
  REQUIRE(jit.score(0, 0, 0, 1, 2, args) == 6.0f);
  REQUIRE(jit.score(0, 0, 0, 0, 0, args) == 1.0f);
  for (auto [q, kv] : {std::pair{2, 0}, {0, 3}, {-1, 0}, {0, -1}, {INT_MIN, INT_MIN}})
    REQUIRE(jit.score(0, 0, 0, q, kv, args) == 0.0f);
}

namespace {

// The longest operand chain of a DAG (a leaf is 1).
int depth_of(const Expr& body) {
  std::unordered_map<const Node*, int> depth;
  for (const Expr& e : topo_order(body)) {
    int d = 0;
    for (const Expr& op : e->operands)
      d = std::max(d, depth.at(op.get()));
    depth[e.get()] = d + 1;
  }
  return depth.at(body.get());
}

// What the random mods exercised, counted on the optimized bodies (the code the
// JIT compiles).
struct Coverage {
  std::set<NodeKind> kinds;
  std::set<std::pair<DType, int>> loads;     // dtype, rank
  std::set<std::pair<Type, Type>> casts;     // from, to
  std::set<std::pair<NodeKind, Type>> typed; // select, compares by operand type
  int max_depth = 0, params = 0, strided = 0, empty = 0;

  void add(const Expr& body, const Bindings& bindings) {
    for (const Expr& e : topo_order(body)) {
      kinds.insert(e.kind());
      if (e.kind() == NodeKind::Load) {
        loads.emplace(e->buffer->dtype, e->buffer->rank);
        const TensorView& v = bindings.buffers.at(e->buffer->name);
        strided += v.strides[v.rank - 1] != 1;
        empty += v.numel() == 0;
      }
      if (e.kind() == NodeKind::Cast)
        casts.emplace(e->operands[0].type(), e.type());
      if (e.kind() == NodeKind::Select || e.kind() == NodeKind::Eq || e.kind() == NodeKind::Ne ||
          e.kind() == NodeKind::Lt || e.kind() == NodeKind::Le)
        typed.emplace(e.kind(), e->operands.back().type());
      params += e.kind() == NodeKind::Param;
    }
    max_depth = std::max(max_depth, depth_of(body));
  }
};

} // namespace

// The CPU half of the differential fuzzer (the GPU half: test_codegen_gpu_fuzz.cpp).
// FLEXJIT_FUZZ_SEED and FLEXJIT_FUZZ_MODS explore further than CI's run.
TEST_CASE("lowering: 2000 random mods agree with the interpreter", "[codegen][fuzz]") {
  const int kMods =
      testing::env_int("FLEXJIT_FUZZ_MODS", 2000) / 2; // of each kind that type-checks
  constexpr int kPoints = 200;
  const uint32_t seed = static_cast<uint32_t>(testing::env_int("FLEXJIT_FUZZ_SEED", 20261121));
  std::mt19937 rng(seed);
  auto point = [&] { return random_point(rng); };
  int tested = 0, rejected = 0, failed = 0, reports = 0;
  Coverage coverage;
  for (int i = 0; tested < 2 * kMods; ++i) {
    const bool is_mask = tested % 2 == 0;
    RandomMod r = is_mask ? random_mask(rng) : random_score(rng);
    INFO("random mod #" << i << " of seed " << seed);
    const std::string origin = fmt::format("test_lowering seed {} mod #{}", seed, i);
    try {
      failed += (is_mask ? compare(MaskMod("random", BoolExpr(r.body)), r.bindings, kPoints, point,
                                   {}, origin, &reports)
                         : compare(ScoreMod("random", FloatExpr(r.body)), r.bindings, kPoints,
                                   point, {}, origin, &reports)) != 0;
      ++tested;
      coverage.add(optimize(r.body), r.bindings);
    } catch (const Error& e) {
      // A division by a constant zero is a user error the compiler reports.
      REQUIRE(std::string(e.what()).find("division by a constant zero") != std::string::npos);
      ++rejected;
    }
  }
  REQUIRE(failed == 0);
  REQUIRE(rejected < tested / 10);

  // Every node kind reached the JIT, every buffer dtype x rank, every cast,
  // select and compares of every type, params, strided and empty buffers and
  // deep nesting.
  CHECK(coverage.kinds.size() == static_cast<size_t>(num_node_kinds()));
  CHECK(coverage.loads.size() == 5 * kMaxRank);
  CHECK(coverage.casts.size() == 6);
  CHECK(coverage.typed.size() == 2 * 2 + 3 * 3); // Lt, Le: int, float; Eq, Ne, Select: all
  CHECK(coverage.params > 1000);
  CHECK(coverage.strided > 100);
  CHECK(coverage.empty > 10);
  CHECK(coverage.max_depth >= 60);
  // Data-indexed loads outside their buffers: reported where the oracle finds them (compare).
  CHECK(reports > 1000);
}

TEST_CASE("lowering: a data-indexed load outside its buffer reads 0 and reports", "[codegen]") {
  // Sequences 0, 1, 2 and two ids outside offsets' 4 entries (jagged_causal reads
  // offsets[seq_idx[q]] and offsets[seq_idx[kv]]).
  const std::vector<int32_t> seq = {0, 0, 0, 0, 1, 1, 1, 2, 2, 4, -7, 2};
  const std::vector<int32_t> offsets = {0, 4, 7, 12};
  const MaskMod mask = seeds::jagged_causal(offsets, seq);
  const HostJitMod jit = HostJitMod::compile(mask);
  const Program oracle(mask.body(), {}, DataIndexCheck::ReadZero), checked(mask.body());
  uint32_t word = 0;
  const FlexjitModArgs args = pack_mod_args(jit.signature(), resolve(jit.signature(), {}), &word);
  int reported = 0;
  for (int q = 0; q < 14; ++q) // q_idx 12, 13: seq_idx reads 0, a position outside: no report
    for (int kv = 0; kv < 14; ++kv) {
      word = 0;
      const Point p{0, 0, q, kv};
      INFO("q_idx " << q << ", kv_idx " << kv);
      REQUIRE(jit.mask(0, 0, q, kv, args) == oracle.eval(p).b);
      REQUIRE(word == (checked.reads_outside(p) ? FLEXJIT_DEVICE_ERROR_LOAD : 0u));
      reported += word != 0;
    }
  CHECK(reported == 2 * 14 + 12 * 2); // q_idx 9 or 10 with every kv_idx, and the reverse
  // Without a word (args.device_error null) nothing reports and nothing faults.
  const FlexjitModArgs silent =
      pack_mod_args(jit.signature(), resolve(jit.signature(), {}), nullptr);
  CHECK(jit.mask(0, 0, 9, 0, silent) == oracle.eval(Point{0, 0, 9, 0}).b);
}

TEST_CASE("lowering: eval_bool_row equals eval on random masks", "[codegen][fuzz]") {
  // The interpreter's vectorized row path (create_mask, the CPU block mask
  // builder) is a third implementation of a mask; it must agree with eval.
  std::mt19937 rng(8);
  int checked = 0;
  for (int i = 0; i < 300; ++i) {
    RandomMod r = random_mask(rng);
    const Program program(r.body, r.bindings, DataIndexCheck::ReadZero);
    Point p = random_point(rng);
    const int32_t n = 1 + static_cast<int32_t>(rng() % 200);
    p.kv = std::min(p.kv, INT_MAX - n);
    std::vector<uint8_t> row(static_cast<size_t>(n));
    program.eval_bool_row(p.b, p.h, p.q, p.kv, n, reinterpret_cast<bool*>(row.data()));
    for (int32_t k = 0; k < n; ++k, ++checked) {
      Point pk = p;
      pk.kv = p.kv + k;
      INFO("random mask #" << i << ":\n" << print(r.body) << "\nat " << testing::describe(pk));
      REQUIRE(static_cast<bool>(row[static_cast<size_t>(k)]) == program.eval(pk).b);
    }
  }
  CHECK(checked > 10000);
}

TEST_CASE("fuzz corpus: a case prints and parses back to the same mod",
          "[codegen][testing][fuzz]") {
  std::mt19937 rng(99);
  for (int i = 0; i < 300; ++i) {
    RandomMod r = i % 2 ? random_mask(rng) : random_score(rng);
    std::vector<Point> points = {random_point(rng), random_point(rng)};
    const std::string text = testing::format_case(r.body, r.bindings, points, "round trip");
    INFO(text);
    const testing::FuzzCase c = testing::parse_case("round_trip", text);
    REQUIRE(c.is_mask == (i % 2 == 1));
    REQUIRE(print(c.mod.body) == print(r.body));
    REQUIRE(c.points.size() == 2);
    REQUIRE(testing::format_case(c.mod.body, c.mod.bindings, c.points, "round trip") == text);
    const Program a(r.body, r.bindings, DataIndexCheck::ReadZero),
        b(c.mod.body, c.mod.bindings, DataIndexCheck::ReadZero);
    for (int k = 0; k < 20; ++k) {
      const Point p = random_point(rng);
      REQUIRE(testing::same_value(r.body.type(), a.eval(p), b.eval(p)));
    }
  }
}

// Every mismatch ever found (tests/fuzz_corpus/*.fz), on the host JIT.
TEST_CASE("fuzz corpus: every case agrees on the host JIT", "[codegen][fuzz]") {
  std::mt19937 rng(7);
  auto point = [&] { return random_point(rng); };
  REQUIRE(!testing::fuzz_corpus().empty());
  for (const auto& [name, text] : testing::fuzz_corpus()) {
    const testing::FuzzCase c = testing::parse_case(name, text);
    INFO("corpus case " << name << ": " << c.comment);
    const int mismatches = c.is_mask ? compare(MaskMod("corpus", BoolExpr(c.mod.body)),
                                               c.mod.bindings, 2000, point, c.points, name)
                                     : compare(ScoreMod("corpus", FloatExpr(c.mod.body)),
                                               c.mod.bindings, 2000, point, c.points, name);
    CHECK(mismatches == 0);
  }
}
