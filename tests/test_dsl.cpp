#include <catch2/catch.hpp>

#include <flexjit/flexjit.h>

using namespace flexjit;

TEST_CASE("dsl: hash-consing shares structurally equal nodes", "[dsl]") {
  IntExpr q = var_q(), kv = var_kv();
  Expr a = q - kv + 1;
  Expr b = q - kv + 1;
  REQUIRE(a.same_as(b));
  REQUIRE(!(q - kv + 2).same_as(a));
}

TEST_CASE("dsl: int promotes to float in one place", "[dsl]") {
  IntExpr q = var_q();
  FloatExpr f = q * 0.5;
  REQUIRE(f.type() == Type::Float);
  REQUIRE(f->operands[0].kind() == NodeKind::Cast);
}

template <class F>
concept MaskModBuildable = requires(F f) {
  mask_mod("m", f);
};
template <class F>
concept ScoreModBuildable = requires(F f) {
  score_mod("s", f);
};

TEST_CASE("dsl: a mask_mod returning a float and a score_mod returning a bool do not compile",
          "[dsl]") {
  auto good_mask = [](Idx, Idx, Idx q, Idx kv) { return q >= kv; };
  auto float_mask = [](Idx, Idx, Idx q, Idx kv) { return FloatExpr(q - kv); };
  auto good_score = [](Score s, Idx, Idx, Idx, Idx) { return s * 2.0f; };
  auto bool_score = [](Score s, Idx, Idx, Idx, Idx) { return s > 0.0f; };
  STATIC_REQUIRE(MaskModBuildable<decltype(good_mask)>);
  STATIC_REQUIRE(!MaskModBuildable<decltype(float_mask)>);
  STATIC_REQUIRE(ScoreModBuildable<decltype(good_score)>);
  STATIC_REQUIRE(!ScoreModBuildable<decltype(bool_score)>);
}

#include "flexjit/testing/SeedCatalog.h"

TEST_CASE("dsl: every seed mod builds", "[dsl]") {
  const testing::SeedCatalog seeds;
  for (const MaskMod& m : seeds.masks)
    REQUIRE(m.body().type() == Type::Bool);
  for (const ScoreMod& s : seeds.scores)
    REQUIRE(s.body().type() == Type::Float);
}
