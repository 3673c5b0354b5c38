// The interval rules on ints and truths, one definition for the CPU interval analysis
// (compiler/Interval.cpp) and the GPU block-mask builder (codegen/templates/classify.cu), and
// the program both evaluate on the GPU's side: a mask_mod's nodes, operands first, as `Instr`s
// (compiler/Interval.h interval_program builds it). Plain constexpr C++ without library
// headers beyond <cstdint>: g++ compiles it for the host, clang for the device (constexpr
// functions are host and device functions there).
//
// Sound over-approximations: an int node's values lie in [lo, hi] (kept inside the int32
// range; a result that may wrap is the full range), a bool node's truth is False / True only
// when every point of the tile agrees. Floats are the CPU analysis' alone (Interval.cpp); in a
// program a float node is Op::Full, which decides nothing.
#pragma once

#include <cstdint>

namespace flexjit::iv {

inline constexpr int64_t kIntMin = -2147483647LL - 1, kIntMax = 2147483647LL;
// A load scans the buffer when its index box has at most this many elements.
inline constexpr int64_t kMaxScan = 4096;

// Three-valued truth, the values of compiler/Interval.h's Truth.
inline constexpr uint8_t kFalse = 0, kTrue = 1, kUnknown = 2;

struct Range {
  int64_t lo = kIntMin, hi = kIntMax; // inclusive
};

constexpr int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}
constexpr int64_t max64(int64_t a, int64_t b) {
  return a < b ? b : a;
}

constexpr Range range(int64_t lo, int64_t hi) {
  if (lo < kIntMin || hi > kIntMax) // may wrap: anything is possible
    return Range{};
  return Range{lo, hi};
}
constexpr Range point(int64_t v) {
  return range(v, v);
}
constexpr Range join(Range a, Range b) {
  return range(min64(a.lo, b.lo), max64(a.hi, b.hi));
}

constexpr uint8_t t_not(uint8_t t) {
  return t == kUnknown ? t : (t == kTrue ? kFalse : kTrue);
}
constexpr uint8_t t_and(uint8_t a, uint8_t b) {
  if (a == kFalse || b == kFalse)
    return kFalse;
  return a == kTrue && b == kTrue ? kTrue : kUnknown;
}
constexpr uint8_t t_or(uint8_t a, uint8_t b) {
  return t_not(t_and(t_not(a), t_not(b)));
}
constexpr uint8_t t_join(uint8_t a, uint8_t b) {
  return a == b ? a : kUnknown;
}
// True when `always` holds at every point, False when `never` holds at every point.
constexpr uint8_t decide(bool always, bool never) {
  return always ? kTrue : (never ? kFalse : kUnknown);
}

constexpr Range add(Range a, Range b) {
  return range(a.lo + b.lo, a.hi + b.hi);
}
constexpr Range sub(Range a, Range b) {
  return range(a.lo - b.hi, a.hi - b.lo);
}
constexpr Range neg(Range a) {
  return range(-a.hi, -a.lo);
}
constexpr Range min(Range a, Range b) {
  return range(min64(a.lo, b.lo), min64(a.hi, b.hi));
}
constexpr Range max(Range a, Range b) {
  return range(max64(a.lo, b.lo), max64(a.hi, b.hi));
}

// [min, max] of f over the corners of a x b (f monotone in each argument on each box).
template <class F> constexpr Range corners(Range a, Range b, F f) {
  const int64_t c0 = f(a.lo, b.lo), c1 = f(a.lo, b.hi), c2 = f(a.hi, b.lo), c3 = f(a.hi, b.hi);
  return range(min64(min64(c0, c1), min64(c2, c3)), max64(max64(c0, c1), max64(c2, c3)));
}
constexpr int64_t mul64(int64_t x, int64_t y) {
  return x * y; // operands within int32: no int64 overflow
}
constexpr Range mul(Range a, Range b) {
  return corners(a, b, mul64);
}

// a // b for a, b != 0 within the int32 range (what every Range holds), by a 32-bit division:
// the GPU's 64-bit division is a called routine whose saved registers spill.
constexpr int64_t floor_div64(int64_t a, int64_t b) {
  if (a == kIntMin && b == -1)
    return -kIntMin;
  const int32_t x = static_cast<int32_t>(a), y = static_cast<int32_t>(b), q = x / y;
  return (q * y != x && ((x < 0) != (y < 0))) ? q - 1 : q;
}
// a // b for b in [blo, bhi] with 0 excluded: floor division is monotone in a, and in b on
// each side of zero, so the corners bound it.
constexpr Range floor_div_nonzero(Range a, int64_t blo, int64_t bhi) {
  return corners(a, Range{blo, bhi}, floor_div64);
}
constexpr Range floor_div(Range a, Range b) {
  if (b.lo > 0 || b.hi < 0)
    return floor_div_nonzero(a, b.lo, b.hi);
  Range r = point(0); // x // 0 == 0
  if (b.lo < 0)
    r = join(r, floor_div_nonzero(a, b.lo, -1));
  if (b.hi > 0)
    r = join(r, floor_div_nonzero(a, 1, b.hi));
  return r;
}

constexpr Range mod(Range a, Range b) {
  if (b.lo == b.hi && b.lo != 0) {
    // a % c == a - c * (a // c): exact while a stays within one period.
    const int64_t c = b.lo, k = floor_div64(a.lo, c);
    if (floor_div64(a.hi, c) == k)
      return range(a.lo - c * k, a.hi - c * k);
  }
  if (b.lo > 0) // the result lies in [0, c - 1], and never above a when a >= 0
    return range(0, a.lo >= 0 ? min64(b.hi - 1, a.hi) : b.hi - 1);
  if (b.hi < 0)
    return range(b.lo + 1, 0);
  return range(min64(b.lo + 1, 0), max64(b.hi - 1, 0)); // x % 0 == 0
}

// The smallest 2^k - 1 >= v, for v >= 0.
constexpr int64_t all_ones_above(int64_t v) {
  int64_t m = 0;
  while (m < v)
    m = m * 2 + 1;
  return m;
}
constexpr Range bit_and(Range a, Range b) {
  if (a.lo >= 0 && b.lo >= 0)
    return range(0, min64(a.hi, b.hi));
  if (a.lo >= 0)
    return range(0, a.hi);
  if (b.lo >= 0)
    return range(0, b.hi);
  return Range{};
}
constexpr Range bit_or(Range a, Range b) {
  if (a.lo >= 0 && b.lo >= 0)
    return range(max64(a.lo, b.lo), all_ones_above(max64(a.hi, b.hi)));
  if (a.hi < 0 || b.hi < 0) // a negative operand keeps the sign bit set
    return range(kIntMin, -1);
  return Range{};
}
constexpr Range abs(Range a) {
  if (a.lo == kIntMin) // abs(INT_MIN) wraps to INT_MIN
    return Range{};
  if (a.lo >= 0)
    return a;
  if (a.hi <= 0)
    return range(-a.hi, -a.lo);
  return range(0, max64(-a.lo, a.hi));
}

enum class Cmp : uint8_t { Lt, Le, Eq, Ne };
constexpr uint8_t compare(Cmp c, Range a, Range b) {
  const bool disjoint = a.hi < b.lo || b.hi < a.lo;
  const bool same_point = a.lo == a.hi && b.lo == b.hi && a.lo == b.lo;
  switch (c) {
  case Cmp::Lt:
    return decide(a.hi < b.lo, a.lo >= b.hi);
  case Cmp::Le:
    return decide(a.hi <= b.lo, a.lo > b.hi);
  case Cmp::Eq:
    return decide(same_point, disjoint);
  case Cmp::Ne:
    break;
  }
  return decide(disjoint, same_point);
}
constexpr uint8_t compare_truths(Cmp c, uint8_t a, uint8_t b) { // Eq / Ne of two bools
  if (a == kUnknown || b == kUnknown)
    return kUnknown;
  return decide((a == b) == (c == Cmp::Eq), (a == b) != (c == Cmp::Eq));
}
constexpr uint8_t int_to_bool(Range a) {
  return decide(a.lo > 0 || a.hi < 0, a.lo == 0 && a.hi == 0);
}
constexpr Range bool_to_int(uint8_t t) {
  return t == kUnknown ? range(0, 1) : point(t == kTrue);
}

// The in-range part of a load's index box (lo[d]..hi[d] per dimension), whether some index
// lies outside (such a load reads 0), whether every index of a dimension is outside (`none`),
// and how many elements the box holds (saturating above kMaxScan).
struct Box {
  int64_t lo[4] = {}, hi[4] = {};
  bool outside = false, none = false;
  int64_t count = 1;
};
constexpr Box load_box(const Range* idx, const int64_t* sizes, int rank) {
  Box box;
  for (int d = 0; d < rank; ++d) {
    box.lo[d] = max64(idx[d].lo, 0);
    box.hi[d] = min64(idx[d].hi, sizes[d] - 1);
    box.outside = box.outside || idx[d].lo < 0 || idx[d].hi >= sizes[d];
    if (box.lo[d] > box.hi[d]) {
      box.none = true;
      return box;
    }
    box.count = min64(box.count * (box.hi[d] - box.lo[d] + 1), kMaxScan + 1);
  }
  return box;
}
// Calls visit(offset) for every element of an in-range box (row-major), strides in elements.
template <class Visit>
constexpr void for_each_offset(const Box& box, const int64_t* strides, int rank, Visit visit) {
  int64_t at[4] = {box.lo[0], box.lo[1], box.lo[2], box.lo[3]};
  for (;;) {
    int64_t offset = 0;
    for (int d = 0; d < rank; ++d)
      offset += at[d] * strides[d];
    visit(offset);
    int d = rank - 1;
    while (d >= 0 && at[d] == box.hi[d]) {
      at[d] = box.lo[d];
      --d;
    }
    if (d < 0)
      return;
    ++at[d];
  }
}

// ---- The program the GPU builder evaluates per tile ------------------------------------
enum class Op : uint8_t {
  Full, // a value nothing is known of (floats, unsupported nodes)
  Const,
  Var,
  IntParam,
  Load,
  Add,
  Sub,
  Mul,
  FloorDiv,
  Mod,
  Min,
  Max,
  Neg,
  Abs,
  BitAnd,
  BitOr,
  Lt,
  Le,
  Eq,
  Ne, // ints; EqBool / NeBool for bools
  EqBool,
  NeBool,
  And,
  Or,
  Not,
  Select,
  IntToBool,
  BoolToInt,
};
// Load's element types (the others load as Full).
inline constexpr uint8_t kLoadI32 = 0, kLoadBool = 1;

struct Instr {
  Op op = Op::Full;
  uint8_t slot = 0;      // Var: 0 b, 1 h, 2 q, 3 kv; IntParam: its slot; Load: the buffer's slot
  uint8_t load_type = 0; // Load: kLoadI32 / kLoadBool
  uint8_t rank = 0;      // Load: the buffer's rank
  uint8_t a = 0, b = 0, c = 0, d = 0; // operand positions (a Load's indices: a, b, c, d by rank)
  // Const: an int or bool (0 / 1); Load: 1 when its index reads buffer data (data_indexed_loads,
  // Visitor.h), else 0 -- a field a Load does not otherwise use, so that an Instr stays 12 bytes
  // (the program is a kernel parameter the classify kernel copies into shared memory).
  int32_t value = 0;
};
inline constexpr int kMaxInstrs = 64;
struct Program {
  int32_t count = 0; // 0: no program (every tile undecided); the root is instr[count - 1]
  int32_t pad = 0;
  Instr instr[kMaxInstrs];
};

// A node's abstract value as stored between instructions (ints within the int32 range).
struct Value {
  int32_t lo = static_cast<int32_t>(kIntMin), hi = static_cast<int32_t>(kIntMax); // ints
  uint8_t t = kUnknown;                                                           // bools
  constexpr Range r() const { return Range{lo, hi}; }
  constexpr void set(Range v) {
    lo = static_cast<int32_t>(v.lo);
    hi = static_cast<int32_t>(v.hi);
  }
};

// Widens [lo, hi] by elements i0 .. i1 of a rank-1 buffer (stride in elements): a tight loop.
template <class Reader>
constexpr void scan_rank1(const Reader& read, int slot, uint8_t type, int64_t i0, int64_t i1,
                          int64_t stride, int64_t& lo, int64_t& hi) {
  for (int64_t i = i0; i <= i1; ++i) {
    const int64_t v = read.element(slot, type, i * stride);
    lo = min64(lo, v);
    hi = max64(hi, v);
  }
}

// The root's truth over the tile vars[0..3] = (b, h, q, kv) ranges. `read` gives what the
// program reads at run time: read.int_param(slot), read.sizes(slot),
// read.strides(slot) (element counts) and read.element(slot, load_type, offset) (an int;
// a bool as 0 / 1). `val` is the caller's scratch of count
// values.
template <class Reader>
constexpr uint8_t evaluate(const Program& p, const Range* vars, const Reader& read, Value* val) {
  for (int i = 0; i < p.count; ++i) {
    const Instr& n = p.instr[i];
    const Value &A = val[n.a], &B = val[n.b], &C = val[n.c];
    Value r;
    switch (n.op) {
    case Op::Full:
      break;
    case Op::Const:
      r.set(point(n.value));
      r.t = n.value ? kTrue : kFalse;
      break;
    case Op::Var:
      r.set(vars[n.slot]);
      break;
    case Op::IntParam:
      r.set(point(read.int_param(n.slot)));
      break;
    case Op::Load: {
      const int rank = n.rank;
      const Range idx[4] = {A.r(), B.r(), C.r(), val[n.d].r()};
      const Box box = load_box(idx, read.sizes(n.slot), rank);
      // A data-indexed load that may fall outside its buffer: undecided, so that the tile's
      // points are evaluated and the one outside is reported (an error, not a 0).
      if (n.value != 0 && (box.outside || box.none))
        break;
      if (box.none) { // every index is out of range: reads 0
        r.set(point(0));
        r.t = kFalse;
        break;
      }
      if (box.count > kMaxScan)
        break;
      // 0 when an index was out of range; else the first element's value.
      const int64_t* strides = read.strides(n.slot);
      int64_t lo = 0, hi = 0;
      if (!box.outside) {
        int64_t first = 0;
        for (int d = 0; d < rank; ++d)
          first += box.lo[d] * strides[d];
        lo = hi = read.element(n.slot, n.load_type, first);
      }
      if (rank == 1) { // the common case (document ids, sequence offsets)
        scan_rank1(read, n.slot, n.load_type, box.lo[0], box.hi[0], strides[0], lo, hi);
      } else {
        for_each_offset(box, strides, rank, [&](int64_t offset) {
          const int64_t v = read.element(n.slot, n.load_type, offset);
          lo = min64(lo, v);
          hi = max64(hi, v);
        });
      }
      r.set(range(lo, hi));
      r.t = decide(lo > 0 || hi < 0, lo == 0 && hi == 0); // bool elements are 0 / 1
      break;
    }
    case Op::Add:
      r.set(add(A.r(), B.r()));
      break;
    case Op::Sub:
      r.set(sub(A.r(), B.r()));
      break;
    case Op::Mul:
      r.set(mul(A.r(), B.r()));
      break;
    case Op::FloorDiv:
      r.set(floor_div(A.r(), B.r()));
      break;
    case Op::Mod:
      r.set(mod(A.r(), B.r()));
      break;
    case Op::Min:
      r.set(min(A.r(), B.r()));
      break;
    case Op::Max:
      r.set(max(A.r(), B.r()));
      break;
    case Op::Neg:
      r.set(neg(A.r()));
      break;
    case Op::Abs:
      r.set(abs(A.r()));
      break;
    case Op::BitAnd:
      r.set(bit_and(A.r(), B.r()));
      break;
    case Op::BitOr:
      r.set(bit_or(A.r(), B.r()));
      break;
    case Op::Lt:
      r.t = compare(Cmp::Lt, A.r(), B.r());
      break;
    case Op::Le:
      r.t = compare(Cmp::Le, A.r(), B.r());
      break;
    case Op::Eq:
      r.t = compare(Cmp::Eq, A.r(), B.r());
      break;
    case Op::Ne:
      r.t = compare(Cmp::Ne, A.r(), B.r());
      break;
    case Op::EqBool:
      r.t = compare_truths(Cmp::Eq, A.t, B.t);
      break;
    case Op::NeBool:
      r.t = compare_truths(Cmp::Ne, A.t, B.t);
      break;
    case Op::And:
      r.t = t_and(A.t, B.t);
      break;
    case Op::Or:
      r.t = t_or(A.t, B.t);
      break;
    case Op::Not:
      r.t = t_not(A.t);
      break;
    case Op::Select:
      if (A.t == kUnknown) {
        r.set(join(B.r(), C.r()));
        r.t = t_join(B.t, C.t);
      } else {
        r = A.t == kTrue ? B : C;
      }
      break;
    case Op::IntToBool:
      r.t = int_to_bool(A.r());
      break;
    case Op::BoolToInt:
      r.set(bool_to_int(A.t));
      break;
    }
    val[i] = r;
  }
  return p.count > 0 ? val[p.count - 1].t : kUnknown;
}

} // namespace flexjit::iv
