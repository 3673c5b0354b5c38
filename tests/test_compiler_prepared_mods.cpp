// PreparedMods: one preparation per mod pair, memoized in one place.
#include <catch2/catch.hpp>

#include "flexjit/compiler/PreparedMods.h"
#include "flexjit/support/Hash.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;
using Catch::Contains;

TEST_CASE("prepared mods: one entry per pair, shared by structurally equal mods",
          "[compiler][prepared]") {
  const auto a = prepare_mods(seeds::causal(), seeds::soft_cap(30.0f));
  const auto b = prepare_mods(seeds::causal(), seeds::soft_cap(30.0f));
  CHECK(a.get() == b.get()); // built twice, hash-consed to the same nodes
  CHECK(prepare_mods(seeds::causal()).get() != a.get());
  // The name is part of the entry (messages name the mods), the structure of the key.
  const MaskMod renamed("renamed", seeds::causal().body());
  const auto c = prepare_mods(renamed, seeds::soft_cap(30.0f));
  CHECK(c.get() != a.get());
  CHECK(c->mask.name() == "renamed");
  CHECK(c->key == a->key);
  CHECK(c->text == a->text);
  // What it holds: optimized bodies, the mask's dependence, node counts, the canonical text.
  CHECK(a->mask_dependence.q);
  CHECK(a->mask_dependence.kv);
  CHECK(!a->mask_dependence.b);
  CHECK(a->nodes > 0);
  CHECK(a->nodes <= a->mask_nodes + a->score_nodes);
  CHECK_THAT(a->text, Contains("mask_mod\n") && Contains("score_mod\n") && Contains("signature "));
  CHECK(a->key == hash_text(a->text));
}

TEST_CASE("prepared mods: buffer dimensions indexed by a variable", "[compiler][prepared]") {
  const std::vector<int32_t> doc(64, 0);
  const auto p = prepare_mods(seeds::document(doc));
  REQUIRE(p->signature.buffers.size() == 1);
  bool q = false, kv = false;
  for (const PreparedMods::IndexedDim& d : p->indexed_dims) {
    CHECK(d.slot == 0);
    CHECK(d.dim == 0);
    q = q || d.var == Var::Q;
    kv = kv || d.var == Var::KV;
  }
  CHECK(q);
  CHECK(kv);
}

TEST_CASE("prepared mods: a mod that does not type check is not memoized", "[compiler][prepared]") {
  const MaskMod bad("bad", var_score() > 0.0f);
  for (int i = 0; i < 2; ++i)
    REQUIRE_THROWS_WITH(prepare_mods(bad), Contains("mask_mod 'bad' reads score"));
}
