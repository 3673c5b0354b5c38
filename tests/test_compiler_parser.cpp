// The text parser (compiler/Parser.h): the canonical printer's language read back,
// exact in both directions, with located errors.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <limits>
#include <random>

#include "flexjit/compiler/Interpreter.h"
#include "flexjit/compiler/Parser.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/PreparedMods.h"
#include "flexjit/testing/RandomMods.h"
#include "flexjit/testing/SeedCatalog.h"

using namespace flexjit;
using Catch::Contains;

namespace {

// The error message of parsing `text` as a mask_mod ("" if it parses).
std::string mask_error(std::string_view text, const TextBindings& names = {}) {
  try {
    parse_mask_mod(text, names);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
std::string score_error(std::string_view text, const TextBindings& names = {}) {
  try {
    parse_score_mod(text, names);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// What structural_hash gives, or the error it throws (a random body may fold to a
// division by zero).
std::string hash_or_error(const Expr& body) {
  try {
    const Hash128 h = body.type() == Type::Bool ? structural_hash(MaskMod("m", BoolExpr(body)))
                                                : structural_hash(ScoreMod("s", FloatExpr(body)));
    return fmt::format("{:016x}{:016x}", h.hi, h.lo);
  } catch (const Error& e) {
    return std::string("error: ") + e.what();
  }
}

std::string prepared_text(const MaskMod& mask, const ScoreMod& score) {
  try {
    return prepare_mods(mask, score)->text;
  } catch (const Error& e) {
    return std::string("error: ") + e.what();
  }
}

// parse(print(body)) prints as print(body), has its structural hash and, where
// given, evaluates like it.
void check_round_trip(const Expr& body, const testing::RandomMod* random = nullptr) {
  const std::string text = print(body);
  INFO("text:\n" << text);
  const bool is_mask = body.type() == Type::Bool;
  const Expr parsed =
      is_mask ? Expr(parse_mask_mod(text).body()) : Expr(parse_score_mod(text).body());
  REQUIRE(print(parsed) == text);
  CHECK(hash_or_error(parsed) == hash_or_error(body));
  if (random) { // the parsed mod's buffers and params bind by name at call time
    std::mt19937 rng(7);
    const Program original(body, random->bindings, DataIndexCheck::ReadZero),
        again(parsed, random->bindings, DataIndexCheck::ReadZero);
    for (int i = 0; i < 8; ++i) {
      const Point p = testing::random_point(rng);
      CHECK(testing::same_value(body.type(), original.eval(p), again.eval(p)));
    }
  }
}

} // namespace

TEST_CASE("parser: every seed mod round-trips exactly", "[compiler][parser]") {
  const testing::SeedCatalog seeds;
  for (const MaskMod& mask : seeds.masks) {
    INFO("mask_mod " << mask.name());
    check_round_trip(mask.body());
    const MaskMod parsed = parse_mask_mod(print(mask.body()), {}, mask.name());
    CHECK(structural_hash(parsed) == structural_hash(mask));
    CHECK(prepared_text(parsed, ScoreMod()) == prepared_text(mask, ScoreMod()));
  }
  for (const ScoreMod& score : seeds.scores) {
    INFO("score_mod " << score.name());
    check_round_trip(score.body());
    const ScoreMod parsed = parse_score_mod(print(score.body()), {}, score.name());
    CHECK(structural_hash(parsed) == structural_hash(score));
    CHECK(prepared_text(seeds::causal(), parsed) == prepared_text(seeds::causal(), score));
  }
  // The optimized bodies (what the kernel cache prints) round-trip too.
  for (const MaskMod& mask : seeds.masks)
    check_round_trip(optimize(mask.body()));
  for (const ScoreMod& score : seeds.scores)
    check_round_trip(optimize(score.body()));
  // The example of issue 16.
  const std::string window = "(kv_idx <= q_idx) && ((q_idx - kv_idx) <= window:int)";
  CHECK(print(parse_mask_mod(window).body()) ==
        "((kv_idx <= q_idx) && ((q_idx - kv_idx) <= window:int))");
}

TEST_CASE("parser: 2000 random mods round-trip exactly", "[compiler][parser]") {
  std::mt19937 rng(16016);
  int prepared = 0;
  for (int i = 0; i < 2000; ++i) {
    INFO("random mod " << i);
    testing::RandomMod r = i % 2 ? testing::random_mask(rng) : testing::random_score(rng);
    check_round_trip(r.body, &r);
    try {
      check_round_trip(optimize(r.body));
    } catch (const Error&) { // folds to a division by zero: hash_or_error covered it
    }
    if (i % 20 == 0) { // the kernel cache's canonical text and key
      const std::string text = print(r.body);
      if (i % 2) {
        CHECK(prepared_text(parse_mask_mod(text), ScoreMod()) ==
              prepared_text(MaskMod("mask_mod", BoolExpr(r.body)), ScoreMod()));
      } else {
        CHECK(prepared_text(MaskMod(), parse_score_mod(text)) ==
              prepared_text(MaskMod(), ScoreMod("score_mod", FloatExpr(r.body))));
      }
      ++prepared;
    }
  }
  CHECK(prepared == 100);
  // Pairs: a mask and a score over the same buffers and params.
  for (int i = 0; i < 200; ++i) {
    testing::RandomMod r = testing::random_pair(rng);
    check_round_trip(r.body);
    check_round_trip(r.score);
  }
}

TEST_CASE("parser: float and int constants round-trip bit for bit", "[compiler][parser]") {
  const float specials[] = {0.0f,
                            -0.0f,
                            1.0f,
                            -6.72194f,
                            0.1f,
                            std::numeric_limits<float>::max(),
                            -std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::min(),
                            std::numeric_limits<float>::denorm_min(),
                            -std::numeric_limits<float>::denorm_min(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            -std::numeric_limits<float>::quiet_NaN(),
                            std::bit_cast<float>(0x7f800001u),
                            std::bit_cast<float>(0xffbfffffu),
                            16777216.0f,
                            1e30f,
                            2147483648.0f};
  for (float v : specials) {
    const Expr e = make_float(v);
    INFO(print(e));
    const Expr parsed = parse_expr(print(e));
    REQUIRE(parsed.kind() == NodeKind::FloatConst);
    CHECK(std::bit_cast<uint32_t>(parsed->fval) == std::bit_cast<uint32_t>(v));
    CHECK(parsed.same_as(e));
  }
  CHECK(print(make_float(std::numeric_limits<float>::quiet_NaN())) == "nan");
  CHECK(print(make_float(-std::numeric_limits<float>::quiet_NaN())) == "-nan");
  CHECK(print(make_float(std::bit_cast<float>(0x7f800001u))) == "nan(0x7f800001)");
  CHECK(print(make_float(-0.0f)) == "-0.0f");
  CHECK(print(make_float(std::numeric_limits<float>::max())) == "3.4028235e+38f");
  // Distinct NaNs stay distinct nodes (no sharing appears on the way back).
  const Expr two_nans = Node::make(NodeKind::Add, Type::Float,
                                   {make_float(std::numeric_limits<float>::quiet_NaN()),
                                    make_float(-std::numeric_limits<float>::quiet_NaN())});
  CHECK(parse_expr(print(two_nans)).same_as(two_nans));
  for (int32_t v : {0, 1, -1, 2147483647, -2147483647 - 1}) {
    const Expr e = make_int(v);
    CHECK(parse_expr(print(e)).same_as(e));
  }
  // A negative literal and the negation of a literal are different nodes.
  CHECK(parse_expr("-5").same_as(make_int(-5)));
  CHECK(parse_expr("-(5)").kind() == NodeKind::Neg);
  CHECK(parse_expr("- 5").kind() == NodeKind::Neg);
  CHECK(print(parse_expr("(q_idx - -5)")) == "(q_idx - -5)");
  CHECK(print(parse_expr("q_idx-5")) == "(q_idx - 5)");
  CHECK(print(parse_expr("1.5")) == "1.5f");
  CHECK(print(parse_expr("2f")) == "2.0f");
  CHECK(print(parse_expr("1e3")) == "1000.0f");
}

TEST_CASE("parser: hand-written texts parse to the canonical form", "[compiler][parser]") {
  auto canonical = [](std::string_view text) { return print(parse_expr(text)); };
  // Whitespace, newlines, comments and precedence.
  CHECK(canonical("  kv_idx<=q_idx&&q_idx-kv_idx<=window:int  ") ==
        "((kv_idx <= q_idx) && ((q_idx - kv_idx) <= window:int))");
  CHECK(canonical("(kv_idx <= q_idx)\n  && ((q_idx - kv_idx)\n <= window:int) # sliding\n") ==
        "((kv_idx <= q_idx) && ((q_idx - kv_idx) <= window:int))");
  CHECK(canonical("\t(\tq_idx\r\n>=\tkv_idx\t)\t") == "(kv_idx <= q_idx)");
  CHECK(canonical("q_idx > kv_idx || b == h") == "((kv_idx < q_idx) || (b == h))");
  CHECK(canonical("q_idx + kv_idx * 2 - h // 2 % 3 & 7 | b") ==
        "((((q_idx + (kv_idx * 2)) - ((h // 2) % 3)) & 7) | b)");
  CHECK(canonical("!(q_idx < kv_idx) || !true") == "(!((q_idx < kv_idx)) || !(true))");
  CHECK(canonical("-q_idx * 2") == "(-(q_idx) * 2)");
  // Lets: a newline (outside brackets) or ';' ends one; sharing comes back as lets.
  CHECK(canonical("let d = q_idx - kv_idx\nd >= 0 && d <= 128") ==
        "let t0 = (q_idx - kv_idx)\n((0 <= t0) && (t0 <= 128))");
  CHECK(canonical("let d = q_idx - kv_idx; d >= 0 && d <= 128") ==
        "let t0 = (q_idx - kv_idx)\n((0 <= t0) && (t0 <= 128))");
  CHECK(canonical("let d = (q_idx\n  - kv_idx)\n\n-(d)") == "-((q_idx - kv_idx))");
  // Ints meeting floats are promoted, as in the C++ DSL; clamp is min(max(...)).
  CHECK(canonical("score * q_idx") == "(score * float(q_idx))");
  CHECK(canonical("where(q_idx >= kv_idx, score, 0)") ==
        "where((kv_idx <= q_idx), score, float(0))");
  CHECK(canonical("clamp(q_idx, 3, 60)") == "min(max(q_idx, 3), 60)");
  CHECK(canonical("exp2 ( score )\n/ 2") == "(exp2(score) / float(2))");
  CHECK(canonical("int(int(q_idx))") == "int(int(q_idx))"); // casts are kept as written
  // A buffer declared once by dtype and rank, then read by name.
  CHECK(canonical("doc:i32:1[q_idx] == doc[kv_idx]") == "(doc:i32:1[q_idx] == doc:i32:1[kv_idx])");
  CHECK(canonical("w:int >= q_idx - kv_idx && w > 0") ==
        "(((q_idx - kv_idx) <= w:int) && (0 < w:int))");
  // The same mod as the C++ DSL builds, node for node.
  const MaskMod sliding = seeds::sliding_window();
  const TextBindings names{{}, {param_i32("window", 1024)}};
  const MaskMod parsed = parse_mask_mod("q_idx >= kv_idx && q_idx - kv_idx <= window", names);
  const IntExpr window(names.params[0]);
  const BoolExpr built = var_q() >= var_kv() && var_q() - var_kv() <= window;
  CHECK(parsed.body().same_as(built));
  CHECK(parsed.name() == "mask_mod");
  CHECK(structural_hash(parsed) == structural_hash(sliding));
}

TEST_CASE("parser: buffers and params of any valid name round-trip", "[compiler][parser]") {
  // Names that are keywords, variables or functions of the language, or start with a digit.
  const std::vector<float> data(4, 1.0f);
  const FloatBuffer nan_buffer =
      buffer_f32("nan", TensorView::contiguous(data.data(), DType::F32, {4}));
  const IntBuffer let_buffer("let", DType::I32, 1);
  const BoolBuffer digit_buffer("2d", DType::Bool, 2);
  const IntExpr p_true = param_i32("true"), p_b = param_i32("b"), p_int = param_i32("int");
  const FloatExpr p_inf = param_f32("inf"), p_digit = param_f32("0");
  const BoolExpr body =
      (nan_buffer[let_buffer[p_true + p_b]] + -p_inf < p_digit * to_float(p_int)) &&
      digit_buffer(var_q(), var_kv() - p_b);
  const std::string text = print(body);
  INFO(text);
  CHECK(print(parse_mask_mod(text).body()) == text);
  CHECK(structural_hash(parse_mask_mod(text)) == structural_hash(MaskMod("m", body)));
  // The caller's declarations of such names.
  const TextBindings names{{let_buffer}, {p_true}};
  CHECK(print(parse_expr("let:i32:1[true:int]")) == print(let_buffer[p_true]));
  CHECK(parse_expr("let:i32:1[true:int]", names).same_as(let_buffer[p_true]));
  CHECK(parse_expr("let[true:int]", names).same_as(let_buffer[p_true]));
  // A bare keyword is the keyword: true is the bool, true:int the param.
  CHECK_THROWS_WITH(parse_expr("let[true]", names),
                    Contains("line 1, column 5: buffer 'let' is indexed with a bool"));
}

TEST_CASE("parser: buffers and params resolve by name", "[compiler][parser]") {
  // Declarations given by the caller: the parsed loads read them (bind later).
  const Buffer doc("document_id", DType::I32, 1);
  const IntExpr prefix = param_i32("prefix", 4);
  const TextBindings names{{doc}, {prefix}};
  const MaskMod m = parse_mask_mod(
      "(document_id:i32:1[q_idx] == document_id[kv_idx]) && (kv_idx < prefix:int || kv_idx <= "
      "q_idx)",
      names, "doc_prefix");
  const IntBuffer typed(doc);
  const BoolExpr built =
      typed[var_q()] == typed[var_kv()] && (var_kv() < prefix || var_kv() <= var_q());
  CHECK(m.body().same_as(built));
  CHECK(m.name() == "doc_prefix");
  // Declarations from the text: unbound buffers and params without defaults, bound
  // at call time by name.
  const Expr e = parse_expr("ids:i32:2[h, q_idx] + k:int");
  const Dependence dep = analyze_dependence(e);
  REQUIRE(dep.buffers.size() == 1);
  CHECK(dep.buffers[0]->name == "ids");
  CHECK(dep.buffers[0]->dtype == DType::I32);
  CHECK(dep.buffers[0]->rank == 2);
  CHECK(!dep.buffers[0]->binding);
  REQUIRE(dep.params.size() == 1);
  CHECK(dep.params[0]->name == "k");
  CHECK(!dep.params[0]->default_value);
  const std::vector<int32_t> data = {10, 20, 30, 40, 50, 60};
  Bindings bindings;
  bindings.buffers["ids"] = TensorView::contiguous(data.data(), DType::I32, {2, 3});
  bindings.params["k"] = 5.0;
  const Program program(e, bindings);
  CHECK(program.eval(Point{0, 1, 2, 0, 0.0f}).i == 65);
  // Each text declares its own: two parses do not share declarations.
  CHECK(!parse_expr("k:int").same_as(parse_expr("k:int")));
}

TEST_CASE("errors: a text that does not parse names the line and column",
          "[compiler][parser][errors]") {
  // Unknown names, with a suggestion.
  CHECK(mask_error("kv_idz <= q_idx") ==
        "flexjit: line 1, column 1: unknown name 'kv_idz' (expected b, h, q_idx, kv_idx, a let "
        "name, or a buffer or param: name:int, name:float, name:dtype:rank[...], or one given in "
        "TextBindings); did you mean 'kv_idx'?");
  CHECK_THAT(mask_error("(kv_idx <= q_idx)\n  && (q_idx <= kv_idz)"),
             Contains("line 2, column 16: unknown name 'kv_idz'"));
  CHECK_THAT(
      score_error("score * slopez"),
      Contains("line 1, column 9: unknown name 'slopez' (expected b, h, q_idx, kv_idx, score,"));
  CHECK(mask_error("score > 0.0f") ==
        "flexjit: line 1, column 1: 'score' is not available in a mask_mod; a mask_mod reads b, "
        "h, q_idx, kv_idx (use a score_mod to change scores)");
  CHECK_THAT(mask_error("foo(q_idx) == 1"),
             Contains("line 1, column 1: unknown function 'foo' (expected min, max,"));
  CHECK_THAT(mask_error("doc[q_idx] == 1"), Contains("line 1, column 1: unknown name 'doc'"));
  // Type mismatches, located at the operator or the argument.
  CHECK(mask_error("q_idx && kv_idx") ==
        "flexjit: line 1, column 7: '&&' needs bool operands, got int and int");
  CHECK(mask_error("(q_idx + true) == 1") ==
        "flexjit: line 1, column 8: '+' needs numbers, got int and bool");
  CHECK(mask_error("q_idx // 2.0f == 1") ==
        "flexjit: line 1, column 7: '//' needs int operands, got int and float");
  CHECK(mask_error("(q_idx == true)") ==
        "flexjit: line 1, column 8: '==' needs two values of one type (or two numbers), got int "
        "and bool");
  CHECK_THAT(score_error("q_idx / kv_idx"),
             Contains("line 1, column 7: '/' is float division and needs a float operand, got int "
                      "and int (use '//'"));
  CHECK(score_error("where(q_idx, score, 1.0f)") ==
        "flexjit: line 1, column 7: where() needs a bool condition, got int");
  CHECK(score_error("where(q_idx < 1, score, true)") ==
        "flexjit: line 1, column 25: where() needs two branches of one type (or two numbers), got "
        "float and bool");
  CHECK(score_error("exp(true)") == "flexjit: line 1, column 5: exp() needs a number, got bool");
  CHECK(mask_error("!q_idx") == "flexjit: line 1, column 1: '!' needs a bool operand, got int");
  CHECK(mask_error("-(q_idx < 1)") == "flexjit: line 1, column 1: '-' needs a number, got bool");
  CHECK(score_error("doc:f32:1[score]") ==
        "flexjit: line 1, column 11: buffer 'doc' is indexed with a float; expected an int index");
  CHECK(mask_error("q_idx + 1") ==
        "flexjit: line 1, column 1: a mask_mod is a bool expression, this one is int");
  CHECK(score_error("\n  q_idx <= 1") ==
        "flexjit: line 2, column 3: a score_mod is a float expression, this one is bool");
  CHECK(mask_error("q_idx % 0 == 1") ==
        "flexjit: line 1, column 7: '%' divides by a constant zero; expected a nonzero divisor");
  // Wrong arity of a function or a buffer.
  CHECK(mask_error("min(q_idx) <= kv_idx") ==
        "flexjit: line 1, column 1: min() takes 2 arguments, got 1");
  CHECK(score_error("score + exp(score, score)") ==
        "flexjit: line 1, column 9: exp() takes 1 argument, got 2");
  CHECK(score_error("where()") == "flexjit: line 1, column 1: where() takes 3 arguments, got 0");
  CHECK(mask_error("doc:i32:2[q_idx] == 0") ==
        "flexjit: line 1, column 10: buffer 'doc' has rank 2 but is indexed with 1 indices; "
        "expected 2");
  // Unbalanced parentheses, trailing text, empty text.
  CHECK(mask_error("((q_idx <= kv_idx)") ==
        "flexjit: line 1, column 19: expected ')' to close the '(' at line 1, column 1, found the "
        "end of the text");
  CHECK(mask_error("min(q_idx, kv_idx == 1") ==
        "flexjit: line 1, column 23: expected ',' or ')' to close the '(' at line 1, column 4, "
        "found the end of the text");
  CHECK(mask_error("(q_idx <= kv_idx))") ==
        "flexjit: line 1, column 18: unexpected ')' after the expression; expected an operator or "
        "the end of the text");
  CHECK(mask_error("q_idx <= kv_idx kv_idx") ==
        "flexjit: line 1, column 17: unexpected 'kv_idx' after the expression; expected an "
        "operator or the end of the text");
  CHECK(mask_error("") == "flexjit: line 1, column 1: the text is empty; expected an expression");
  CHECK(mask_error("  \n # only a comment\n") ==
        "flexjit: line 3, column 1: the text is empty; expected an expression");
  CHECK(mask_error("q_idx <=") ==
        "flexjit: line 1, column 9: expected an expression, found the end of the text");
  CHECK(mask_error("q_idx <= )") ==
        "flexjit: line 1, column 10: expected an expression, found ')'");
  CHECK(mask_error("q_idx @ kv_idx") == "flexjit: line 1, column 7: unexpected character '@'");
  CHECK(mask_error("q_idx \xff kv_idx") == "flexjit: line 1, column 7: unexpected byte 0xff");
  CHECK(mask_error("exp + 1") ==
        "flexjit: line 1, column 5: expected '(' after the function 'exp', found '+'");
  // Literals.
  CHECK(mask_error("q_idx <= 2147483648") ==
        "flexjit: line 1, column 10: integer literal 2147483648 is outside the int32 range");
  CHECK(mask_error("q_idx <= -2147483649") ==
        "flexjit: line 1, column 11: integer literal -2147483649 is outside the int32 range");
  CHECK(score_error("score * 1e39f") ==
        "flexjit: line 1, column 9: float literal 1e39f is outside the float range (use inf, or "
        "0.0f)");
  CHECK(mask_error("q_idx <= 12abc") == "flexjit: line 1, column 10: malformed number '12abc'");
  CHECK(mask_error("q_idx <= 1.2.3") == "flexjit: line 1, column 10: malformed number '1.2.3'");
  CHECK_THAT(score_error("nan(0x3f800000)"),
             Contains("line 1, column 5: 0x3f800000 is not the bits of a float NaN"));
  CHECK(score_error("nan(1)") ==
        "flexjit: line 1, column 5: expected a NaN's bits (nan(0x7fc00001)), found '1'");
  CHECK_THAT(score_error("score + 0x10"), Contains("line 1, column 9: unexpected hex number 0x10"));
  // Buffers and params: one dtype and rank, or one type, per name.
  CHECK(mask_error("doc:i32:1[q_idx] == doc:f32:1[kv_idx]") ==
        "flexjit: line 1, column 21: buffer 'doc' is read as f32:1 here but is declared i32:1; "
        "expected one dtype and rank per name");
  CHECK(mask_error("p:int <= 0 && p:float <= 0.0f") ==
        "flexjit: line 1, column 15: param 'p' is read as float here but is declared int; "
        "expected one type per name");
  const TextBindings names{{Buffer("doc", DType::F16, 2)}, {param_f32("p")}};
  CHECK_THAT(
      mask_error("doc:i32:1[q_idx] == 1", names),
      Contains("line 1, column 1: buffer 'doc' is read as i32:1 here but is declared f16:2"));
  CHECK_THAT(mask_error("p:int == 1", names),
             Contains("line 1, column 1: param 'p' is read as int here but is declared float"));
  CHECK_THAT(mask_error("doc == 1", names),
             Contains("line 1, column 5: expected '[' after the buffer 'doc', found '=='"));
  CHECK(mask_error("x:str == 1") ==
        "flexjit: line 1, column 3: expected a param type (int, float) or a buffer dtype (i32, "
        "f32, f16, bf16, bool) after 'x:', found 'str'");
  CHECK(mask_error("x:i32:5[q_idx] == 1") ==
        "flexjit: line 1, column 7: expected the buffer's rank, 1 to 4, found '5'");
  CHECK(mask_error("x:i32[q_idx] == 1") ==
        "flexjit: line 1, column 6: expected ':' and the rank after 'x:i32', found '['");
  CHECK(mask_error("x:i32:1 == 1") ==
        "flexjit: line 1, column 9: expected '[' and indices after the buffer 'x:i32:1', found "
        "'=='");
  // Lets.
  CHECK(mask_error("let q_idx = 1\nq_idx == 1") ==
        "flexjit: line 1, column 5: 'q_idx' is a reserved name; a let needs another name");
  CHECK(mask_error("let t = 1\nlet t = 2\nt == 1") ==
        "flexjit: line 2, column 5: 't' is already defined (line 1); a let name is defined once");
  CHECK(mask_error("let t = 1 t == 1") ==
        "flexjit: line 1, column 11: expected a newline or ';' after the let's expression, found "
        "'t'");
  CHECK(mask_error("let t = q_idx\n") ==
        "flexjit: line 2, column 1: expected the mod's expression after the lets, found the end "
        "of the text");
  CHECK(mask_error("let = 1") ==
        "flexjit: line 1, column 5: expected a name after 'let', found '='");
  CHECK(mask_error("let t 1") ==
        "flexjit: line 1, column 7: expected '=' after the let's name, found '1'");
  // Nesting deeper than the limit is an Error, not a stack overflow.
  for (const char* unit : {"(", "!", "-", "min(1, ", "x:i32:1["}) {
    std::string deep;
    for (int i = 0; i < 100000; ++i)
      deep += unit;
    CHECK_THAT(mask_error(deep), Contains("the expression nests deeper than 256 levels"));
  }
  std::string ok = "q_idx";
  for (int i = 0; i < 250; ++i)
    ok = "(" + ok + " + 1)";
  CHECK(parse_expr(ok + " == 0").type() == Type::Bool);
  // The caller's declarations.
  CHECK(mask_error("q_idx == 1", TextBindings{{}, {var_q()}}) ==
        "flexjit: TextBindings::params holds a Var node, not a param; expected param_i32(...) or "
        "param_f32(...)");
  CHECK(mask_error("q_idx == 1",
                   TextBindings{{Buffer("d", DType::I32, 1), Buffer("d", DType::I32, 1)}, {}}) ==
        "flexjit: TextBindings has two different buffers named 'd'; expected one per name");
  CHECK(mask_error("q_idx == 1", TextBindings{{}, {param_i32("p"), param_i32("p")}}) ==
        "flexjit: TextBindings has two different params named 'p'; expected one per name");
}

TEST_CASE("parser: truncated and mutated texts parse or throw a located Error",
          "[compiler][parser]") {
  std::vector<std::string> texts;
  const testing::SeedCatalog seeds;
  for (const MaskMod& m : seeds.masks)
    texts.push_back(print(m.body()));
  for (const ScoreMod& s : seeds.scores)
    texts.push_back(print(s.body()));
  std::mt19937 rng(1616);
  for (int i = 0; i < 40; ++i)
    texts.push_back(
        print((i % 2 ? testing::random_mask(rng, 4) : testing::random_score(rng, 4)).body));
  texts.push_back("let d = q_idx - kv_idx\nd >= 0 && d <= window:int # comment");
  auto attempt = [](const std::string& text, bool mask) {
    try {
      if (mask)
        parse_mask_mod(text);
      else
        parse_score_mod(text);
      return true;
    } catch (const Error& e) {
      const std::string what = e.what();
      INFO("text: " << text << "\nerror: " << what);
      CHECK(what.rfind("flexjit: line ", 0) == 0);
      CHECK(what.find("internal error") == std::string::npos);
      return false;
    }
  };
  const std::string alphabet = "()[],;:=+-*/%<>&|!#. \n0123456789abfhiklnqsxz_\x80";
  int parsed = 0, errors = 0;
  for (const std::string& text : texts) {
    const bool mask = text.find("score") == std::string::npos;
    for (size_t n = 0; n < text.size(); n += 1 + text.size() / 64)
      (attempt(text.substr(0, n), mask) ? parsed : errors) += 1;
    for (int k = 0; k < 60; ++k) {
      std::string t = text;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits && !t.empty(); ++e) {
        const size_t at = rng() % t.size();
        const char c = alphabet[rng() % alphabet.size()];
        switch (rng() % 4) {
        case 0:
          t.erase(at, 1);
          break;
        case 1:
          t.insert(at, 1, c);
          break;
        case 2:
          t[at] = c;
          break;
        default: // a duplicated slice
          t.insert(at, t.substr(rng() % t.size(), 1 + rng() % 8));
          break;
        }
      }
      (attempt(t, mask) ? parsed : errors) += 1;
    }
  }
  CHECK(errors > 1000);
  CHECK(parsed > 50);
}
