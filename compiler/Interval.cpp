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

#include "flexjit/compiler/IntervalRules.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Semantics.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

using K = NodeKind;

constexpr int64_t kIntMin = INT32_MIN, kIntMax = INT32_MAX;
constexpr float kInf = std::numeric_limits<float>::infinity();

// The abstract value of one node; which fields matter depends on its type.
struct Abs {
  int64_t lo = kIntMin, hi = kIntMax; // Int
  float flo = -kInf, fhi = kInf;      // Float: the non-NaN values lie in [flo, fhi]
  bool nan = true;                    // Float: NaN is possible
  Truth t = Truth::Unknown;           // Bool
};

Abs abs_of(iv::Range r) {
  Abs a;
  a.lo = r.lo;
  a.hi = r.hi;
  return a;
}
iv::Range range_of(const Abs& a) {
  return iv::Range{a.lo, a.hi};
}
Abs int_range(int64_t lo, int64_t hi) {
  return abs_of(iv::range(lo, hi));
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

Truth as_truth(uint8_t t) {
  return static_cast<Truth>(t);
}
uint8_t raw(Truth t) {
  return static_cast<uint8_t>(t);
}
Truth t_and(Truth a, Truth b) {
  return as_truth(iv::t_and(raw(a), raw(b)));
}
Truth t_or(Truth a, Truth b) {
  return as_truth(iv::t_or(raw(a), raw(b)));
}
Truth t_not(Truth t) {
  return as_truth(iv::t_not(raw(t)));
}
Truth decide(bool always, bool never) {
  return as_truth(iv::decide(always, never));
}
Abs join(Type type, const Abs& a, const Abs& b) {
  switch (type) {
  case Type::Int:
    return abs_of(iv::join(range_of(a), range_of(b)));
  case Type::Float:
    return float_range(std::min(a.flo, b.flo), std::max(a.fhi, b.fhi), a.nan || b.nan);
  case Type::Bool:
    return truth(as_truth(iv::t_join(raw(a.t), raw(b.t))));
  }
  return full();
}

// min and max of f over the four corners of [alo, ahi] x [blo, bhi].
template <class T, class F> std::pair<T, T> corners(T alo, T ahi, T blo, T bhi, F f) {
  T c[4] = {f(alo, blo), f(alo, bhi), f(ahi, blo), f(ahi, bhi)};
  return {*std::min_element(c, c + 4), *std::max_element(c, c + 4)};
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
  const iv::Cmp cmp = kind == K::Lt   ? iv::Cmp::Lt
                      : kind == K::Le ? iv::Cmp::Le
                      : kind == K::Eq ? iv::Cmp::Eq
                                      : iv::Cmp::Ne;
  if (type == Type::Bool)
    return as_truth(iv::compare_truths(cmp, raw(a.t), raw(b.t)));
  if (type == Type::Int)
    return as_truth(iv::compare(cmp, range_of(a), range_of(b)));
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
      return truth(as_truth(iv::int_to_bool(range_of(a))));
    if (from == Type::Float) // NaN != 0 is true
      return truth(decide(a.flo > 0 || a.fhi < 0, !a.nan && a.flo == 0 && a.fhi == 0));
    return a;
  case Type::Int:
    if (from == Type::Bool)
      return abs_of(iv::bool_to_int(raw(a.t)));
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
  struct Reader { // iv::scan_rank1's view of a host int32 buffer
    const int32_t* data;
    int64_t element(int, uint8_t, int64_t offset) const { return data[offset]; }
  };
  int64_t mn = outside ? 0 : INT32_MAX, mx = outside ? 0 : INT32_MIN;
  iv::scan_rank1(Reader{static_cast<const int32_t*>(view.data)}, 0, iv::kLoadI32, lo, hi,
                 view.strides[0], mn, mx);
  return int_range(mn, mx);
}

// A load over a box of indices: exact by scanning host data when the box is
// small, else the element type's full range. Out-of-range indices read 0, but a
// data-indexed load (`checked`) that may fall outside is the full range: undecided, so
// that the point outside is evaluated and raises.
Abs load(const TensorView& view, DType dtype, const std::vector<const Abs*>& idx, bool checked) {
  Type type = value_type(dtype);
  iv::Range ranges[kMaxRank];
  for (int d = 0; d < view.rank; ++d)
    ranges[d] = range_of(*idx[d]);
  const iv::Box box = iv::load_box(ranges, view.sizes.data(), view.rank);
  if (checked && (box.outside || box.none))
    return full_of(dtype);
  if (box.none) // every index of a dimension is out of range
    return type == Type::Bool ? truth(false)
                              : (type == Type::Int ? int_point(0) : float_point(0.0f));
  if (view.device != Device::Host || box.count > iv::kMaxScan)
    return full_of(dtype);
  if (view.rank == 1 && dtype == DType::I32) // the common case (document ids): a tight loop
    return scan_i32(view, box.lo[0], box.hi[0], box.outside);

  Abs r;
  bool first = true;
  auto add = [&](Value v) {
    Abs p = type == Type::Bool ? truth(v.b) : type == Type::Int ? int_point(v.i) : float_point(v.f);
    r = first ? p : join(type, r, p);
    first = false;
  };
  if (box.outside) {
    Value zero{};
    add(zero);
  }
  iv::for_each_offset(box, view.strides.data(), view.rank,
                      [&](int64_t offset) { add(sem::load_element(view, offset)); });
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
  checked_ = data_indexed_loads(root_);
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
      r = load(args_.buffers[sig_.buffer_slot(*n.buffer)], n.buffer->dtype, idx,
               checked_.count(&n) != 0);
      break;
    }
    case K::Add:
      r = ints ? abs_of(iv::add(range_of(op(0)), range_of(op(1))))
               : float_arith(n.kind, op(0), op(1));
      break;
    case K::Sub:
      r = ints ? abs_of(iv::sub(range_of(op(0)), range_of(op(1))))
               : float_arith(n.kind, op(0), op(1));
      break;
    case K::Mul:
      r = ints ? abs_of(iv::mul(range_of(op(0)), range_of(op(1))))
               : float_arith(n.kind, op(0), op(1));
      break;
    case K::FloorDiv:
      r = abs_of(iv::floor_div(range_of(op(0)), range_of(op(1))));
      break;
    case K::Mod:
      r = abs_of(iv::mod(range_of(op(0)), range_of(op(1))));
      break;
    case K::Min:
    case K::Max: {
      const Abs &a = op(0), &b = op(1);
      bool is_min = n.kind == K::Min;
      if (ints) {
        r = abs_of(is_min ? iv::min(range_of(a), range_of(b)) : iv::max(range_of(a), range_of(b)));
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
      r = abs_of(iv::bit_and(range_of(op(0)), range_of(op(1))));
      break;
    case K::BitOr:
      r = abs_of(iv::bit_or(range_of(op(0)), range_of(op(1))));
      break;
    case K::Neg:
      r = ints ? abs_of(iv::neg(range_of(op(0)))) : float_range(-op(0).fhi, -op(0).flo, op(0).nan);
      break;
    case K::Abs:
      if (ints) {
        r = abs_of(iv::abs(range_of(op(0))));
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

iv::Program interval_program(const Expr& body, const ModSignature& sig) {
  FLEXJIT_ASSERT(body && body.type() == Type::Bool, "an interval program needs a bool body");
  iv::Program p;
  const std::vector<Expr> order = topo_order(body);
  if (order.size() > static_cast<size_t>(iv::kMaxInstrs))
    return p;
  std::unordered_map<const Node*, uint8_t> pos;
  const auto checked = data_indexed_loads(body);
  for (const Expr& e : order) {
    const Node& n = *e;
    iv::Instr in;
    uint8_t* ops[4] = {&in.a, &in.b, &in.c, &in.d};
    for (size_t k = 0; k < n.operands.size() && k < 4; ++k)
      *ops[k] = pos.at(n.operands[k].get());
    const Type ot = n.operands.empty() ? n.type : n.operands[0].type();
    const bool ints = ot == Type::Int, bools = ot == Type::Bool;
    auto int_op = [&](iv::Op op) { in.op = ints && n.type != Type::Float ? op : iv::Op::Full; };
    switch (n.kind) {
    case K::IntConst:
    case K::BoolConst:
      in.op = iv::Op::Const;
      in.value = static_cast<int32_t>(n.ival);
      break;
    case K::Var:
      if (n.ival != static_cast<int>(Var::Score)) {
        in.op = iv::Op::Var;
        in.slot = static_cast<uint8_t>(n.ival);
      }
      break;
    case K::Param:
      if (n.type == Type::Int) {
        in.op = iv::Op::IntParam;
        in.slot = static_cast<uint8_t>(sig.param_slot(*n.param));
      }
      break;
    case K::Load:
      if (n.buffer->dtype == DType::I32 || n.buffer->dtype == DType::Bool) {
        in.op = iv::Op::Load;
        in.slot = static_cast<uint8_t>(sig.buffer_slot(*n.buffer));
        in.load_type = n.buffer->dtype == DType::I32 ? iv::kLoadI32 : iv::kLoadBool;
        in.rank = static_cast<uint8_t>(n.operands.size());
        in.value = checked.count(&n) != 0; // a data-indexed load (Instr::value)
      }
      break;
    case K::Add:
      int_op(iv::Op::Add);
      break;
    case K::Sub:
      int_op(iv::Op::Sub);
      break;
    case K::Mul:
      int_op(iv::Op::Mul);
      break;
    case K::FloorDiv:
      int_op(iv::Op::FloorDiv);
      break;
    case K::Mod:
      int_op(iv::Op::Mod);
      break;
    case K::Min:
      int_op(iv::Op::Min);
      break;
    case K::Max:
      int_op(iv::Op::Max);
      break;
    case K::Neg:
      int_op(iv::Op::Neg);
      break;
    case K::Abs:
      int_op(iv::Op::Abs);
      break;
    case K::BitAnd:
      int_op(iv::Op::BitAnd);
      break;
    case K::BitOr:
      int_op(iv::Op::BitOr);
      break;
    case K::Lt:
      int_op(iv::Op::Lt);
      break;
    case K::Le:
      int_op(iv::Op::Le);
      break;
    case K::Eq:
      in.op = ints ? iv::Op::Eq : bools ? iv::Op::EqBool : iv::Op::Full;
      break;
    case K::Ne:
      in.op = ints ? iv::Op::Ne : bools ? iv::Op::NeBool : iv::Op::Full;
      break;
    case K::And:
      in.op = iv::Op::And;
      break;
    case K::Or:
      in.op = iv::Op::Or;
      break;
    case K::Not:
      in.op = iv::Op::Not;
      break;
    case K::Select:
      if (n.type != Type::Float)
        in.op = iv::Op::Select;
      break;
    case K::Cast:
      if (n.type == Type::Bool && ot == Type::Int)
        in.op = iv::Op::IntToBool;
      else if (n.type == Type::Int && ot == Type::Bool)
        in.op = iv::Op::BoolToInt;
      break;
    default: // floats: the CPU analysis' alone
      break;
    }
    p.instr[p.count] = in;
    pos.emplace(&n, static_cast<uint8_t>(p.count++));
  }
  return p;
}

} // namespace flexjit
