// The codegen's resource limits: mods too large for a kernel fail with an Error naming
// their size before any LLVM work. (The spill report of a large mod under the limit is
// in test_codegen_ptx.cpp, next to ptxas, and on a GPU in test_runtime_gpu_limits.cpp;
// the block masks' memory limits are in test_blockmask_limits.cpp.)
#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Visitor.h"

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

TEST_CASE("limits: a mod over the node limit fails before any LLVM work",
          "[limits][errors][codegen]") {
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
    REQUIRE_THROWS_WITH(compile_to_ptx(spec), Contains("mask_mod 'big'") &&
                                                  Contains(std::to_string(nodes + 1)) &&
                                                  Contains("nodes after optimization") &&
                                                  Contains(std::to_string(max_mod_nodes(spec))) &&
                                                  Contains(std::string(to_string(kind))));
    CHECK(seconds_since(start) < 5.0); // no LLVM: optimizing and counting only
  }
  // The CPU paths have no such limit: the interpreter runs it.
  const std::vector<uint8_t> dense = create_mask(big, 1, 1, 4, 4);
  CHECK(dense.size() == 16);
}

TEST_CASE("limits: the attention kernel takes smaller mods than the others",
          "[limits][errors][codegen]") {
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

TEST_CASE("limits: a deeply nested mod of thousands of nodes fails cleanly",
          "[limits][errors][codegen]") {
  // 2,000 levels of (e * 3 + kv) % 1000003: nothing folds, every pass is iterative.
  IntExpr e = var_q();
  for (int i = 0; i < 2000; ++i)
    e = (e * 3 + var_kv()) % 1000003;
  const MaskMod deep("deep", e > 0);
  REQUIRE_THROWS_WITH(compile_to_ptx({TemplateKind::CreateMask, Arch::SM80, deep, ScoreMod()}),
                      Contains("mask_mod 'deep'") && Contains("at most 4096"));
  CHECK(create_mask(deep, 1, 1, 8, 8).size() == 64);
}
