// The DSL's errors (dsl/): names, buffer declarations and bindings, indexing,
// expression types, tensor views and literal zero divisors. Each is an Error whose
// message names the bad value and what was expected (README.md, "Errors").
#include <catch2/catch.hpp>

#include <flexjit/flexjit.h>

using namespace flexjit;
using Catch::Contains;

namespace {

const int32_t kData[4] = {1, 2, 3, 4};

TensorView i32_view(std::initializer_list<int64_t> sizes) {
  return TensorView::contiguous(kData, DType::I32, sizes);
}

} // namespace

TEST_CASE("errors: names of mods, buffers and params", "[errors][dsl]") {
  REQUIRE_THROWS_WITH(MaskMod("", BoolExpr(true)), Contains("a mask_mod needs a non-empty name"));
  REQUIRE_THROWS_WITH(ScoreMod("", var_score()), Contains("a score_mod needs a non-empty name"));
  REQUIRE_THROWS_WITH(param_i32(""), Contains("a param needs a non-empty name"));
  REQUIRE_THROWS_WITH(Buffer("", DType::I32, 1), Contains("a buffer needs a non-empty name"));
  REQUIRE_THROWS_WITH(MaskMod("sliding window", BoolExpr(true)),
                      Contains("mask_mod name 'sliding window' has character ' '"));
  REQUIRE_THROWS_WITH(param_f32("w-1"), Contains("param name 'w-1' has character '-'"));
  REQUIRE_THROWS_WITH(buffer_i32("doc.ids", i32_view({4})),
                      Contains("buffer name 'doc.ids' has character '.'"));
}

TEST_CASE("errors: buffers declared or bound to data that does not fit", "[errors][dsl]") {
  REQUIRE_THROWS_WITH(Buffer("table", DType::F32, 5),
                      Contains("buffer 'table' has rank 5; expected 1 to 4"));
  REQUIRE_THROWS_WITH(Buffer("table", DType::F32, 0), Contains("has rank 0; expected 1 to 4"));
  Buffer ids("ids", DType::I32, 1);
  const float f[4] = {};
  REQUIRE_THROWS_WITH(ids.bind(TensorView::contiguous(f, DType::F32, {4})),
                      Contains("buffer 'ids' is declared i32 but was bound to f32 data"));
  REQUIRE_THROWS_WITH(ids.bind(i32_view({2, 2})),
                      Contains("buffer 'ids' has rank 1 but was bound to a rank-2 tensor"));
  REQUIRE_THROWS_WITH(ids.bind(TensorView::contiguous(nullptr, DType::I32, {4})),
                      Contains("buffer 'ids' was bound to a null data pointer"));
  REQUIRE_THROWS_WITH(ids.bind(i32_view({int64_t{1} << 31})),
                      Contains("buffer 'ids' has size 2147483648 in dimension 0; expected 0 to "
                               "2147483647"));
  REQUIRE_NOTHROW(ids.bind(TensorView::contiguous(nullptr, DType::I32, {0}))); // empty: no data
}

// The call-time side (a binding of another dtype that overrides the captured data) is
// the compiler's: test_compiler_errors.cpp, "a call-time binding whose dtype does not
// fit its buffer".
TEST_CASE("a buffer whose dtype does not fit its use", "[errors][dsl]") {
  const std::vector<float> f32 = {0.0f, 1.0f, 2.0f, 3.0f};
  const TensorView f32_view = TensorView::contiguous(f32.data(), DType::F32, {4});
  REQUIRE_THROWS_WITH(buffer_i32("positions", f32_view),
                      Contains("positions") && Contains("f32") && Contains("i32"));
}

TEST_CASE("a buffer indexed with the wrong number of indices", "[errors][dsl]") {
  const std::vector<int32_t> data = {1, 2, 3};
  const Buffer buffer("table", TensorView::contiguous(data.data(), DType::I32, {3}));
  REQUIRE_THROWS_WITH(buffer.load({var_q(), var_kv()}),
                      Contains("table") && Contains("rank 1") && Contains("2 indices"));
  const IntBuffer typed = buffer_i32("typed", TensorView::contiguous(data.data(), DType::I32, {3}));
  REQUIRE_THROWS_WITH(typed(var_q(), var_kv()), Contains("typed") && Contains("2 indices"));
}

TEST_CASE("errors: expressions of the wrong type, or empty", "[errors][dsl]") {
  REQUIRE_THROWS_WITH(IntExpr(Expr()),
                      Contains("an empty expression was used where an int (IntExpr) was "
                               "expected"));
  REQUIRE_THROWS_WITH(IntExpr(var_score()),
                      Contains("a float expression was used where an int (IntExpr) was expected"));
  REQUIRE_THROWS_WITH(BoolExpr(Expr(var_q())),
                      Contains("a int expression was used where a bool (BoolExpr) was expected"));
  REQUIRE_THROWS_WITH(match_types(make_bool(true), var_q()),
                      Contains("cannot combine a bool with a int; cast one of them explicitly"));
  REQUIRE_THROWS_WITH(to_int(Expr()), Contains("cannot cast an empty expression"));
}

// A zero divisor that only simplification reveals is the compiler's:
// test_compiler_errors.cpp, "division by a constant zero once simplified".
TEST_CASE("division by a constant zero", "[errors][dsl]") {
  // Literal zero divisors are rejected when the expression is built.
  REQUIRE_THROWS_WITH(var_q() / 0, Contains("division by a constant zero") && Contains("0"));
  REQUIRE_THROWS_WITH(var_q() % 0, Contains("division by a constant zero"));
}

TEST_CASE("errors: tensor views of unsupported rank or negative size", "[errors][dsl]") {
  REQUIRE_THROWS_WITH(i32_view({1, 1, 1, 1, 1}),
                      Contains("tensor rank 5 is not supported; expected 1 to 4"));
  REQUIRE_THROWS_WITH(i32_view({}), Contains("tensor rank 0 is not supported"));
  REQUIRE_THROWS_WITH(i32_view({2, -3}),
                      Contains("tensor size -3 in dimension 1 is negative; expected >= 0"));
}
