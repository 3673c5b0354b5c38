// Resource limits: mods too large for a kernel fail with an Error naming their
// size before any LLVM work; block masks and dense masks report their memory
// before allocating it, and a shape the machine cannot hold fails with an Error
// naming the bytes needed and available. (The spill report of a large mod under
// the limit is in test_ptx.cpp, next to ptxas.)
#include <catch2/catch.hpp>

#include <chrono>
#include <climits>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/compiler/Visitor.h"
#include "flexjit/testing/SeedMods.h"
#include "flexjit/compiler/Passes.h"

using namespace flexjit;
using Catch::Contains;

namespace {

// sum_i 3^(n-i) * t[(q * (i + 3) + kv * (2 i + 1)) % 1024]: about 8.5 nodes per
// term after optimization, none of which folds.
IntExpr chain_of_loads(const IntBuffer& t, int terms) {
  const IntExpr q = var_q(), kv = var_kv();
  IntExpr acc = 0;
  for (int i = 0; i < terms; ++i)
    acc = acc * 3 + t[(q * (i + 3) + kv * (2 * i + 1)) % 1024];
  return acc;
}

size_t nodes_of(const Expr& body) {
  return topo_order(optimize(body)).size();
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

TEST_CASE("limits: a mod over the node limit fails before any LLVM work", "[limits][errors]") {
  std::vector<int32_t> data(1024, 1);
  const IntBuffer t = buffer_i32("t", TensorView::contiguous(data.data(), DType::I32, {1024}));
  const MaskMod big("big", chain_of_loads(t, 600) > 5);
  const size_t nodes = nodes_of(big.body());
  REQUIRE(nodes > static_cast<size_t>(kMaxModNodes));
  for (TemplateKind kind : {TemplateKind::BlockClassify, TemplateKind::CreateMask,
                            TemplateKind::EvalPoints, TemplateKind::AttentionForward}) {
    INFO(to_string(kind));
    const auto start = std::chrono::steady_clock::now();
    const KernelSpec spec{kind, Arch::SM90a, big, ScoreMod()};
    REQUIRE_THROWS_WITH(compile_to_ptx(spec),
                        Contains("mask_mod 'big'") && Contains(std::to_string(nodes + 1)) &&
                            Contains("nodes after optimization") &&
                            Contains(std::to_string(max_mod_nodes(spec))) &&
                            Contains(std::string(to_string(kind))));
    CHECK(seconds_since(start) < 5.0); // no LLVM: optimizing and counting only
  }
  // The CPU paths have no such limit: the interpreter runs it.
  const std::vector<uint8_t> dense = create_mask(big, 1, 1, 4, 4);
  CHECK(dense.size() == 16);
}

TEST_CASE("limits: the attention kernel takes smaller mods than the others", "[limits][errors]") {
  std::vector<int32_t> data(1024, 1);
  const IntBuffer t = buffer_i32("t", TensorView::contiguous(data.data(), DType::I32, {1024}));
  const IntExpr sum = chain_of_loads(t, 40); // ~340 nodes
  const ScoreMod score("bias", var_score() + FloatExpr(sum));
  const size_t nodes = nodes_of(score.body()) + 1; // + the noop mask's node
  REQUIRE(nodes > static_cast<size_t>(kMaxAttentionModNodes));
  REQUIRE(nodes < static_cast<size_t>(kMaxModNodes));
  KernelSpec spec{TemplateKind::AttentionForward, Arch::SM90a, MaskMod(), score};
  REQUIRE_THROWS_WITH(compile_to_ptx(spec), Contains("score_mod 'bias'") &&
                                                Contains(std::to_string(nodes)) &&
                                                Contains("attention_fwd kernel takes at most 256"));
  // The same mods fit the other templates.
  spec.kind = TemplateKind::EvalPoints;
  REQUIRE(!compile_to_ptx(spec).ptx.empty());
}

TEST_CASE("limits: a deeply nested mod of thousands of nodes fails cleanly", "[limits][errors]") {
  // 2,000 levels of (e * 3 + kv) % 1000003: nothing folds, every pass is iterative.
  IntExpr e = var_q();
  for (int i = 0; i < 2000; ++i)
    e = (e * 3 + var_kv()) % 1000003;
  const MaskMod deep("deep", e > 0);
  REQUIRE_THROWS_WITH(compile_to_ptx({TemplateKind::CreateMask, Arch::SM80, deep, ScoreMod()}),
                      Contains("mask_mod 'deep'") && Contains("at most 4096"));
  CHECK(create_mask(deep, 1, 1, 8, 8).size() == 64);
}

TEST_CASE("limits: block_mask_bytes at S = 1M with 128 x 128 blocks", "[limits][blockmask]") {
  const int S = 1 << 20; // 8192 x 8192 tiles
  const BlockMaskBytes one = block_mask_bytes(1, 1, S, S);
  const int64_t tiles = int64_t{8192} * 8192;
  CHECK(one.arrays == 4 * (2 * (8192 + 8192) + 4 * tiles)); // 1.0 GiB + 128 KiB
  CHECK(one.arrays == 1073872896);
  CHECK(one.states == tiles);                           // 64 MiB
  CHECK(one.device_copy == 4 * (2 * 8192 + 2 * tiles)); // 512 MiB + 64 KiB
  CHECK(one.build_host() == one.arrays + one.states);
  // Linear in B * H; smaller blocks, more tiles.
  const BlockMaskBytes heads = block_mask_bytes(2, 16, S, S);
  CHECK(heads.arrays == 32 * one.arrays);
  CHECK(heads.states == 32 * one.states);
  BlockMaskOptions small;
  small.q_block = small.kv_block = 64;
  CHECK(block_mask_bytes(1, 1, S, S, small).states == 4 * tiles);
  // A ragged shape counts its partial blocks.
  CHECK(block_mask_bytes(1, 1, 129, 1).states == 2);
  // Shapes no machine holds saturate instead of overflowing.
  BlockMaskOptions unit;
  unit.q_block = unit.kv_block = 1;
  const BlockMaskBytes absurd = block_mask_bytes(INT_MAX, INT_MAX, INT_MAX, INT_MAX, unit);
  CHECK(absurd.arrays == INT64_MAX);
  CHECK(absurd.states == INT64_MAX);
  CHECK(absurd.build_host() == INT64_MAX);
  // The shape checks are create_block_mask's.
  REQUIRE_THROWS_WITH(block_mask_bytes(1, 1, 0, 8), Contains("q_len must be positive"));
  REQUIRE_THROWS_WITH(block_mask_bytes(1, 1, 8, 8, {96, 128, {}}), Contains("power of two"));
}

TEST_CASE("limits: a block mask larger than memory fails before allocating",
          "[limits][blockmask][errors]") {
  // 1024 x 1024 heads at S = 1M: about 1 PiB of index arrays.
  const int S = 1 << 20;
  const BlockMaskBytes bytes = block_mask_bytes(1024, 1024, S, S);
  const auto start = std::chrono::steady_clock::now();
  REQUIRE_THROWS_WITH(
      create_block_mask(seeds::causal(), 1024, 1024, S, S),
      Contains("create_block_mask: a [1024, 1024, 1048576, 1048576] block mask of 128 x 128 "
               "blocks needs " +
               std::to_string(bytes.build_host()) + " bytes") &&
          Contains("of host memory (index arrays " + std::to_string(bytes.arrays) +
                   ", tile states " + std::to_string(bytes.states) + ")") &&
          Contains("are available"));
  CHECK(seconds_since(start) < 5.0); // nothing was classified or allocated
}
