// offset_mod (context parallelism's index offsets) without a GPU: a shard's dense mask and block
// mask are the whole sequence's at global positions, bound per call; every shard shares one
// prepared pair (one kernel). On a GPU: tests/test_attention_gpu_merge.cpp.
#include <catch2/catch.hpp>

#include <flexjit/flexjit.h>

#include "flexjit/compiler/PreparedMods.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

namespace {

// The dense mask of `whole` at rows [q0, q0 + nq) x [kv0, kv0 + nkv), evaluated point by point.
std::vector<uint8_t> window_of(const MaskMod& whole, int q0, int nq, int kv0, int nkv) {
  const std::vector<uint8_t> all = create_mask(whole, 1, 1, q0 + nq, kv0 + nkv);
  std::vector<uint8_t> out;
  for (int i = 0; i < nq; ++i)
    for (int j = 0; j < nkv; ++j)
      out.push_back(all[static_cast<size_t>(q0 + i) * (kv0 + nkv) + kv0 + j]);
  return out;
}

} // namespace

TEST_CASE("offset_mod: a shard's masks are the whole sequence's at global positions",
          "[attention][offsets]") {
  for (const MaskMod& whole : {seeds::causal(), seeds::sliding_window(100), seeds::prefix_lm(70)}) {
    const MaskMod shard = offset_mod(whole);
    for (auto [q0, kv0] : {std::pair{0, 0}, {256, 0}, {0, 256}, {300, 170}, {129, 1}}) {
      INFO(whole.name() << " q_offset " << q0 << " kv_offset " << kv0);
      const int nq = 200, nkv = 300;
      Bindings b;
      bind_offsets(b, q0, kv0);
      const std::vector<uint8_t> want = window_of(whole, q0, nq, kv0, nkv);
      CHECK(create_mask(shard, 1, 1, nq, nkv, b) == want);
      // The block mask (interval analysis, then the interpreter) classifies the same tiles.
      BlockMaskOptions o;
      o.q_block = o.kv_block = 64;
      o.bindings = b;
      const BlockMask bm = create_block_mask(shard, 1, 1, nq, nkv, o);
      int wrong = 0;
      for (int qb = 0; qb < bm.num_q_blocks; ++qb)
        for (int kb = 0; kb < bm.num_kv_blocks; ++kb) {
          bool any = false, all = true;
          for (int i = qb * 64; i < std::min(nq, qb * 64 + 64); ++i)
            for (int j = kb * 64; j < std::min(nkv, kb * 64 + 64); ++j) {
              any = any || want[static_cast<size_t>(i) * nkv + j];
              all = all && want[static_cast<size_t>(i) * nkv + j];
            }
          wrong += bm.tile_state(0, 0, qb, kb) != (all ? 2 : any ? 1 : 0);
        }
      CHECK(wrong == 0);
    }
  }
}

TEST_CASE("offset_mod: one prepared pair for every shard; noop stays noop",
          "[attention][offsets]") {
  const auto a = prepare_mods(offset_mod(seeds::causal()));
  const auto b = prepare_mods(offset_mod(seeds::causal()));
  CHECK(a.get() == b.get()); // the same kernel for every offset
  CHECK(a.get() != prepare_mods(seeds::causal()).get());
  CHECK(a->signature.int_params.size() == 2);
  CHECK(offset_mod(MaskMod()).is_noop());
  CHECK(offset_mod(ScoreMod()).is_noop());
  // A score_mod reading the positions: both offsets, none when it reads neither.
  const ScoreMod bias = score_mod(
      "rel_bias", [](Score s, Idx, Idx, Idx q, Idx kv) { return s + FloatExpr(q - kv) * 0.01f; });
  CHECK(prepare_mods(MaskMod(), offset_mod(bias))->signature.int_params.size() == 2);
  const ScoreMod by_head =
      score_mod("by_head", [](Score s, Idx, Idx h, Idx, Idx) { return s * FloatExpr(h); });
  CHECK(prepare_mods(MaskMod(), offset_mod(by_head))->signature.int_params.empty());
}
