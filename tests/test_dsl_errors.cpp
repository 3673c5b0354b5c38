// Errors a user can cause: each is an Error whose message names the bad value
// and what was expected.
#include <catch2/catch.hpp>

#include "flexjit/codegen/Codegen.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;
using Catch::Contains;

TEST_CASE("a buffer whose dtype does not fit its use", "[errors]") {
  const std::vector<float> f32 = {0.0f, 1.0f, 2.0f, 3.0f};
  const TensorView f32_view = TensorView::contiguous(f32.data(), DType::F32, {4});
  REQUIRE_THROWS_WITH(buffer_i32("positions", f32_view),
                      Contains("positions") && Contains("f32") && Contains("i32"));

  // A call-time binding overrides the captured data; its dtype must still match.
  const std::vector<int32_t> ids = seeds::notebook_document_ids(1024);
  const MaskMod document = seeds::document(ids);
  BlockMaskOptions options;
  options.bindings.buffers["document_id"] = f32_view;
  REQUIRE_THROWS_WITH(create_block_mask(document, 1, 1, 1024, 1024, options),
                      Contains("document_id") && Contains("f32") && Contains("i32"));
  REQUIRE_THROWS_WITH(create_mask(document, 1, 1, 64, 64, options.bindings),
                      Contains("document_id") && Contains("f32"));
}

TEST_CASE("a param never bound", "[errors]") {
  const IntExpr window = param_i32("window");
  const MaskMod swa =
      mask_mod("swa", [&](Idx, Idx, Idx q, Idx kv) { return q >= kv && q - kv <= window; });
  REQUIRE_THROWS_WITH(create_block_mask(swa, 1, 1, 1024, 1024),
                      Contains("'window'") && Contains("never bound"));
  // Bound at call time, it works.
  BlockMaskOptions options;
  options.bindings.params["window"] = 256;
  REQUIRE(create_block_mask(swa, 1, 1, 1024, 1024, options).sparsity() > 0.0);
}

TEST_CASE("block sizes that are not powers of two", "[errors]") {
  for (int bad : {100, 0, -128, 96, 3}) {
    INFO("block size " << bad);
    REQUIRE_THROWS_WITH(create_block_mask(seeds::causal(), 1, 1, 1024, 1024, {bad, 128, {}}),
                        Contains("q_block") && Contains(std::to_string(bad)) &&
                            Contains("power of two"));
    REQUIRE_THROWS_WITH(create_block_mask(seeds::causal(), 1, 1, 1024, 1024, {128, bad, {}}),
                        Contains("kv_block") && Contains(std::to_string(bad)) &&
                            Contains("power of two"));
  }
  REQUIRE_NOTHROW(create_block_mask(seeds::causal(), 1, 1, 1024, 1024, {1, 1024, {}}));
}

TEST_CASE("zero or negative lengths and counts", "[errors]") {
  const MaskMod causal = seeds::causal();
  for (int bad : {0, -5}) {
    const std::string value = "got " + std::to_string(bad);
    REQUIRE_THROWS_WITH(create_block_mask(causal, 1, 1, bad, 128),
                        Contains("q_len") && Contains(value));
    REQUIRE_THROWS_WITH(create_block_mask(causal, 1, 1, 128, bad),
                        Contains("kv_len") && Contains(value));
    REQUIRE_THROWS_WITH(create_block_mask(causal, bad, 1, 128, 128),
                        Contains("B ") && Contains(value));
    REQUIRE_THROWS_WITH(create_block_mask(causal, 1, bad, 128, 128),
                        Contains("H ") && Contains(value));
    REQUIRE_THROWS_WITH(create_mask(causal, 1, 1, bad, 128), Contains("q_len") && Contains(value));
    REQUIRE_THROWS_WITH(create_mask(causal, 1, 1, 128, bad), Contains("kv_len") && Contains(value));
  }
}

TEST_CASE("a buffer indexed with the wrong number of indices", "[errors]") {
  const std::vector<int32_t> data = {1, 2, 3};
  const Buffer buffer("table", TensorView::contiguous(data.data(), DType::I32, {3}));
  REQUIRE_THROWS_WITH(buffer.load({var_q(), var_kv()}),
                      Contains("table") && Contains("rank 1") && Contains("2 indices"));
  const IntBuffer typed = buffer_i32("typed", TensorView::contiguous(data.data(), DType::I32, {3}));
  REQUIRE_THROWS_WITH(typed(var_q(), var_kv()), Contains("typed") && Contains("2 indices"));
}

TEST_CASE("division by a constant zero", "[errors]") {
  // Literal zero divisors are rejected when the expression is built.
  REQUIRE_THROWS_WITH(var_q() / 0, Contains("division by a constant zero") && Contains("0"));
  REQUIRE_THROWS_WITH(var_q() % 0, Contains("division by a constant zero"));

  // kv - kv is zero only once simplified: create_block_mask and compile_to_ptx
  // find it.
  const MaskMod hidden =
      mask_mod("hidden_zero", [](Idx, Idx, Idx q, Idx kv) { return q % (kv - kv) == 0; });
  REQUIRE_THROWS_WITH(create_block_mask(hidden, 1, 1, 256, 256),
                      Contains("division by a constant zero"));
  REQUIRE_THROWS_WITH(compile_to_ptx({TemplateKind::BlockClassify, Arch::SM90a, hidden, {}}),
                      Contains("division by a constant zero"));
  const MaskMod hidden_div =
      mask_mod("hidden_div", [](Idx, Idx, Idx q, Idx kv) { return q / (kv * 0) >= 1; });
  REQUIRE_THROWS_WITH(create_mask(hidden_div, 1, 1, 16, 16),
                      Contains("division by a constant zero"));
}
