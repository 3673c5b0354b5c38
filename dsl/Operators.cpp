#include "flexjit/dsl/Operators.h"

#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

Expr checked(Expr e, Type want, const char* handle) {
  if (!e)
    fail("an empty expression was used where {} was expected", handle);
  if (e.type() != want)
    fail("a {} expression was used where {} was expected", to_string(e.type()), handle);
  return e;
}

bool is_zero_const(const Expr& e) {
  return (e.kind() == NodeKind::IntConst && e->ival == 0) ||
         (e.kind() == NodeKind::FloatConst && e->fval == 0.0f);
}

Expr unary(NodeKind kind, const Expr& a) {
  return Node::make(kind, a.type(), {a});
}

} // namespace

IntExpr::IntExpr(int v) : Expr(make_int(v)) {}
IntExpr::IntExpr(Expr e) : Expr(checked(std::move(e), Type::Int, "an int (IntExpr)")) {}

FloatExpr::FloatExpr(float v) : Expr(make_float(v)) {}
FloatExpr::FloatExpr(double v) : Expr(make_float(static_cast<float>(v))) {}
FloatExpr::FloatExpr(const IntExpr& v) : Expr(to_float(v)) {}
FloatExpr::FloatExpr(Expr e) : Expr(checked(std::move(e), Type::Float, "a float (FloatExpr)")) {}

BoolExpr::BoolExpr(bool v) : Expr(make_bool(v)) {}
BoolExpr::BoolExpr(Expr e) : Expr(checked(std::move(e), Type::Bool, "a bool (BoolExpr)")) {}

std::pair<Expr, Expr> match_types(Expr a, Expr b) {
  if (a.type() == b.type())
    return {a, b};
  if (a.type() == Type::Int && b.type() == Type::Float)
    return {to_float(a), b};
  if (a.type() == Type::Float && b.type() == Type::Int)
    return {a, to_float(b)};
  fail("cannot combine a {} with a {}; cast one of them explicitly", to_string(a.type()),
       to_string(b.type()));
}

Expr binary(NodeKind kind, Expr a, Expr b) {
  auto [x, y] = match_types(std::move(a), std::move(b));
  if ((kind == NodeKind::Div || kind == NodeKind::FloorDiv || kind == NodeKind::Mod) &&
      is_zero_const(y))
    fail("division by a constant zero in {}({}, 0); expected a nonzero divisor", to_string(kind),
         to_string(x.type()));
  return Node::make(kind, x.type(), {x, y});
}

Expr compare(NodeKind kind, Expr a, Expr b) {
  auto [x, y] = match_types(std::move(a), std::move(b));
  return Node::make(kind, Type::Bool, {x, y});
}

IntExpr floor_div(const IntExpr& a, const IntExpr& b) {
  return a / b;
}
IntExpr mod(const IntExpr& a, const IntExpr& b) {
  return a % b;
}

IntExpr operator-(const IntExpr& a) {
  return IntExpr(unary(NodeKind::Neg, a));
}
FloatExpr operator-(const FloatExpr& a) {
  return FloatExpr(unary(NodeKind::Neg, a));
}
BoolExpr operator!(const BoolExpr& a) {
  return BoolExpr(unary(NodeKind::Not, a));
}

IntExpr min(const IntExpr& a, const IntExpr& b) {
  return IntExpr(binary(NodeKind::Min, a, b));
}
FloatExpr min(const FloatExpr& a, const FloatExpr& b) {
  return FloatExpr(binary(NodeKind::Min, a, b));
}
IntExpr max(const IntExpr& a, const IntExpr& b) {
  return IntExpr(binary(NodeKind::Max, a, b));
}
FloatExpr max(const FloatExpr& a, const FloatExpr& b) {
  return FloatExpr(binary(NodeKind::Max, a, b));
}
IntExpr clamp(const IntExpr& x, const IntExpr& lo, const IntExpr& hi) {
  return min(max(x, lo), hi);
}
FloatExpr clamp(const FloatExpr& x, const FloatExpr& lo, const FloatExpr& hi) {
  return min(max(x, lo), hi);
}
IntExpr abs(const IntExpr& a) {
  return IntExpr(unary(NodeKind::Abs, a));
}
FloatExpr abs(const FloatExpr& a) {
  return FloatExpr(unary(NodeKind::Abs, a));
}

#define FLEXJIT_MATH(fn, kind)                                                                     \
  FloatExpr fn(const FloatExpr& a) {                                                               \
    return FloatExpr(unary(NodeKind::kind, a));                                                    \
  }
FLEXJIT_MATH(exp, Exp)
FLEXJIT_MATH(exp2, Exp2)
FLEXJIT_MATH(log, Log)
FLEXJIT_MATH(log2, Log2)
FLEXJIT_MATH(sqrt, Sqrt)
FLEXJIT_MATH(rsqrt, Rsqrt)
FLEXJIT_MATH(tanh, Tanh)
FLEXJIT_MATH(tanh_approx, TanhApprox)
FLEXJIT_MATH(sin, Sin)
FLEXJIT_MATH(cos, Cos)
#undef FLEXJIT_MATH

namespace {
Expr cast(Type to, const Expr& a) {
  if (!a)
    fail("cannot cast an empty expression");
  if (a.type() == to)
    return a;
  return Node::make(NodeKind::Cast, to, {a});
}
} // namespace

IntExpr to_int(const Expr& a) {
  return IntExpr(cast(Type::Int, a));
}
FloatExpr to_float(const Expr& a) {
  return FloatExpr(cast(Type::Float, a));
}
BoolExpr to_bool(const Expr& a) {
  return BoolExpr(cast(Type::Bool, a));
}

} // namespace flexjit
