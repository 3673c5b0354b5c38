#include <catch2/catch.hpp>

#include <climits>
#include <cmath>
#include <limits>
#include <set>

#include <flexjit/flexjit.h>

#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/testing/RandomMods.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

bool throws_with(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
  } catch (const Error& e) {
    INFO(e.what());
    return std::string(e.what()).find(needle) != std::string::npos;
  }
  return false;
}

} // namespace

TEST_CASE("simplify: exact int rules", "[compiler]") {
  IntExpr q = var_q(), kv = var_kv(), x = param_i32("x");
  CHECK(simplify(q + 0).same_as(q));
  CHECK(simplify(0 + q).same_as(q));
  CHECK(simplify(q * 1).same_as(q));
  CHECK(simplify(q * 0).same_as(IntExpr(0)));
  CHECK(simplify(q - q).same_as(IntExpr(0)));
  CHECK(simplify((q + 3) + 4).same_as(q + 7));
  CHECK(simplify((q - 3) + 3).same_as(q));
  CHECK(simplify(q - 5).same_as(q + (-5)));
  CHECK(simplify(q - INT_MIN).same_as(q + INT_MIN));
  CHECK(simplify(-(-q)).same_as(q));
  CHECK(simplify(q / 1).same_as(q));
  CHECK(simplify(q % 1).same_as(IntExpr(0)));
  CHECK(simplify(min(x, x)).same_as(x));
  CHECK(simplify(IntExpr(7) / IntExpr(-2)).same_as(IntExpr(-4)));
  CHECK(simplify(IntExpr(INT_MAX) + 1).same_as(IntExpr(INT_MIN)));
  CHECK(simplify(to_int(FloatExpr(-2.5f))).same_as(IntExpr(-2)));
}

TEST_CASE("simplify: exact bool rules", "[compiler]") {
  IntExpr q = var_q(), kv = var_kv();
  BoolExpr c = q < kv, d = q == 3;
  CHECK(simplify(!!c).same_as(c));
  CHECK(simplify(c && true).same_as(c));
  CHECK(simplify(c && false).same_as(BoolExpr(false)));
  CHECK(simplify(c || true).same_as(BoolExpr(true)));
  CHECK(simplify(c || false).same_as(c));
  CHECK(simplify(c && c).same_as(c));
  CHECK(simplify(q <= q).same_as(BoolExpr(true)));
  CHECK(simplify(q < q).same_as(BoolExpr(false)));
  CHECK(simplify(q == q).same_as(BoolExpr(true)));
  CHECK(simplify(!(q < kv)).same_as(kv <= q));
  CHECK(simplify(!(q <= kv)).same_as(kv < q));
  CHECK(simplify(!d).same_as(q != 3));
  CHECK(simplify(where(BoolExpr(true), q, kv)).same_as(q));
  CHECK(simplify(where(BoolExpr(false), q, kv)).same_as(kv));
  CHECK(simplify(where(c, q, q)).same_as(q));
  CHECK(simplify(where(d && true, q + 0, kv)).same_as(where(d, q, kv)));
}

TEST_CASE("simplify: float rules are exact under IEEE", "[compiler]") {
  FloatExpr s = var_score();
  CHECK(simplify(s * 1.0f).same_as(s));
  CHECK(simplify(s / 1.0f).same_as(s));
  CHECK(simplify(s - 0.0f).same_as(s));
  CHECK(simplify(s + (-0.0f)).same_as(s));
  CHECK(simplify(s / 4.0f).same_as(s * 0.25f));
  CHECK(simplify(s / -0.5f).same_as(s * -2.0f));
  // Not exact, so kept.
  CHECK(!simplify(s + 0.0f).same_as(s));
  CHECK(!simplify(s * 0.0f).same_as(FloatExpr(0.0f)));
  CHECK(simplify(s / 3.0f).kind() == NodeKind::Div);
  CHECK(simplify(s / std::ldexp(1.0f, -149)).kind() == NodeKind::Div); // 1/c overflows
  CHECK(simplify(s <= s).kind() == NodeKind::Le);                      // NaN <= NaN is false
  CHECK(simplify(!(s < 1.0f)).kind() == NodeKind::Not);
  // NaN folds like the interpreter computes it.
  CHECK(std::isnan(simplify(min(FloatExpr(kNaN), FloatExpr(1.0f)))->fval));
}

TEST_CASE("simplify: division by a constant zero is an error", "[compiler]") {
  IntExpr q = var_q(), kv = var_kv();
  CHECK(throws_with([&] { simplify(q / (kv - kv)); }, "division by a constant zero"));
  CHECK(throws_with([&] { simplify(q % (IntExpr(3) - 3)); }, "division by a constant zero"));
  CHECK(throws_with([&] { simplify(var_score() / (FloatExpr(0.0f) * 1.0f)); },
                    "division by a constant zero"));
}

TEST_CASE("simplify and optimize preserve values bit for bit on random expressions", "[compiler]") {
  std::mt19937 rng(42);
  int checked = 0, zero_div = 0, changed = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    Type type = static_cast<Type>(iter % 3);
    testing::RandomMod mod = testing::random_expr(rng, type, 1 + iter % 8, true);
    Expr s, o;
    try {
      s = simplify(mod.body);
      o = optimize(mod.body);
    } catch (const Error&) {
      ++zero_div; // folding revealed a constant zero divisor
      continue;
    }
    changed += !s.same_as(mod.body);
    REQUIRE(o.same_as(optimize(o))); // a fixed point
    Program pe(mod.body, mod.bindings, DataIndexCheck::ReadZero),
        ps(s, mod.bindings, DataIndexCheck::ReadZero),
        po(o, mod.bindings, DataIndexCheck::ReadZero);
    for (int k = 0; k < 12; ++k) {
      Point p = testing::random_point(rng);
      Value want = pe.eval(p);
      INFO(print(mod.body) << "\n  simplified: " << print(s));
      REQUIRE(testing::same_value(type, want, ps.eval(p)));
      REQUIRE(testing::same_value(type, want, po.eval(p)));
      ++checked;
    }
  }
  CHECK(checked > 15000);
  CHECK(changed > 500);
  CHECK(zero_div < 200);
}

TEST_CASE("cse: commutative operands get one canonical order", "[compiler]") {
  IntExpr q = var_q(), kv = var_kv(), w = param_i32("w");
  CHECK(cse(q + kv).same_as(cse(kv + q)));
  CHECK(cse(min(q * w, kv)).same_as(cse(min(kv, w * q))));
  BoolExpr a = q < kv, b = kv == 3;
  CHECK(cse(a && b).same_as(cse(b && a)));
  CHECK(cse((q + 1) == kv).same_as(cse(kv == (1 + q))));
  // Constants go last, as simplify expects.
  Expr e = cse(IntExpr(5) * q);
  CHECK(e->operands[1].kind() == NodeKind::IntConst);
  CHECK(!cse(q - kv).same_as(cse(kv - q)));
}

TEST_CASE("print: canonical text with let bindings for shared nodes", "[compiler]") {
  IntExpr q = var_q(), kv = var_kv(), w = param_i32("window");
  IntExpr d = q - kv;
  BoolExpr m = d >= 0 && d <= w;
  std::string text = print(m);
  CHECK(text == "let t0 = (q_idx - kv_idx)\n((0 <= t0) && (t0 <= window:int))");
  std::vector<int32_t> ids = {0, 0, 1};
  IntBuffer doc = buffer_i32("doc", TensorView::contiguous(ids.data(), DType::I32, {3}));
  CHECK(print(doc[q] == doc[kv]) == "(doc:i32:1[q_idx] == doc:i32:1[kv_idx])");
  CHECK(print(var_score() * 2.0f) == "(score * 2.0f)");
  CHECK(print(where(q < kv, FloatExpr(-0.0f), FloatExpr(kNaN))) ==
        "where((q_idx < kv_idx), -0.0f, nan)");
}

TEST_CASE("structural_hash: equal structure hashes equal, different differs", "[compiler]") {
  auto mask = [](auto fn) { return mask_mod("m", fn); };
  MaskMod a = mask([](Idx, Idx, Idx q, Idx kv) { return q >= kv; });
  MaskMod b = mask([](Idx, Idx, Idx q, Idx kv) { return kv <= q; });
  CHECK(structural_hash(a) == structural_hash(b));
  CHECK(structural_hash(a) == structural_hash(seeds::causal())); // the name is not structure

  MaskMod c = mask([](Idx, Idx, Idx q, Idx kv) { return q >= kv && q - kv < 100; });
  MaskMod d = mask([](Idx, Idx, Idx q, Idx kv) { return q - kv < 100 && kv <= q; });
  CHECK(structural_hash(c) == structural_hash(d));

  MaskMod e = mask([](Idx, Idx, Idx q, Idx kv) { return (q - kv) + 0 < 5; });
  MaskMod f = mask([](Idx, Idx, Idx q, Idx kv) { return q - kv < 5; });
  CHECK(structural_hash(e) == structural_hash(f));

  std::vector<int32_t> d1 = {0, 1}, d2 = {5, 6, 7};
  IntBuffer b1 = buffer_i32("doc", TensorView::contiguous(d1.data(), DType::I32, {2}));
  IntBuffer b2 = buffer_i32("doc", TensorView::contiguous(d2.data(), DType::I32, {3}));
  MaskMod g = mask([&](Idx, Idx, Idx q, Idx kv) { return b1[q] == b1[kv]; });
  MaskMod h = mask([&](Idx, Idx, Idx q, Idx kv) { return b2[kv] == b2[q]; });
  CHECK(structural_hash(g) == structural_hash(h));

  // Different structure.
  CHECK(structural_hash(seeds::causal()) != structural_hash(seeds::sliding_window()));
  MaskMod w1 = mask([](Idx, Idx, Idx q, Idx kv) { return q - kv <= 128; });
  MaskMod w2 = mask([](Idx, Idx, Idx q, Idx kv) { return q - kv <= 256; });
  CHECK(structural_hash(w1) != structural_hash(w2));
  std::vector<float> f1 = {0.0f, 1.0f};
  FloatBuffer bf = buffer_f32("doc", TensorView::contiguous(f1.data(), DType::F32, {2}));
  MaskMod k = mask([&](Idx, Idx, Idx q, Idx kv) { return bf[q] == bf[kv]; });
  CHECK(structural_hash(g) != structural_hash(k));
  // A param's value is not structure; its name is.
  CHECK(structural_hash(seeds::sliding_window(64)) == structural_hash(seeds::sliding_window(512)));
  CHECK(structural_hash(seeds::alibi()) != structural_hash(seeds::soft_cap()));
  CHECK(structural_hash(seeds::alibi()).hex().size() == 32);
}

TEST_CASE("type_check: mods that read score, or divide by zero, are errors", "[compiler]") {
  MaskMod bad("reads_score", var_score() > 0.0f);
  CHECK(throws_with([&] { type_check(bad); }, "mask_mod 'reads_score' reads score"));
  MaskMod zero("zero_div", var_q() / (var_kv() * 0) < 3);
  CHECK(throws_with([&] { type_check(zero); }, "mask_mod 'zero_div'"));
  CHECK(throws_with([&] { type_check(zero); }, "division by a constant zero"));
  ScoreMod szero("score_zero", var_score() / (FloatExpr(1.0f) - 1.0f));
  CHECK(throws_with([&] { type_check(szero); }, "score_mod 'score_zero'"));

  std::vector<int32_t> doc = seeds::notebook_document_ids(100);
  CHECK_NOTHROW(type_check(seeds::causal()));
  CHECK_NOTHROW(type_check(seeds::document(doc)));
  CHECK_NOTHROW(type_check(seeds::natten()));
  CHECK_NOTHROW(type_check(seeds::soft_cap()));
  CHECK_NOTHROW(type_check(seeds::checkerboard()));
}

TEST_CASE("analyze_dependence: variables, buffers and params by name", "[compiler]") {
  std::vector<int32_t> doc = seeds::notebook_document_ids(100);
  Dependence dd = analyze_dependence(seeds::document(doc).body());
  CHECK((!dd.b && !dd.h && dd.q && dd.kv && !dd.score));
  REQUIRE(dd.buffers.size() == 1);
  CHECK(dd.buffers[0]->name == "document_id");
  Dependence sw = analyze_dependence(seeds::sliding_window().body());
  REQUIRE(sw.params.size() == 1);
  CHECK(sw.params[0]->name == "window");
  IntExpr p1 = param_i32("zeta"), p2 = param_i32("alpha"), p3 = param_i32("zeta");
  Dependence multi = analyze_dependence(var_score() * FloatExpr(p1 + p2 + p3 + var_h()));
  REQUIRE(multi.params.size() == 2);
  CHECK(multi.params[0]->name == "alpha");
  CHECK(multi.params[1]->name == "zeta");
  CHECK((multi.score && multi.h && !multi.q));
}

TEST_CASE("RandomMods: covers every node kind and buffer dtype, and binds what it reads",
          "[compiler][testing]") {
  std::mt19937 rng(11);
  std::set<NodeKind> kinds;
  std::set<std::pair<DType, int>> loads;
  for (int iter = 0; iter < 300; ++iter) {
    testing::RandomMod mod =
        iter % 2 ? testing::random_mask(rng, 7) : testing::random_score(rng, 7);
    for (const Expr& e : topo_order(mod.body)) {
      kinds.insert(e.kind());
      if (e.kind() == NodeKind::Load)
        loads.emplace(e->buffer->dtype, e->buffer->rank);
    }
    if (iter % 2)
      CHECK(!analyze_dependence(mod.body).score);
    CHECK_NOTHROW(Program(mod.body, mod.bindings)); // every param and buffer is bound
  }
  CHECK(kinds.size() == static_cast<size_t>(num_node_kinds()));
  CHECK(loads.size() == 5 * kMaxRank);
}

TEST_CASE("print: structurally equal expressions built differently print the same", "[compiler]") {
  IntExpr q = var_q(), kv = var_kv();
  IntExpr d1 = q - kv, d2 = kv - q;
  BoolExpr a = (d1 * d1 < 100) && (d2 + d2 > 3);
  BoolExpr b = (d2 + d2 > 3) && (d1 * d1 < 100);
  CHECK(print(optimize(a)) == print(optimize(b)));
  CHECK(print(optimize(a)).find("let t0 = ") == 0);
}
