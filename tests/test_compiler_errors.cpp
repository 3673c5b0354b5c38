// The compiler's errors (compiler/): a kernel's signature (buffers and params), the
// call-time bindings resolved against it, and the zero divisors simplification
// reveals, whichever entry point (a CPU builder, compile_to_ptx) runs them. Each is an
// Error whose message names the bad value and what was expected (README.md, "Errors").
#include <catch2/catch.hpp>

#include <flexjit/flexjit.h>

#include "flexjit/compiler/Interpreter.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;
using Catch::Contains;

namespace {

const int32_t kData[4] = {1, 2, 3, 4};

TensorView i32_view(std::initializer_list<int64_t> sizes) {
  return TensorView::contiguous(kData, DType::I32, sizes);
}

// Reads every buffer it is given, by q_idx.
BoolExpr reads(const std::vector<IntBuffer>& buffers) {
  BoolExpr body = true;
  for (const IntBuffer& b : buffers)
    body = body && b[var_q()] > 0;
  return body;
}

} // namespace

TEST_CASE("errors: a kernel's buffers and params", "[errors][compiler]") {
  const IntBuffer a = buffer_i32("dup", i32_view({4}));
  const IntBuffer b = buffer_i32("dup", i32_view({4}));
  REQUIRE_THROWS_WITH(Program(reads({a, b})),
                      Contains("two different buffers are named 'dup' in one kernel"));
  const MaskMod mixed("mixed", param_i32("p") > 0 && param_f32("p") > 0.0f);
  REQUIRE_THROWS_WITH(create_block_mask(mixed, 1, 1, 128, 128),
                      Contains("param 'p' is used both as") &&
                          Contains("expected one type per name"));

  std::vector<IntBuffer> nine;
  for (int i = 0; i < 9; ++i)
    nine.push_back(buffer_i32("b" + std::to_string(i), i32_view({4})));
  REQUIRE_THROWS_WITH(Program(reads(nine)),
                      Contains("a kernel's mods read 9 buffers; at most 8 are supported"));
  BoolExpr ints = true, floats = true;
  for (int i = 0; i < 17; ++i) {
    ints = ints && param_i32("i" + std::to_string(i), 0) > 0;
    floats = floats && param_f32("f" + std::to_string(i), 0.0f) > 0.0f;
  }
  REQUIRE_THROWS_WITH(Program(ints),
                      Contains("a kernel's mods read 17 int params; at most 16 are supported"));
  REQUIRE_THROWS_WITH(Program(floats),
                      Contains("a kernel's mods read 17 float params; at most 16 are supported"));
  const IntBuffer unbound("later", DType::I32, 1);
  REQUIRE_THROWS_WITH(Program(unbound[var_q()] > 0),
                      Contains("buffer 'later' has no data; capture data when declaring it or "
                               "bind it at call time"));
}

TEST_CASE("a param never bound", "[errors][compiler]") {
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

// The declaration side (buffer_i32 given f32 data) is the DSL's: test_dsl_errors.cpp,
// "a buffer whose dtype does not fit its use".
TEST_CASE("a call-time binding whose dtype does not fit its buffer", "[errors][compiler]") {
  const std::vector<float> f32 = {0.0f, 1.0f, 2.0f, 3.0f};
  const TensorView f32_view = TensorView::contiguous(f32.data(), DType::F32, {4});
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

TEST_CASE("errors: call-time bindings that do not fit", "[errors][compiler]") {
  const IntBuffer ids = buffer_i32("ids", i32_view({4}));
  const IntExpr w = param_i32("w");
  const MaskMod m("m", ids[var_q()] > w);
  Bindings bad_rank;
  bad_rank.params["w"] = 1;
  bad_rank.buffers["ids"] = i32_view({2, 2});
  REQUIRE_THROWS_WITH(create_mask(m, 1, 1, 4, 4, bad_rank),
                      Contains("buffer 'ids' has rank 1 but is bound to a rank-2 tensor"));
  Bindings null_data;
  null_data.params["w"] = 1;
  null_data.buffers["ids"] = TensorView::contiguous(nullptr, DType::I32, {4});
  REQUIRE_THROWS_WITH(create_mask(m, 1, 1, 4, 4, null_data),
                      Contains("buffer 'ids' is bound to a null data pointer"));
  for (double bad : {1.5, 3e9, -3e9}) {
    Bindings params;
    params.params["w"] = bad;
    INFO("w = " << bad);
    REQUIRE_THROWS_WITH(create_block_mask(m, 1, 1, 128, 128, {128, 128, params}),
                        Contains("int param 'w' is bound to") &&
                            Contains("expected an integer in int32 range"));
  }
}

// A literal zero divisor is the DSL's: test_dsl_errors.cpp, "division by a constant
// zero".
TEST_CASE("division by a constant zero once simplified", "[errors][compiler]") {
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
