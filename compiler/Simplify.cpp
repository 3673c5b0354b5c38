// Constant folding and exact algebraic rules. Folding evaluates with
// sem::apply, the interpreter's own semantics, so simplify(e) computes
// bit-for-bit what e computes (NaN payloads aside).
#include <cmath>
#include <optional>

#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Semantics.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

using K = NodeKind;

bool is_int(const Expr& e, int64_t v) {
  return e.kind() == K::IntConst && e->ival == v;
}
// Bit-exact: x * 1.0 -> x holds, but 0.0 and -0.0 are different rules.
bool is_float_bits(const Expr& e, float v) {
  return e.kind() == K::FloatConst &&
         std::bit_cast<uint32_t>(e->fval) == std::bit_cast<uint32_t>(v);
}
bool is_bool(const Expr& e, bool v) {
  return e.kind() == K::BoolConst && (e->ival != 0) == v;
}
bool is_zero(const Expr& e) {
  return (e.kind() == K::IntConst && e->ival == 0) ||
         (e.kind() == K::FloatConst && e->fval == 0.0f);
}

Value const_value(const Expr& e) {
  Value v{};
  if (e.kind() == K::FloatConst)
    v.f = e->fval;
  else if (e.kind() == K::BoolConst)
    v.b = e->ival != 0;
  else
    v.i = static_cast<int32_t>(e->ival);
  return v;
}

Expr make_const(Type type, Value v) {
  switch (type) {
  case Type::Bool:
    return make_bool(v.b);
  case Type::Int:
    return make_int(v.i);
  case Type::Float:
    return make_float(v.f);
  }
  return Expr();
}

// 1/c when x / c == x * (1/c) for every x: c a power of two whose reciprocal
// is a normal float (exact, and safe from flush-to-zero on the GPU).
std::optional<float> exact_reciprocal(float c) {
  if (!std::isfinite(c) || c == 0.0f)
    return std::nullopt;
  int exp = 0;
  if (std::fabs(std::frexp(c, &exp)) != 0.5f)
    return std::nullopt;
  float r = 1.0f / c;
  if (!std::isnormal(r) || r * c != 1.0f)
    return std::nullopt;
  return r;
}

// Simplifies one node whose operands are already simplified. `original`, when
// given, is the node being rebuilt (kept pointer-identical if nothing changes).
Expr simplify_node(K kind, Type type, std::vector<Expr> ops, const Expr* original);

Expr mk(K kind, Type type, std::vector<Expr> ops) {
  return simplify_node(kind, type, std::move(ops), nullptr);
}

Expr simplify_node(K kind, Type type, std::vector<Expr> ops, const Expr* original) {
  auto build = [&]() { return original ? rebuild(*original, ops) : Node::make(kind, type, ops); };
  if (ops.empty() || kind == K::Load)
    return build();

  if ((kind == K::Div || kind == K::FloorDiv || kind == K::Mod) && is_zero(ops[1]))
    fail("division by a constant zero in {}; expected a nonzero divisor", print(build()));

  bool all_const = true;
  for (const Expr& op : ops)
    all_const = all_const && op->is_const();
  if (all_const) {
    Value vals[3] = {};
    for (size_t i = 0; i < ops.size(); ++i)
      vals[i] = const_value(ops[i]);
    return make_const(type, sem::apply(kind, type, ops[0].type(), vals));
  }

  // Constants go right, so rules below look only there (CSE orders the same way).
  if (is_commutative(kind) && ops[0]->is_const() && !ops[1]->is_const())
    std::swap(ops[0], ops[1]);

  const Expr& a = ops[0];
  const Expr& b = ops.size() > 1 ? ops[1] : ops[0];
  const Type ot = a.type();
  const bool ints = ot == Type::Int;
  switch (kind) {
  case K::IntConst:
  case K::FloatConst:
  case K::BoolConst:
  case K::Var:
  case K::Param:
  case K::Load:
  case K::Exp:
  case K::Exp2:
  case K::Log:
  case K::Log2:
  case K::Sqrt:
  case K::Rsqrt:
  case K::Tanh:
  case K::TanhApprox:
  case K::Sin:
  case K::Cos:
  case K::Cast:
    break;
  case K::Add:
    if (ints) {
      if (is_int(b, 0))
        return a; // x + 0
      // (x + c1) + c2 -> x + (c1 + c2), exact in wrap-around arithmetic.
      if (a.kind() == K::Add && a->operands[1].kind() == K::IntConst && b.kind() == K::IntConst)
        return mk(K::Add, type,
                  {a->operands[0], make_int(sem::add(static_cast<int32_t>(a->operands[1]->ival),
                                                     static_cast<int32_t>(b->ival)))});
    } else if (is_float_bits(b, -0.0f)) {
      return a; // x + -0.0 (x + 0.0 is not exact: -0.0 + 0.0 == +0.0)
    }
    break;
  case K::Sub:
    if (ints) {
      if (a.same_as(b))
        return make_int(0);
      if (b.kind() == K::IntConst) // x - c -> x + (-c): one canonical form
        return mk(K::Add, type, {a, make_int(sem::neg(static_cast<int32_t>(b->ival)))});
      if (is_int(a, 0))
        return mk(K::Neg, type, {b});
    } else if (is_float_bits(b, 0.0f)) {
      return a; // x - 0.0
    }
    break;
  case K::Mul:
    if (ints) {
      if (is_int(b, 1))
        return a;
      if (is_int(b, 0))
        return b;
      if (a.kind() == K::Mul && a->operands[1].kind() == K::IntConst && b.kind() == K::IntConst)
        return mk(K::Mul, type,
                  {a->operands[0], make_int(sem::mul(static_cast<int32_t>(a->operands[1]->ival),
                                                     static_cast<int32_t>(b->ival)))});
    } else if (is_float_bits(b, 1.0f)) {
      return a;
    }
    break;
  case K::Div:
    if (is_float_bits(b, 1.0f))
      return a;
    if (b.kind() == K::FloatConst)
      if (std::optional<float> r = exact_reciprocal(b->fval))
        return mk(K::Mul, type, {a, make_float(*r)});
    break;
  case K::FloorDiv:
    if (is_int(b, 1))
      return a;
    if (is_int(b, -1)) // INT_MIN // -1 == INT_MIN == -INT_MIN
      return mk(K::Neg, type, {a});
    break;
  case K::Mod:
    if (is_int(b, 1) || is_int(b, -1))
      return make_int(0);
    break;
  case K::Min:
  case K::Max:
    if (a.same_as(b))
      return a;
    break;
  case K::Lt:
  case K::Le:
    if (ints && a.same_as(b)) // not for floats: NaN < NaN and NaN <= NaN are false
      return make_bool(kind == K::Le);
    break;
  case K::Eq:
  case K::Ne:
    if (ot != Type::Float && a.same_as(b))
      return make_bool(kind == K::Eq);
    if (ot == Type::Bool && b.kind() == K::BoolConst) // x == true -> x, x != true -> !x, ...
      return (b->ival != 0) == (kind == K::Eq) ? a : mk(K::Not, type, {a});
    break;
  case K::And:
    if (a.same_as(b) || is_bool(b, true))
      return a;
    if (is_bool(b, false))
      return b;
    break;
  case K::Or:
    if (a.same_as(b) || is_bool(b, false))
      return a;
    if (is_bool(b, true))
      return b;
    break;
  case K::Not: {
    const std::vector<Expr>& xs = a->operands;
    if (a.kind() == K::Not)
      return xs[0];
    // !(x == y) is x != y for every type (NaN != NaN is true); the order
    // flip is exact only for ints (a NaN makes both x < y and y <= x false).
    if (a.kind() == K::Eq)
      return mk(K::Ne, type, xs);
    if (a.kind() == K::Ne)
      return mk(K::Eq, type, xs);
    if (a.kind() == K::Lt && xs[0].type() == Type::Int)
      return mk(K::Le, type, {xs[1], xs[0]});
    if (a.kind() == K::Le && xs[0].type() == Type::Int)
      return mk(K::Lt, type, {xs[1], xs[0]});
    break;
  }
  case K::BitAnd:
  case K::BitOr:
    if (a.same_as(b))
      return a;
    break;
  case K::Neg:
    if (a.kind() == K::Neg)
      return a->operands[0];
    break;
  case K::Abs:
    if (a.kind() == K::Abs)
      return a;
    break;
  case K::Select:
    if (a.kind() == K::BoolConst)
      return a->ival ? ops[1] : ops[2];
    if (ops[1].same_as(ops[2]))
      return ops[1];
    if (a.kind() == K::Not) // where(!c, x, y) -> where(c, y, x)
      return mk(K::Select, type, {a->operands[0], ops[2], ops[1]});
    break;
  }
  return build();
}

class Simplifier : public Mutator {
protected:
  Expr visit(const Expr& original, std::vector<Expr> ops) override {
    return simplify_node(original.kind(), original.type(), std::move(ops), &original);
  }
};

} // namespace

Expr simplify(const Expr& e) {
  FLEXJIT_ASSERT(e, "simplify needs a non-null expression");
  Expr cur = e;
  // Each pass applies every rule bottom-up once; rules only shrink or
  // canonicalize, so a few passes reach the fixed point.
  for (int pass = 0; pass < 64; ++pass) {
    Expr next = Simplifier().mutate(cur);
    if (next.same_as(cur))
      return cur;
    cur = next;
  }
  return cur;
}

} // namespace flexjit
