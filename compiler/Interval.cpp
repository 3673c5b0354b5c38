// Interval analysis over a tile. Every node gets a sound over-approximation
// of the values it takes on the tile: ints an int64 interval kept inside the
// int32 range (a result that may wrap becomes the full range), floats an
// interval plus a may-be-NaN flag, bools a three-valued Truth. Sub-expressions
// are treated as independent, so results are sound but not always precise;
// the block-mask builder evaluates the undecided tiles point by point.
#include "flexjit/compiler/Interval.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Semantics.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

using K = NodeKind;

constexpr int64_t kIntMin = INT32_MIN, kIntMax = INT32_MAX;
constexpr float kInf = std::numeric_limits<float>::infinity();
// Loads scan the buffer when the index box has at most this many elements.
constexpr int64_t kMaxScan = 4096;

// The abstract value of one node; which fields matter depends on its type.
struct Abs {
  int64_t lo = kIntMin, hi = kIntMax; // Int
  float flo = -kInf, fhi = kInf;      // Float: the non-NaN values lie in [flo, fhi]
  bool nan = true;                    // Float: NaN is possible
  Truth t = Truth::Unknown;           // Bool
};

Abs int_range(int64_t lo, int64_t hi) {
  Abs a;
  if (lo < kIntMin || hi > kIntMax) // may wrap: anything is possible
    return a;
  a.lo = lo;
  a.hi = hi;
  return a;
}
Abs int_point(int64_t v) {
  return int_range(v, v);
}
Abs float_range(float lo, float hi, bool nan) {
  Abs a;
  if (std::isnan(lo) || std::isnan(hi)) // a corner produced NaN: give up on bounds
    return a;
  a.flo = lo;
  a.fhi = hi;
  a.nan = nan;
  return a;
}
Abs float_point(float v) {
  if (std::isnan(v))
    return Abs{};
  return float_range(v, v, false);
}
Abs truth(Truth t) {
  Abs a;
  a.t = t;
  return a;
}
Abs truth(bool b) {
  return truth(b ? Truth::True : Truth::False);
}
Abs full() {
  return Abs{};
}

Truth t_not(Truth t) {
  return t == Truth::Unknown ? t : (t == Truth::True ? Truth::False : Truth::True);
}
Truth t_and(Truth a, Truth b) {
  if (a == Truth::False || b == Truth::False)
    return Truth::False;
  if (a == Truth::True && b == Truth::True)
    return Truth::True;
  return Truth::Unknown;
}
Truth t_or(Truth a, Truth b) {
  return t_not(t_and(t_not(a), t_not(b)));
}
// True when `always` holds at every point, False when `never` holds at every point.
Truth decide(bool always, bool never) {
  return always ? Truth::True : (never ? Truth::False : Truth::Unknown);
}

Abs join(Type type, const Abs& a, const Abs& b) {
  switch (type) {
  case Type::Int:
    return int_range(std::min(a.lo, b.lo), std::max(a.hi, b.hi));
  case Type::Float:
    return float_range(std::min(a.flo, b.flo), std::max(a.fhi, b.fhi), a.nan || b.nan);
  case Type::Bool:
    return truth(a.t == b.t ? a.t : Truth::Unknown);
  }
  return full();
}

int64_t floor_div64(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (q * b != a && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// min and max of f over the four corners of [alo, ahi] x [blo, bhi].
template <class T, class F> std::pair<T, T> corners(T alo, T ahi, T blo, T bhi, F f) {
  T c[4] = {f(alo, blo), f(alo, bhi), f(ahi, blo), f(ahi, bhi)};
  return {*std::min_element(c, c + 4), *std::max_element(c, c + 4)};
}

// a // b for b in [blo, bhi] with 0 excluded: floor division is monotone in a,
// and in b on each side of zero, so the corners bound it.
Abs floor_div_nonzero(const Abs& a, int64_t blo, int64_t bhi) {
  auto [lo, hi] = corners(a.lo, a.hi, blo, bhi, floor_div64);
  return int_range(lo, hi);
}

Abs int_floor_div(const Abs& a, const Abs& b) {
  if (b.lo > 0 || b.hi < 0)
    return floor_div_nonzero(a, b.lo, b.hi);
  Abs r = int_point(0); // x // 0 == 0
  if (b.lo < 0)
    r = join(Type::Int, r, floor_div_nonzero(a, b.lo, -1));
  if (b.hi > 0)
    r = join(Type::Int, r, floor_div_nonzero(a, 1, b.hi));
  return r;
}

Abs int_mod(const Abs& a, const Abs& b) {
  if (b.lo == b.hi && b.lo != 0) {
    // a % c == a - c * (a // c): exact while a stays within one period.
    int64_t c = b.lo;
    int64_t k = floor_div64(a.lo, c);
    if (floor_div64(a.hi, c) == k)
      return int_range(a.lo - c * k, a.hi - c * k);
  }
  if (b.lo > 0) {
    // The result lies in [0, c-1], and never above a when a >= 0.
    int64_t hi = b.hi - 1;
    if (a.lo >= 0)
      hi = std::min(hi, a.hi);
    return int_range(0, hi);
  }
  if (b.hi < 0)
    return int_range(b.lo + 1, 0);
  return int_range(std::min<int64_t>(b.lo + 1, 0), std::max<int64_t>(b.hi - 1, 0)); // x % 0 == 0
}

// The smallest 2^k - 1 >= v, for v >= 0.
int64_t all_ones_above(int64_t v) {
  int64_t m = 0;
  while (m < v)
    m = m * 2 + 1;
  return m;
}

Abs int_bit_and(const Abs& a, const Abs& b) {
  if (a.lo >= 0 && b.lo >= 0)
    return int_range(0, std::min(a.hi, b.hi));
  if (a.lo >= 0)
    return int_range(0, a.hi);
  if (b.lo >= 0)
    return int_range(0, b.hi);
  return full();
}

Abs int_bit_or(const Abs& a, const Abs& b) {
  if (a.lo >= 0 && b.lo >= 0)
    return int_range(std::max(a.lo, b.lo), all_ones_above(std::max(a.hi, b.hi)));
  if (a.hi < 0 || b.hi < 0) // a negative operand keeps the sign bit set
    return int_range(kIntMin, -1);
  return full();
}

Abs int_abs(const Abs& a) {
  if (a.lo == kIntMin) // abs(INT_MIN) wraps to INT_MIN
    return full();
  if (a.lo >= 0)
    return a;
  if (a.hi <= 0)
    return int_range(-a.hi, -a.lo);
  return int_range(0, std::max(-a.lo, a.hi));
}

bool may_be(const Abs& a, float v) {
  return a.flo <= v && v <= a.fhi;
}

// Float +, - and * are monotone with monotone rounding, so rounded corners
// bound the rounded results; only inf - inf and 0 * inf make new NaNs.
Abs float_arith(K kind, const Abs& a, const Abs& b) {
  bool nan = a.nan || b.nan;
  if (kind == K::Add) {
    nan = nan || (may_be(a, kInf) && may_be(b, -kInf)) || (may_be(a, -kInf) && may_be(b, kInf));
    return float_range(a.flo + b.flo, a.fhi + b.fhi, nan);
  }
  if (kind == K::Sub) {
    nan = nan || (may_be(a, kInf) && may_be(b, kInf)) || (may_be(a, -kInf) && may_be(b, -kInf));
    return float_range(a.flo - b.fhi, a.fhi - b.flo, nan);
  }
  FLEXJIT_ASSERT(kind == K::Mul, "float_arith does not handle {}", to_string(kind));
  bool a_zero = may_be(a, 0.0f), b_zero = may_be(b, 0.0f);
  bool a_inf = may_be(a, kInf) || may_be(a, -kInf), b_inf = may_be(b, kInf) || may_be(b, -kInf);
  nan = nan || (a_zero && b_inf) || (a_inf && b_zero);
  auto [lo, hi] = corners(a.flo, a.fhi, b.flo, b.fhi, [](float x, float y) { return x * y; });
  return float_range(lo, hi, nan);
}

// Truth of a comparison from the operand ranges.
Truth compare(K kind, Type type, const Abs& a, const Abs& b) {
  if (type == Type::Bool) {
    if (a.t == Truth::Unknown || b.t == Truth::Unknown)
      return Truth::Unknown;
    return decide((a.t == b.t) == (kind == K::Eq), (a.t == b.t) != (kind == K::Eq));
  }
  if (type == Type::Int) {
    bool disjoint = a.hi < b.lo || b.hi < a.lo;
    bool same_point = a.lo == a.hi && b.lo == b.hi && a.lo == b.lo;
    if (kind == K::Lt)
      return decide(a.hi < b.lo, a.lo >= b.hi);
    if (kind == K::Le)
      return decide(a.hi <= b.lo, a.lo > b.hi);
    if (kind == K::Eq)
      return decide(same_point, disjoint);
    return decide(disjoint, same_point); // Ne
  }
  // Floats: every ordered comparison is false with a NaN operand, != is true.
  bool no_nan = !a.nan && !b.nan;
  bool disjoint = a.fhi < b.flo || b.fhi < a.flo;
  bool same_point = a.flo == a.fhi && b.flo == b.fhi && a.flo == b.flo;
  if (kind == K::Lt)
    return decide(no_nan && a.fhi < b.flo, a.flo >= b.fhi);
  if (kind == K::Le)
    return decide(no_nan && a.fhi <= b.flo, a.flo > b.fhi);
  if (kind == K::Eq)
    return decide(no_nan && same_point, disjoint);
  return decide(disjoint, no_nan && same_point); // Ne
}

Abs cast(Type to, Type from, const Abs& a) {
  switch (to) {
  case Type::Bool:
    if (from == Type::Int)
      return truth(decide(a.lo > 0 || a.hi < 0, a.lo == 0 && a.hi == 0));
    if (from == Type::Float) // NaN != 0 is true
      return truth(decide(a.flo > 0 || a.fhi < 0, !a.nan && a.flo == 0 && a.fhi == 0));
    return a;
  case Type::Int:
    if (from == Type::Bool)
      return a.t == Truth::Unknown ? int_range(0, 1) : int_point(a.t == Truth::True);
    if (from == Type::Float) { // monotone, saturating; NaN -> 0
      Abs r = int_range(sem::float_to_int(a.flo), sem::float_to_int(a.fhi));
      return a.nan ? join(Type::Int, r, int_point(0)) : r;
    }
    return a;
  case Type::Float:
    if (from == Type::Bool)
      return a.t == Truth::Unknown ? float_range(0, 1, false) : float_point(a.t == Truth::True);
    if (from == Type::Int)
      return float_range(sem::int_to_float(static_cast<int32_t>(a.lo)),
                         sem::int_to_float(static_cast<int32_t>(a.hi)), false);
    return a;
  }
  return full();
}

Abs full_of(DType dtype) {
  return dtype == DType::I32 ? int_range(kIntMin, kIntMax) : full();
}

// [min, max] of a 1-D i32 buffer over [lo, hi] (and 0 when an index was out of range).
Abs scan_i32(const TensorView& view, int64_t lo, int64_t hi, bool outside) {
  const int32_t* data = static_cast<const int32_t*>(view.data);
  const int64_t stride = view.strides[0];
  int32_t mn = outside ? 0 : INT32_MAX, mx = outside ? 0 : INT32_MIN;
  for (int64_t i = lo; i <= hi; ++i) {
    mn = std::min(mn, data[i * stride]);
    mx = std::max(mx, data[i * stride]);
  }
  return int_range(mn, mx);
}

// A load over a box of indices: exact by scanning host data when the box is
// small, else the element type's full range. Out-of-range indices read 0.
Abs load(const TensorView& view, DType dtype, const std::vector<const Abs*>& idx) {
  Type type = value_type(dtype);
  int64_t lo[kMaxRank], hi[kMaxRank];
  bool outside = false;
  int64_t count = 1;
  for (int d = 0; d < view.rank; ++d) {
    lo[d] = std::max<int64_t>(idx[d]->lo, 0);
    hi[d] = std::min<int64_t>(idx[d]->hi, view.sizes[d] - 1);
    outside = outside || idx[d]->lo < 0 || idx[d]->hi >= view.sizes[d];
    if (lo[d] > hi[d]) // every index of this dimension is out of range
      return type == Type::Bool ? truth(false)
                                : (type == Type::Int ? int_point(0) : float_point(0.0f));
    count = std::min<int64_t>(count * (hi[d] - lo[d] + 1), kMaxScan + 1);
  }
  if (view.device != Device::Host || count > kMaxScan)
    return full_of(dtype);
  if (view.rank == 1 && dtype == DType::I32) // the common case (document ids): a tight loop
    return scan_i32(view, lo[0], hi[0], outside);

  Abs r;
  bool first = true;
  auto add = [&](Value v) {
    Abs p = type == Type::Bool ? truth(v.b) : type == Type::Int ? int_point(v.i) : float_point(v.f);
    r = first ? p : join(type, r, p);
    first = false;
  };
  if (outside) {
    Value zero{};
    add(zero);
  }
  int64_t at[kMaxRank];
  std::copy(lo, lo + view.rank, at);
  for (;;) {
    int64_t offset = 0;
    for (int d = 0; d < view.rank; ++d)
      offset += at[d] * view.strides[d];
    add(sem::load_element(view, offset));
    int d = view.rank - 1;
    while (d >= 0 && at[d] == hi[d]) {
      at[d] = lo[d];
      --d;
    }
    if (d < 0)
      break;
    ++at[d];
  }
  return r;
}

IntRange clamp32(IntRange r) {
  FLEXJIT_ASSERT(r.lo <= r.hi, "empty tile range [{}, {}]", r.lo, r.hi);
  return IntRange{std::clamp(r.lo, kIntMin, kIntMax), std::clamp(r.hi, kIntMin, kIntMax)};
}

} // namespace

IntervalAnalysis::IntervalAnalysis(const Expr& body, const Bindings& bindings) {
  FLEXJIT_ASSERT(body && body.type() == Type::Bool, "interval analysis needs a bool body");
  root_ = optimize(body);
  sig_ = ModSignature::of({root_});
  args_ = resolve(sig_, bindings);
  order_ = topo_order(root_);
  std::unordered_map<const Node*, int32_t> pos;
  for (const Expr& e : order_) {
    std::vector<int32_t> ops;
    for (const Expr& op : e->operands)
      ops.push_back(pos.at(op.get()));
    operands_.push_back(std::move(ops));
    pos.emplace(e.get(), static_cast<int32_t>(pos.size()));
  }
}

Truth IntervalAnalysis::classify(const Tile& tile) const {
  const IntRange vars[4] = {clamp32(tile.b), clamp32(tile.h), clamp32(tile.q), clamp32(tile.kv)};
  std::vector<Abs> val(order_.size());
  for (size_t i = 0; i < order_.size(); ++i) {
    const Node& n = *order_[i];
    auto op = [&](size_t k) -> const Abs& { return val[operands_[i][k]]; };
    const Type ot = n.operands.empty() ? n.type : n.operands[0].type();
    const bool ints = ot == Type::Int;
    Abs& r = val[i];
    switch (n.kind) {
    case K::IntConst:
      r = int_point(n.ival);
      break;
    case K::FloatConst:
      r = float_point(n.fval);
      break;
    case K::BoolConst:
      r = truth(n.ival != 0);
      break;
    case K::Var:
      if (n.ival == static_cast<int>(Var::Score))
        r = full();
      else
        r = int_range(vars[n.ival].lo, vars[n.ival].hi);
      break;
    case K::Param:
      r = n.type == Type::Int ? int_point(args_.int_params[sig_.param_slot(*n.param)])
                              : float_point(args_.float_params[sig_.param_slot(*n.param)]);
      break;
    case K::Load: {
      std::vector<const Abs*> idx;
      for (size_t k = 0; k < n.operands.size(); ++k)
        idx.push_back(&op(k));
      r = load(args_.buffers[sig_.buffer_slot(*n.buffer)], n.buffer->dtype, idx);
      break;
    }
    case K::Add:
      r = ints ? int_range(op(0).lo + op(1).lo, op(0).hi + op(1).hi)
               : float_arith(n.kind, op(0), op(1));
      break;
    case K::Sub:
      r = ints ? int_range(op(0).lo - op(1).hi, op(0).hi - op(1).lo)
               : float_arith(n.kind, op(0), op(1));
      break;
    case K::Mul:
      if (ints) {
        auto [lo, hi] = corners(op(0).lo, op(0).hi, op(1).lo, op(1).hi,
                                [](int64_t x, int64_t y) { return x * y; });
        r = int_range(lo, hi);
      } else {
        r = float_arith(n.kind, op(0), op(1));
      }
      break;
    case K::FloorDiv:
      r = int_floor_div(op(0), op(1));
      break;
    case K::Mod:
      r = int_mod(op(0), op(1));
      break;
    case K::Min:
    case K::Max: {
      const Abs &a = op(0), &b = op(1);
      bool is_min = n.kind == K::Min;
      if (ints) {
        r = is_min ? int_range(std::min(a.lo, b.lo), std::min(a.hi, b.hi))
                   : int_range(std::max(a.lo, b.lo), std::max(a.hi, b.hi));
      } else { // NaN propagates; ordering of the non-NaN values is plain min/max
        r = is_min ? float_range(std::min(a.flo, b.flo), std::min(a.fhi, b.fhi), a.nan || b.nan)
                   : float_range(std::max(a.flo, b.flo), std::max(a.fhi, b.fhi), a.nan || b.nan);
      }
      break;
    }
    case K::Lt:
    case K::Le:
    case K::Eq:
    case K::Ne:
      r = truth(compare(n.kind, ot, op(0), op(1)));
      break;
    case K::And:
      r = truth(t_and(op(0).t, op(1).t));
      break;
    case K::Or:
      r = truth(t_or(op(0).t, op(1).t));
      break;
    case K::Not:
      r = truth(t_not(op(0).t));
      break;
    case K::BitAnd:
      r = int_bit_and(op(0), op(1));
      break;
    case K::BitOr:
      r = int_bit_or(op(0), op(1));
      break;
    case K::Neg:
      r = ints ? int_range(-op(0).hi, -op(0).lo) : float_range(-op(0).fhi, -op(0).flo, op(0).nan);
      break;
    case K::Abs:
      if (ints) {
        r = int_abs(op(0));
      } else {
        const Abs& a = op(0);
        r = a.flo >= 0   ? a
            : a.fhi <= 0 ? float_range(-a.fhi, -a.flo, a.nan)
                         : float_range(0.0f, std::max(-a.flo, a.fhi), a.nan);
      }
      break;
    case K::Select:
      if (op(0).t == Truth::Unknown)
        r = join(n.type, op(1), op(2));
      else
        r = op(0).t == Truth::True ? op(1) : op(2);
      break;
    case K::Cast:
      r = cast(n.type, ot, op(0));
      break;
    case K::Div:
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
      // The library functions promise no monotonicity; stay sound.
      r = full();
      break;
    }
  }
  return val.back().t;
}

} // namespace flexjit
