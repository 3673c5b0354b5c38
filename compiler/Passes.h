// The compiler's passes over the expression DAG (one pass per .cpp file).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "flexjit/dsl/Mods.h"
#include "flexjit/support/Hash.h"

namespace flexjit {

// ---- TypeCheck.cpp ----------------------------------------------------------
// Checks a whole mod: node invariants, no Var::Score inside a mask_mod (Error:
// "mask_mod 'x' reads score ..."), no division by a constant zero (Error).
void type_check(const MaskMod& mod);
void type_check(const ScoreMod& mod);

// ---- Simplify.cpp -----------------------------------------------------------
// Constant folding (with the interpreter's semantics, so folding never changes
// a result) and algebraic rules that are exact for ints and IEEE floats.
// Throws Error when folding reveals a division by a constant zero.
Expr simplify(const Expr& e);

// ---- CSE.cpp ----------------------------------------------------------------
// Hash-consing already shares structurally equal nodes; cse() additionally
// puts the operands of commutative nodes (Add, Mul, Min, Max, Eq, Ne, And, Or,
// BitAnd, BitOr) in a canonical order so a+b and b+a become one node.
Expr cse(const Expr& e);
// Whether op(a, b) == op(b, a) for every a, b (the kinds listed above).
bool is_commutative(NodeKind kind);

// simplify + cse to a fixed point: what codegen and the cache key use.
Expr optimize(const Expr& e);

// ---- Printer.cpp ------------------------------------------------------------
// Canonical text: every node shared by two users is printed once as a let
// binding, in a deterministic order; buffers and params by name, dtype, rank.
std::string print(const Expr& e);

// Hash of the canonical text of optimize(body): the kernel cache key's mod
// part. Mods built differently but structurally equal hash equal.
Hash128 structural_hash(const MaskMod& mod);
Hash128 structural_hash(const ScoreMod& mod);

// ---- Derivative.cpp ---------------------------------------------------------
// d(body)/d(score) of a score_mod body, optimized: reverse accumulation over the DAG
// (where routes the adjoint to the branch taken; min/max to the first operand on a
// tie; abs has slope 0 at 0; tanh, tanh_approx, exp, exp2, log, log2, sqrt, rsqrt, sin,
// cos and division handled). 0 when the body does not read the score.
Expr score_derivative(const Expr& body);

// The adjoint of each float load of the named buffers in a score_mod body: for every
// distinct Load node (its operands are the element's indices, evaluated at the same point),
// d(body)/d(the loaded value), optimized, by the rules above. A buffer's gradient is then
// the sum over the points of dS * adjoint into the element the indices name (what the
// backward's buffer gradients compute). Loads of one buffer keep their topological order;
// buffers come in name order. Empty when the body loads none of them as a float.
struct LoadAdjoint {
  Expr load;    // a Load node (load->buffer, load->operands)
  Expr adjoint; // a float expression over b, h, q_idx, kv_idx, score, params and buffers
};
std::vector<LoadAdjoint> load_adjoints(const Expr& body, const std::vector<std::string>& buffers);

// ---- Dependence.cpp ---------------------------------------------------------
struct Dependence {
  bool b = false, h = false, q = false, kv = false, score = false;
  std::vector<std::shared_ptr<const BufferDecl>> buffers; // sorted by name, unique
  std::vector<std::shared_ptr<const ParamDecl>> params;   // sorted by name, unique
};
Dependence analyze_dependence(const Expr& e);

} // namespace flexjit
