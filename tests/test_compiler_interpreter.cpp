#include <catch2/catch.hpp>

#include <bit>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <limits>

#include <flexjit/flexjit.h>

#include "flexjit/compiler/Visitor.h"
#include "flexjit/testing/RandomMods.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// a op b with a and b as params, so nothing folds and the DSL's literal-zero
// check does not apply.
int32_t int_op(IntExpr (*op)(const IntExpr&, const IntExpr&), int32_t a, int32_t b) {
  IntExpr x = param_i32("x"), y = param_i32("y");
  Bindings bind;
  bind.params = {{"x", a}, {"y", b}};
  return evaluate(op(x, y), Point{}, bind).i;
}

float float_op(FloatExpr (*op)(const FloatExpr&, const FloatExpr&), float a, float b) {
  FloatExpr x = param_f32("x"), y = param_f32("y");
  Bindings bind;
  bind.params = {{"x", a}, {"y", b}};
  return evaluate(op(x, y), Point{}, bind).f;
}

IntExpr add_op(const IntExpr& a, const IntExpr& b) {
  return a + b;
}
IntExpr mul_op(const IntExpr& a, const IntExpr& b) {
  return a * b;
}
IntExpr sub_op(const IntExpr& a, const IntExpr& b) {
  return a - b;
}
FloatExpr fmin_op(const FloatExpr& a, const FloatExpr& b) {
  return min(a, b);
}
FloatExpr fmax_op(const FloatExpr& a, const FloatExpr& b) {
  return max(a, b);
}

Value eval_const(const Expr& e) {
  return evaluate(e, Point{});
}

} // namespace

TEST_CASE("interpreter: floor_div and mod follow Python on negative operands",
          "[compiler][interpreter]") {
  struct Case {
    int32_t a, b, div, mod;
  };
  const Case cases[] = {
      {-7, 2, -4, 1},
      {7, -2, -4, -1},
      {-7, -2, 3, -1},
      {7, 2, 3, 1},
      {6, 3, 2, 0},
      {-6, 3, -2, 0},
      {0, -5, 0, 0},
      {7, 0, 0, 0},
      {-7, 0, 0, 0},
      {INT_MIN, -1, INT_MIN, 0},
      {INT_MIN, 1, INT_MIN, 0},
      {-1, INT_MIN, 0, -1},
      {INT_MAX, INT_MIN, -1, -1},
      {INT_MIN, INT_MAX, -2, INT_MAX - 1},
  };
  for (const Case& c : cases) {
    INFO(c.a << " // " << c.b);
    CHECK(int_op(floor_div, c.a, c.b) == c.div);
    CHECK(int_op(mod, c.a, c.b) == c.mod);
  }
}

TEST_CASE("interpreter: int arithmetic wraps around", "[compiler][interpreter]") {
  CHECK(int_op(add_op, INT_MAX, 1) == INT_MIN);
  CHECK(int_op(sub_op, INT_MIN, 1) == INT_MAX);
  CHECK(int_op(mul_op, INT_MIN, -1) == INT_MIN);
  CHECK(int_op(mul_op, 65536, 65536) == 0);
  IntExpr x = param_i32("x", INT_MIN);
  CHECK(evaluate(-x, Point{}).i == INT_MIN);
  CHECK(evaluate(abs(x), Point{}).i == INT_MIN);
}

TEST_CASE("interpreter: float min and max propagate NaN and order -0 below +0",
          "[compiler][interpreter]") {
  CHECK(std::isnan(float_op(fmin_op, kNaN, 1.0f)));
  CHECK(std::isnan(float_op(fmin_op, 1.0f, kNaN)));
  CHECK(std::isnan(float_op(fmax_op, kNaN, -kInf)));
  CHECK(std::isnan(float_op(fmax_op, 2.0f, kNaN)));
  CHECK(std::signbit(float_op(fmin_op, 0.0f, -0.0f)));
  CHECK(std::signbit(float_op(fmin_op, -0.0f, 0.0f)));
  CHECK(!std::signbit(float_op(fmax_op, -0.0f, 0.0f)));
  CHECK(!std::signbit(float_op(fmax_op, 0.0f, -0.0f)));
  CHECK(float_op(fmin_op, -kInf, 3.0f) == -kInf);
  CHECK(float_op(fmax_op, -kInf, 3.0f) == 3.0f);
}

TEST_CASE("interpreter: casts truncate, saturate and map NaN to 0", "[compiler][interpreter]") {
  auto to_i = [](float f) { return eval_const(to_int(FloatExpr(f))).i; };
  CHECK(to_i(2.7f) == 2);
  CHECK(to_i(-2.7f) == -2);
  CHECK(to_i(-0.5f) == 0);
  CHECK(to_i(kNaN) == 0);
  CHECK(to_i(1e10f) == INT_MAX);
  CHECK(to_i(2147483648.0f) == INT_MAX);
  CHECK(to_i(-2147483648.0f) == INT_MIN);
  CHECK(to_i(-kInf) == INT_MIN);
  CHECK(to_i(kInf) == INT_MAX);
  CHECK(eval_const(to_float(IntExpr(16777217))).f == 16777216.0f);
  CHECK(eval_const(to_float(IntExpr(INT_MAX))).f == 2147483648.0f);
  CHECK(eval_const(to_bool(FloatExpr(kNaN))).b);
  CHECK(!eval_const(to_bool(FloatExpr(-0.0f))).b);
  CHECK(eval_const(to_bool(IntExpr(-5))).b);
  CHECK(eval_const(to_int(BoolExpr(true))).i == 1);
  CHECK(eval_const(to_float(BoolExpr(true))).f == 1.0f);
}

TEST_CASE("interpreter: loads outside the buffer read 0", "[compiler][interpreter]") {
  std::vector<int32_t> data = {10, 20, 30, 40, 50, 60};
  IntBuffer v = buffer_i32("v", TensorView::contiguous(data.data(), DType::I32, {6}));
  IntBuffer m = buffer_i32("m", TensorView::contiguous(data.data(), DType::I32, {2, 3}));
  IntExpr i = param_i32("i"), j = param_i32("j");
  auto at = [&](const Expr& e, int32_t iv, int32_t jv) {
    Bindings bind;
    bind.params = {{"i", iv}, {"j", jv}};
    return evaluate(e, Point{}, bind).i;
  };
  CHECK(at(v[i], 0, 0) == 10);
  CHECK(at(v[i], 5, 0) == 60);
  CHECK(at(v[i], 6, 0) == 0);
  CHECK(at(v[i], -1, 0) == 0);
  CHECK(at(v[i], INT_MIN, 0) == 0);
  CHECK(at(m(i, j), 1, 2) == 60);
  CHECK(at(m(i, j), 1, 0) == 40);
  CHECK(at(m(i, j), 0, 3) == 0); // in range as a linear offset, out of range in dimension 1
  CHECK(at(m(i, j), 2, 0) == 0);
  CHECK(at(m(i, j), 1, -1) == 0);

  std::vector<uint8_t> flags = {0, 1, 1};
  BoolBuffer f = buffer_bool("f", TensorView::contiguous(flags.data(), DType::Bool, {3}));
  Bindings bind;
  bind.params = {{"i", 1}, {"j", 0}};
  CHECK(evaluate(f[i], Point{}, bind).b);
  bind.params["i"] = 3;
  CHECK(!evaluate(f[i], Point{}, bind).b);
}

TEST_CASE("interpreter: strided views load the right elements", "[compiler][interpreter]") {
  std::vector<int32_t> data = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  TensorView view = TensorView::contiguous(data.data(), DType::I32, {3, 4});
  view.sizes = {4, 3};
  view.strides = {1, 4}; // the transpose
  IntBuffer t = buffer_i32("t", view);
  CHECK(evaluate(t(IntExpr(1), IntExpr(2)), Point{}).i == 9);
  CHECK(evaluate(t(IntExpr(3), IntExpr(0)), Point{}).i == 3);
}

TEST_CASE("interpreter: f16 and bf16 loads convert exactly", "[compiler][interpreter]") {
  std::vector<uint16_t> h = {0x3C00, 0xC000, 0x0001, 0x03FF, 0x7BFF,
                             0x7C00, 0xFC00, 0x7E00, 0x8000};
  const float want[] = {
      1.0f, -2.0f, std::ldexp(1.0f, -24), std::ldexp(1023.0f, -24), 65504.0f, kInf, -kInf,
      kNaN, -0.0f};
  FloatBuffer fh = buffer_f16("fh", TensorView::contiguous(h.data(), DType::F16, {9}));
  for (int i = 0; i < 9; ++i) {
    float got = evaluate(fh[IntExpr(i)], Point{}).f;
    INFO("f16 element " << i);
    if (std::isnan(want[i]))
      CHECK(std::isnan(got));
    else
      CHECK(std::bit_cast<uint32_t>(got) == std::bit_cast<uint32_t>(want[i]));
  }
  std::vector<uint16_t> b = {0x3F80, 0x4049, 0xC2F7, 0x0001, 0x7F80};
  const float bwant[] = {1.0f, 3.140625f, -123.5f, std::ldexp(1.0f, -133), kInf};
  FloatBuffer fb = buffer_bf16("fb", TensorView::contiguous(b.data(), DType::BF16, {5}));
  for (int i = 0; i < 5; ++i)
    CHECK(evaluate(fb[IntExpr(i)], Point{}).f == bwant[i]);
}

TEST_CASE("interpreter: math uses the binary32 C library functions", "[compiler][interpreter]") {
  FloatExpr x = param_f32("x");
  Bindings bind;
  for (float v : {0.3f, -1.7f, 2.5f, 100.0f, -0.0f}) {
    bind.params["x"] = v;
    auto run = [&](const Expr& e) { return evaluate(e, Point{}, bind).f; };
    CHECK(run(exp(x)) == std::exp(v));
    CHECK(run(exp2(x)) == std::exp2(v));
    CHECK(run(tanh(x)) == std::tanh(v));
    CHECK(run(tanh_approx(x)) == std::tanh(v));
    CHECK(run(sin(x)) == std::sin(v));
    CHECK(run(cos(x)) == std::cos(v));
    CHECK(run(x / 3.0f) == v / 3.0f);
    if (v > 0) {
      CHECK(run(log(x)) == std::log(v));
      CHECK(run(log2(x)) == std::log2(v));
      CHECK(run(sqrt(x)) == std::sqrt(v));
      CHECK(run(rsqrt(x)) == 1.0f / std::sqrt(v));
    }
  }
}

TEST_CASE("interpreter: vars, select and comparisons", "[compiler][interpreter]") {
  Point p{1, 2, 30, 40, -0.5f};
  CHECK(evaluate(var_b() + var_h() * 10, p).i == 21);
  CHECK(evaluate(where(var_q() < var_kv(), var_score(), FloatExpr(7.0f)), p).f == -0.5f);
  CHECK(!evaluate(var_q() >= var_kv(), p).b);
  CHECK(evaluate(var_score() != FloatExpr(kNaN), p).b);
  CHECK(!evaluate(var_score() == FloatExpr(kNaN), p).b);
}

TEST_CASE("interpreter: errors for unbound params and device buffers", "[compiler][interpreter]") {
  IntExpr w = param_i32("never_bound_width");
  try {
    evaluate(var_q() - var_kv() <= w, Point{});
    FAIL("expected an Error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("never_bound_width") != std::string::npos);
  }
  int32_t fake = 0;
  TensorView dev = TensorView::contiguous(&fake, DType::I32, {1}, Device::Cuda);
  IntBuffer d = buffer_i32("on_gpu", dev);
  try {
    Program(d[var_q()] == 0);
    FAIL("expected an Error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("on_gpu") != std::string::npos);
    CHECK(std::string(e.what()).find("host") != std::string::npos);
  }
}

TEST_CASE("interpreter: eval_bool_row equals per-point eval", "[compiler][interpreter]") {
  std::mt19937 rng(1234);
  std::vector<bool> row_ok;
  int checked = 0;
  for (int iter = 0; iter < 400; ++iter) {
    testing::RandomMod mod = testing::random_mask(rng, 1 + iter % 7);
    Program prog(mod.body, mod.bindings, DataIndexCheck::ReadZero);
    for (int r = 0; r < 3; ++r) {
      Point p = testing::random_point(rng);
      int32_t n = std::uniform_int_distribution<int32_t>(1, 300)(rng);
      if (p.kv > INT_MAX - n)
        p.kv = INT_MAX - n;
      std::vector<uint8_t> out(static_cast<size_t>(n));
      prog.eval_bool_row(p.b, p.h, p.q, p.kv, n, reinterpret_cast<bool*>(out.data()));
      for (int32_t i = 0; i < n; ++i) {
        Point pi = p;
        pi.kv = p.kv + i;
        REQUIRE(static_cast<bool>(out[i]) == prog.eval(pi).b);
        ++checked;
      }
    }
  }
  CHECK(checked > 10000);
}

TEST_CASE("interpreter: eval_bool_row speed", "[compiler][interpreter][perf]") {
  std::vector<int32_t> doc = seeds::notebook_document_ids(16384);
  std::vector<MaskMod> masks = {seeds::causal(), seeds::sliding_window(256), seeds::document(doc),
                                seeds::natten(), seeds::sasa()};
  bool out[128];
  for (const MaskMod& m : masks) {
    Program prog(m.body());
    const int rows = 20000;
    auto t0 = std::chrono::steady_clock::now();
    int64_t sum = 0;
    for (int r = 0; r < rows; ++r) {
      prog.eval_bool_row(0, 0, 4000 + r % 128, (r * 128) % 8192, 128, out);
      sum += out[r % 128];
    }
    double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    double per_lane = ns / (rows * 128.0);
    double per_node_lane = per_lane / static_cast<double>(prog.size());
    std::printf("eval_bool_row %-16s %2zu nodes: %.2f ns/lane, %.3f ns/node/lane (%lld)\n",
                m.name().c_str(), prog.size(), per_lane, per_node_lane,
                static_cast<long long>(sum));
    CHECK(per_node_lane < 20.0); // loose: catches a per-lane interpreter, not noise
  }
}

TEST_CASE("interpreter: a data-indexed load outside its buffer is an error of the data",
          "[compiler][interpreter]") {
  // Three sequences of 4, 3 and 5 tokens: jagged_causal reads offsets[seq_idx[q]] and
  // offsets[seq_idx[kv]], loads indexed by buffer data.
  std::vector<int32_t> seq = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2};
  const std::vector<int32_t> offsets = {0, 4, 7, 12};
  const MaskMod mask = seeds::jagged_causal(offsets, seq);
  const auto checked = data_indexed_loads(mask.body());
  REQUIRE(checked.size() == 2); // seq_idx[q], seq_idx[kv] themselves are indexed by position
  for (const Node* load : checked)
    CHECK(load->buffer->name == "offsets");

  const Program program(mask.body());
  for (int q = 0; q < 12; ++q)
    for (int kv = 0; kv < 12; ++kv)
      REQUIRE(program.eval(Point{0, 0, q, kv}).b == (kv <= q && seq[kv] == seq[q]));
  CHECK_FALSE(program.reads_outside(Point{0, 0, 11, 3}));
  // A position past seq_idx reads 0 (sequence 0): not an error, seq_idx is indexed by q_idx.
  CHECK(program.eval(Point{0, 0, 13, 0}).b);

  seq[9] = 4; // offsets has entries 0..3
  seq[10] = -1;
  CHECK(program.reads_outside(Point{0, 0, 9, 0}));
  CHECK(program.reads_outside(Point{0, 0, 3, 10}));
  CHECK_FALSE(program.reads_outside(Point{0, 0, 8, 5}));
  CHECK_THROWS_WITH(program.eval(Point{0, 0, 9, 2}),
                    Catch::Contains("buffer 'offsets' is read at index 4 in dimension 0, outside "
                                    "its 4 elements there, at (b 0, h 0, q_idx 9, kv_idx 2): an "
                                    "index read from buffer data must lie inside the buffer"));
  CHECK_THROWS_WITH(program.eval(Point{0, 0, 10, 0}), Catch::Contains("index -1 in dimension 0"));
  // ReadZero: the value compiled code computes beside its report (offsets[4] reads 0).
  const Program zero(mask.body(), {}, DataIndexCheck::ReadZero);
  CHECK(zero.eval(Point{0, 0, 9, 2}).b == (9 - 0 >= 2 - 0 && 4 == 0));
  CHECK_FALSE(zero.reads_outside(Point{0, 0, 9, 2}));

  // eval_bool_row (the CPU block-mask builder's path): q_idx 9 raises at kv_idx 0 (a load
  // uniform over the row); on q_idx 8's row, kv_idx 9 raises as a lane of the row, but the
  // vector loop's padding lanes past n are never checked.
  bool row[12];
  CHECK_THROWS_WITH(program.eval_bool_row(0, 0, 9, 0, 12, row),
                    Catch::Contains("q_idx 9, kv_idx 0"));
  CHECK_THROWS_WITH(program.eval_bool_row(0, 0, 8, 0, 10, row),
                    Catch::Contains("index 4 in dimension 0") && Catch::Contains("kv_idx 9)"));
  program.eval_bool_row(0, 0, 8, 0, 9, row);
  for (int kv = 0; kv < 9; ++kv)
    CHECK(row[kv] == (kv >= 7));
}

TEST_CASE("interpreter: only loads whose index reads a buffer are data-indexed",
          "[compiler][interpreter]") {
  std::vector<int32_t> data = {0, 1, 2};
  IntBuffer a = buffer_i32("a", TensorView::contiguous(data.data(), DType::I32, {3}));
  IntBuffer b = buffer_i32("b", TensorView::contiguous(data.data(), DType::I32, {3}));
  const IntExpr q = var_q(), kv = var_kv();
  CHECK(data_indexed_loads(a[q] + b[kv - q + 1] == 0).empty()); // positions and arithmetic
  CHECK(data_indexed_loads(a[param_i32("p")] == 0).empty());
  const auto one = data_indexed_loads(a[b[q] * 2 + kv] == 0);
  REQUIRE(one.size() == 1);
  CHECK((*one.begin())->buffer->name == "a");
  CHECK(data_indexed_loads(a[b[a[q]]] == 0).size() == 2); // both outer loads
  // A position-indexed load far outside still reads 0, in every mode.
  const Program far(a[q + 100] == 0);
  CHECK(far.eval(Point{}).b);
  CHECK_FALSE(far.reads_outside(Point{}));
}
