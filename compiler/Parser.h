// Mods from text: a parser of the canonical printer's language (print() in
// compiler/Passes.h), for mods loaded at run time (model configs, a CLI, other
// languages). Exact in both directions: for every mod m,
// print(parse(print(m))) == print(m), and the parsed mod has m's structural hash
// (the kernel cache key), floats bit for bit (NaNs included).
//
// The language (what print() writes, plus conveniences for hand-written text):
//   text     := ('let' NAME '=' expr (newline | ';'))* expr
//   expr     := C-like infix with C precedence (|| && | & == != < <= > >= + - * / // %),
//               unary '-' and '!', parentheses; the printer parenthesizes every
//               operation: (kv_idx <= q_idx) && ((q_idx - kv_idx) <= window:int)
//   primary  := b | h | q_idx | kv_idx | score (score_mod only)
//             | 42 | -7 (int32) | 1.5f | -0.0f | 3.4028235e+38f | inf | -inf | nan | -nan
//             | nan(0x7fc00001) (a NaN of those bits) | true | false
//             | NAME ':' ('int' | 'float')              a param
//             | NAME ':' DTYPE ':' RANK '[' expr, ... ']' a buffer load; DTYPE is
//                                                       i32, f32, f16, bf16 or bool
//             | NAME '[' expr, ... ']' | NAME           a buffer or param given in
//                                                       TextBindings or declared
//                                                       earlier in the text; a let
//             | FN '(' expr, ... ')'                    min max abs exp exp2 log log2
//                                                       sqrt rsqrt tanh tanh_approx
//                                                       sin cos where clamp, and the
//                                                       casts int float bool
// A declared name may be any buffer or param name, keywords and names starting with
// a digit included ("nan:float", "2d:f32:2[...]"); a bare name is first a keyword,
// variable, function or let, then a buffer or param.
// A let's expression ends at the first newline outside parentheses or brackets
// (or at ';'); '#' starts a comment to the end of the line. '/' is float division
// and '//' int floor division (torch's //), '%' the int remainder with the
// divisor's sign, '&' and '|' int bitwise; an int operand meeting a float one is
// promoted (an explicit float(...) in the printed text), as the C++ DSL does;
// a cast always makes a Cast node, so text and DAG correspond one to one.
//
// Buffers and params resolve by name: to the declarations given in TextBindings
// (their dtype and rank, or type, must match the text's), else to a declaration
// the parser makes from the text (one per name and text: a buffer declared, not
// bound; a param without a default). Bind those at call time by name
// (Bindings::buffers / Bindings::params, DeviceBindings), as for any declared
// buffer or param; or declare Buffer objects and params first, pass them in
// TextBindings, and bind the buffers with Buffer::bind.
//
// Every problem is a flexjit::Error "line L, column C: <what was expected, what
// was found>" (README.md, Errors, Compiler): an unknown name, a type mismatch, a
// wrong arity, unbalanced parentheses, trailing text, an empty text, a literal out
// of range; never a crash. Nesting deeper than kMaxParseDepth is an Error too.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "flexjit/dsl/Mods.h"

namespace flexjit {

// The declarations a text may refer to by name.
struct TextBindings {
  std::vector<Buffer> buffers;
  // Param expressions: param_i32(...) / param_f32(...) (their defaults carry over).
  std::vector<Expr> params;
};

// Parenthesized / nested operations deeper than this are an Error (not a stack overflow; the
// parser recurses, and a sanitizer build's frames are several times larger).
inline constexpr int kMaxParseDepth = 256;

// A mask_mod from text: a bool expression over b, h, q_idx, kv_idx.
MaskMod parse_mask_mod(std::string_view text, const TextBindings& names = {},
                       std::string mod_name = "mask_mod");
// A score_mod from text: a float expression over score, b, h, q_idx, kv_idx (an int
// expression is promoted to float).
ScoreMod parse_score_mod(std::string_view text, const TextBindings& names = {},
                         std::string mod_name = "score_mod");
// Any expression (reads score only if `allow_score`), as written: no promotion of the root.
Expr parse_expr(std::string_view text, const TextBindings& names = {}, bool allow_score = true);

} // namespace flexjit
