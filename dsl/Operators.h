// The typed front end: IntExpr, FloatExpr and BoolExpr wrap Expr so that the
// C++ type system rejects a mask returning a float or a score returning a bool.
// Operators follow torch: int op float promotes to float (in match_types, the
// one place that promotes); `/` and `%` on two ints are floor division and the
// remainder with the divisor's sign (torch's // and %); `&`, `|` on bools are
// logical and/or, on ints bitwise.
#pragma once

#include <concepts>
#include <type_traits>

#include "flexjit/dsl/Expr.h"

namespace flexjit {

class IntExpr;
class FloatExpr;
class BoolExpr;

class IntExpr : public Expr {
public:
  IntExpr(int v);           // NOLINT: literals convert implicitly
  explicit IntExpr(Expr e); // checks that e is an int
};

class FloatExpr : public Expr {
public:
  FloatExpr(float v);          // NOLINT
  FloatExpr(double v);         // NOLINT
  FloatExpr(const IntExpr& v); // NOLINT: int promotes to float, like torch
  explicit FloatExpr(Expr e);  // checks that e is a float
};

class BoolExpr : public Expr {
public:
  BoolExpr(bool v);          // NOLINT
  explicit BoolExpr(Expr e); // checks that e is a bool
};

using Idx = IntExpr;
using Score = FloatExpr;

// ---- Type traits for operator overloading --------------------------------

template <class T> struct ExprOf;
template <> struct ExprOf<IntExpr> { using type = IntExpr; };
template <> struct ExprOf<FloatExpr> { using type = FloatExpr; };
template <> struct ExprOf<BoolExpr> { using type = BoolExpr; };
template <> struct ExprOf<int> { using type = IntExpr; };
template <> struct ExprOf<float> { using type = FloatExpr; };
template <> struct ExprOf<double> { using type = FloatExpr; };
template <> struct ExprOf<bool> { using type = BoolExpr; };
template <class T> using expr_of_t = typename ExprOf<std::remove_cvref_t<T>>::type;

template <class T>
concept ExprLike = requires {
  typename ExprOf<std::remove_cvref_t<T>>::type;
};
template <class T>
concept TypedExpr = std::derived_from<std::remove_cvref_t<T>, Expr>;
template <class T>
concept NumberLike = ExprLike<T> && !std::same_as<expr_of_t<T>, BoolExpr>;
template <class T>
concept BoolLike = ExprLike<T> && std::same_as<expr_of_t<T>, BoolExpr>;
template <class T>
concept IntLike = ExprLike<T> && std::same_as<expr_of_t<T>, IntExpr>;

// An operator needs at least one expression operand (so `1 + 2` stays C++).
template <class A, class B>
concept OneExpr = TypedExpr<A> || TypedExpr<B>;

template <class A, class B>
using arith_t =
    std::conditional_t<std::same_as<expr_of_t<A>, IntExpr> && std::same_as<expr_of_t<B>, IntExpr>,
                       IntExpr, FloatExpr>;

template <class T> expr_of_t<T> to_expr(const T& v) {
  return expr_of_t<T>(v);
}

// Promotes an int operand to float when the other is float; the only place
// implicit promotion happens.
std::pair<Expr, Expr> match_types(Expr a, Expr b);

// Untyped builders behind the operators (they call match_types).
Expr binary(NodeKind kind, Expr a, Expr b);
Expr compare(NodeKind kind, Expr a, Expr b);

// ---- Arithmetic -------------------------------------------------------------

#define FLEXJIT_ARITH(op, kind)                                                                    \
  template <NumberLike A, NumberLike B>                                                            \
  requires OneExpr<A, B> arith_t<A, B>                                                             \
  operator op(const A& a, const B& b) {                                                            \
    return arith_t<A, B>(binary(NodeKind::kind, to_expr(a), to_expr(b)));                          \
  }
FLEXJIT_ARITH(+, Add)
FLEXJIT_ARITH(-, Sub)
FLEXJIT_ARITH(*, Mul)
#undef FLEXJIT_ARITH

// Float division when either side is a float; floor division (torch's //) when both are ints.
template <NumberLike A, NumberLike B>
requires OneExpr<A, B> arith_t<A, B>
operator/(const A& a, const B& b) {
  if constexpr (std::same_as<arith_t<A, B>, IntExpr>)
    return IntExpr(binary(NodeKind::FloorDiv, to_expr(a), to_expr(b)));
  else
    return FloatExpr(binary(NodeKind::Div, to_expr(a), to_expr(b)));
}

// Remainder with the divisor's sign (torch's %), ints only.
template <IntLike A, IntLike B>
requires OneExpr<A, B> IntExpr operator%(const A& a, const B& b) {
  return IntExpr(binary(NodeKind::Mod, to_expr(a), to_expr(b)));
}

IntExpr floor_div(const IntExpr& a, const IntExpr& b);
IntExpr mod(const IntExpr& a, const IntExpr& b);

IntExpr operator-(const IntExpr& a);
FloatExpr operator-(const FloatExpr& a);

// ---- Comparisons ------------------------------------------------------------

#define FLEXJIT_CMP(op, kind, swap)                                                                \
  template <NumberLike A, NumberLike B>                                                            \
  requires OneExpr<A, B> BoolExpr operator op(const A& a, const B& b) {                            \
    if constexpr (swap)                                                                            \
      return BoolExpr(compare(NodeKind::kind, to_expr(b), to_expr(a)));                            \
    else                                                                                           \
      return BoolExpr(compare(NodeKind::kind, to_expr(a), to_expr(b)));                            \
  }
FLEXJIT_CMP(<, Lt, false)
FLEXJIT_CMP(<=, Le, false)
FLEXJIT_CMP(>, Lt, true)
FLEXJIT_CMP(>=, Le, true)
#undef FLEXJIT_CMP

template <ExprLike A, ExprLike B>
requires OneExpr<A, B> &&(BoolLike<A> == BoolLike<B>)BoolExpr operator==(const A& a, const B& b) {
  return BoolExpr(compare(NodeKind::Eq, to_expr(a), to_expr(b)));
}
template <ExprLike A, ExprLike B>
requires OneExpr<A, B> &&(BoolLike<A> == BoolLike<B>)BoolExpr operator!=(const A& a, const B& b) {
  return BoolExpr(compare(NodeKind::Ne, to_expr(a), to_expr(b)));
}

// ---- Logic and bitwise ------------------------------------------------------

template <BoolLike A, BoolLike B>
requires OneExpr<A, B> BoolExpr operator&&(const A& a, const B& b) {
  return BoolExpr(binary(NodeKind::And, to_expr(a), to_expr(b)));
}
template <BoolLike A, BoolLike B>
requires OneExpr<A, B> BoolExpr operator||(const A& a, const B& b) {
  return BoolExpr(binary(NodeKind::Or, to_expr(a), to_expr(b)));
}
template <BoolLike A, BoolLike B>
requires OneExpr<A, B> BoolExpr operator&(const A& a, const B& b) {
  return a && b;
}
template <BoolLike A, BoolLike B>
requires OneExpr<A, B> BoolExpr operator|(const A& a, const B& b) {
  return a || b;
}
template <IntLike A, IntLike B>
requires OneExpr<A, B> IntExpr operator&(const A& a, const B& b) {
  return IntExpr(binary(NodeKind::BitAnd, to_expr(a), to_expr(b)));
}
template <IntLike A, IntLike B>
requires OneExpr<A, B> IntExpr operator|(const A& a, const B& b) {
  return IntExpr(binary(NodeKind::BitOr, to_expr(a), to_expr(b)));
}
BoolExpr operator!(const BoolExpr& a);

// ---- Functions --------------------------------------------------------------

// where(cond, a, b): a where cond holds, else b (torch.where); branches promote.
template <BoolLike C, ExprLike A, ExprLike B>
requires(BoolLike<A> == BoolLike<B>) auto where(const C& cond, const A& a, const B& b) {
  if constexpr (BoolLike<A>) {
    return BoolExpr(
        Node::make(NodeKind::Select, Type::Bool, {to_expr(cond), to_expr(a), to_expr(b)}));
  } else {
    auto [x, y] = match_types(to_expr(a), to_expr(b));
    using R = arith_t<A, B>;
    return R(Node::make(NodeKind::Select, x.type(), {to_expr(cond), x, y}));
  }
}

IntExpr min(const IntExpr& a, const IntExpr& b);
FloatExpr min(const FloatExpr& a, const FloatExpr& b);
IntExpr max(const IntExpr& a, const IntExpr& b);
FloatExpr max(const FloatExpr& a, const FloatExpr& b);
IntExpr clamp(const IntExpr& x, const IntExpr& lo, const IntExpr& hi);
FloatExpr clamp(const FloatExpr& x, const FloatExpr& lo, const FloatExpr& hi);
IntExpr abs(const IntExpr& a);
FloatExpr abs(const FloatExpr& a);

FloatExpr exp(const FloatExpr& a);
FloatExpr exp2(const FloatExpr& a);
FloatExpr log(const FloatExpr& a);
FloatExpr log2(const FloatExpr& a);
FloatExpr sqrt(const FloatExpr& a);
FloatExpr rsqrt(const FloatExpr& a);
FloatExpr tanh(const FloatExpr& a);
// PTX tanh.approx.f32 on the GPU (max relative error about 2^-11); exact tanh elsewhere.
FloatExpr tanh_approx(const FloatExpr& a);
FloatExpr sin(const FloatExpr& a);
FloatExpr cos(const FloatExpr& a);

// Casts: float -> int truncates toward zero (saturating, NaN -> 0); bool -> 0/1.
IntExpr to_int(const Expr& a);
FloatExpr to_float(const Expr& a);
BoolExpr to_bool(const Expr& a); // != 0

} // namespace flexjit
