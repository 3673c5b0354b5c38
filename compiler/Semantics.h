// The scalar semantics of every operation, in one place: the interpreter runs
// them, the simplifier folds constants with them and the interval analysis
// evaluates corners with them, so the three can never disagree. See the top of
// Interpreter.h for the rules these functions implement.
#pragma once

#include <bit>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "flexjit/compiler/Interpreter.h"
#include "flexjit/dsl/Expr.h"
#include "flexjit/dsl/HalfFloat.h"
#include "flexjit/support/Error.h"

namespace flexjit::sem {

// ---- int32: two's complement, wrapping ------------------------------------

inline int32_t add(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) + static_cast<uint32_t>(b));
}
inline int32_t sub(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) - static_cast<uint32_t>(b));
}
inline int32_t mul(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) * static_cast<uint32_t>(b));
}
inline int32_t neg(int32_t a) {
  return static_cast<int32_t>(0u - static_cast<uint32_t>(a));
}
inline int32_t abs(int32_t a) {
  return a < 0 ? neg(a) : a; // abs(INT_MIN) == INT_MIN
}
// Torch's //: rounds toward -inf; x // 0 == 0; INT_MIN // -1 wraps to INT_MIN.
inline int32_t floor_div(int32_t a, int32_t b) {
  if (b == 0)
    return 0;
  if (b == -1)
    return neg(a);
  int32_t q = a / b;
  if (q * b != a && ((a < 0) != (b < 0)))
    --q;
  return q;
}
// Torch's %: the result takes the divisor's sign; x % 0 == 0.
inline int32_t mod(int32_t a, int32_t b) {
  if (b == 0 || b == -1)
    return 0;
  int32_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0)))
    r += b;
  return r;
}
inline int32_t min(int32_t a, int32_t b) {
  return a < b ? a : b;
}
inline int32_t max(int32_t a, int32_t b) {
  return a < b ? b : a;
}

// ---- float: binary32 --------------------------------------------------------

// llvm.minimum / llvm.maximum: NaN propagates, -0 orders below +0.
inline float fmin(float a, float b) {
  if (a != a)
    return a;
  if (b != b)
    return b;
  if (a < b)
    return a;
  if (b < a)
    return b;
  return std::signbit(a) ? a : b;
}
inline float fmax(float a, float b) {
  if (a != a)
    return a;
  if (b != b)
    return b;
  if (a < b)
    return b;
  if (b < a)
    return a;
  return std::signbit(a) ? b : a;
}
inline float fneg(float a) {
  return std::bit_cast<float>(std::bit_cast<uint32_t>(a) ^ 0x80000000u);
}
inline float fabs(float a) {
  return std::bit_cast<float>(std::bit_cast<uint32_t>(a) & 0x7fffffffu);
}
inline float rsqrt(float a) {
  return 1.0f / std::sqrt(a);
}

// ---- casts ------------------------------------------------------------------

// Truncates toward zero, saturating; NaN -> 0.
inline int32_t float_to_int(float f) {
  if (f != f)
    return 0;
  if (f >= 2147483648.0f)
    return INT_MAX;
  if (f <= -2147483648.0f)
    return INT_MIN;
  return static_cast<int32_t>(f);
}
inline float int_to_float(int32_t i) {
  return static_cast<float>(i); // round to nearest
}

// x -> bool is x != 0 (NaN -> true); bool -> number is 0 or 1.
inline Value cast(Type to, Type from, Value v) {
  Value r{};
  r.i = 0;
  switch (to) {
  case Type::Bool:
    r.b = from == Type::Bool ? v.b : from == Type::Int ? v.i != 0 : v.f != 0.0f;
    return r;
  case Type::Int:
    r.i = from == Type::Bool ? (v.b ? 1 : 0) : from == Type::Int ? v.i : float_to_int(v.f);
    return r;
  case Type::Float:
    r.f = from == Type::Bool ? (v.b ? 1.0f : 0.0f) : from == Type::Int ? int_to_float(v.i) : v.f;
    return r;
  }
  return r;
}

// ---- loads ------------------------------------------------------------------

// The element at a linear element offset, converted to its expression type.
inline Value load_element(const TensorView& view, int64_t offset) {
  const char* base = static_cast<const char*>(view.data);
  Value v{};
  switch (view.dtype) {
  case DType::I32:
    std::memcpy(&v.i, base + offset * 4, 4);
    return v;
  case DType::F32:
    std::memcpy(&v.f, base + offset * 4, 4);
    return v;
  case DType::F16:
  case DType::BF16: {
    uint16_t h;
    std::memcpy(&h, base + offset * 2, 2);
    v.f = from_half_bits(h, view.dtype);
    return v;
  }
  case DType::Bool:
    v.b = base[offset] != 0;
    return v;
  }
  return v;
}

// The first dimension whose index is outside [0, size), or -1 when the element exists.
inline int outside_dim(const TensorView& view, const int32_t* idx) {
  for (int d = 0; d < view.rank; ++d)
    if (idx[d] < 0 || idx[d] >= view.sizes[d])
      return d;
  return -1;
}

// A bounds-checked load: 0 (false) outside [0, size) in any dimension.
inline Value load(const TensorView& view, const int32_t* idx) {
  int64_t offset = 0;
  for (int d = 0; d < view.rank; ++d) {
    if (idx[d] < 0 || idx[d] >= view.sizes[d]) {
      Value zero{};
      zero.i = 0;
      if (view.dtype == DType::Bool)
        zero.b = false;
      return zero;
    }
    offset += idx[d] * view.strides[d];
  }
  return load_element(view, offset);
}

// ---- one dispatcher for every computing node ----------------------------------

// The value of a node of `kind` and `type` whose operands (of `operand_type`,
// the type of the first operand) have values `ops`. Leaves and loads are not
// computing nodes; their values come from the caller.
inline Value apply(NodeKind kind, Type type, Type operand_type, const Value* ops) {
  Value r{};
  r.i = 0;
  const bool is_int = operand_type == Type::Int;
  auto set_bool = [&](bool b) {
    r.b = b;
    return r;
  };
  switch (kind) {
  case NodeKind::IntConst:
  case NodeKind::FloatConst:
  case NodeKind::BoolConst:
  case NodeKind::Var:
  case NodeKind::Param:
  case NodeKind::Load:
    FLEXJIT_ASSERT(false, "sem::apply does not evaluate leaves or loads ({})", to_string(kind));
  case NodeKind::Add:
    if (is_int)
      r.i = add(ops[0].i, ops[1].i);
    else
      r.f = ops[0].f + ops[1].f;
    return r;
  case NodeKind::Sub:
    if (is_int)
      r.i = sub(ops[0].i, ops[1].i);
    else
      r.f = ops[0].f - ops[1].f;
    return r;
  case NodeKind::Mul:
    if (is_int)
      r.i = mul(ops[0].i, ops[1].i);
    else
      r.f = ops[0].f * ops[1].f;
    return r;
  case NodeKind::Div:
    r.f = ops[0].f / ops[1].f;
    return r;
  case NodeKind::FloorDiv:
    r.i = floor_div(ops[0].i, ops[1].i);
    return r;
  case NodeKind::Mod:
    r.i = mod(ops[0].i, ops[1].i);
    return r;
  case NodeKind::Min:
    if (is_int)
      r.i = min(ops[0].i, ops[1].i);
    else
      r.f = fmin(ops[0].f, ops[1].f);
    return r;
  case NodeKind::Max:
    if (is_int)
      r.i = max(ops[0].i, ops[1].i);
    else
      r.f = fmax(ops[0].f, ops[1].f);
    return r;
  case NodeKind::Lt:
    return set_bool(is_int ? ops[0].i < ops[1].i : ops[0].f < ops[1].f);
  case NodeKind::Le:
    return set_bool(is_int ? ops[0].i <= ops[1].i : ops[0].f <= ops[1].f);
  case NodeKind::Eq:
    if (operand_type == Type::Bool)
      return set_bool(ops[0].b == ops[1].b);
    return set_bool(is_int ? ops[0].i == ops[1].i : ops[0].f == ops[1].f);
  case NodeKind::Ne:
    if (operand_type == Type::Bool)
      return set_bool(ops[0].b != ops[1].b);
    return set_bool(is_int ? ops[0].i != ops[1].i : ops[0].f != ops[1].f);
  case NodeKind::And:
    return set_bool(ops[0].b && ops[1].b);
  case NodeKind::Or:
    return set_bool(ops[0].b || ops[1].b);
  case NodeKind::Not:
    return set_bool(!ops[0].b);
  case NodeKind::BitAnd:
    r.i = ops[0].i & ops[1].i;
    return r;
  case NodeKind::BitOr:
    r.i = ops[0].i | ops[1].i;
    return r;
  case NodeKind::Neg:
    if (is_int)
      r.i = neg(ops[0].i);
    else
      r.f = fneg(ops[0].f);
    return r;
  case NodeKind::Abs:
    if (is_int)
      r.i = abs(ops[0].i);
    else
      r.f = fabs(ops[0].f);
    return r;
  case NodeKind::Exp:
    r.f = std::exp(ops[0].f);
    return r;
  case NodeKind::Exp2:
    r.f = std::exp2(ops[0].f);
    return r;
  case NodeKind::Log:
    r.f = std::log(ops[0].f);
    return r;
  case NodeKind::Log2:
    r.f = std::log2(ops[0].f);
    return r;
  case NodeKind::Sqrt:
    r.f = std::sqrt(ops[0].f);
    return r;
  case NodeKind::Rsqrt:
    r.f = rsqrt(ops[0].f);
    return r;
  case NodeKind::Tanh:
  case NodeKind::TanhApprox:
    r.f = std::tanh(ops[0].f);
    return r;
  case NodeKind::Sin:
    r.f = std::sin(ops[0].f);
    return r;
  case NodeKind::Cos:
    r.f = std::cos(ops[0].f);
    return r;
  case NodeKind::Select:
    return ops[0].b ? ops[1] : ops[2];
  case NodeKind::Cast:
    return cast(type, operand_type, ops[0]);
  }
  FLEXJIT_ASSERT(false, "unknown node kind {}", static_cast<int>(kind));
}

} // namespace flexjit::sem
