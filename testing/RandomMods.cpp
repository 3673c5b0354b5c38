#include "flexjit/testing/RandomMods.h"

#include <algorithm>
#include <array>
#include <bit>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "flexjit/dsl/Mods.h"

namespace flexjit::testing {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kMax = std::numeric_limits<float>::max();
constexpr float kMinNormal = std::numeric_limits<float>::min();
constexpr float kDenormMin = std::numeric_limits<float>::denorm_min();

size_t pick(std::mt19937& rng, size_t n) {
  return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
}

bool chance(std::mt19937& rng, double p) {
  return std::uniform_real_distribution<double>(0, 1)(rng) < p;
}

// How a buffer's view lays out its elements in memory.
enum class Layout { Contiguous, Transposed, Padded, Broadcast, Empty };

// Builds one random body; owns the buffers and params it may read.
class Generator {
public:
  Generator(std::mt19937& rng, RandomMod& out, bool allow_score)
      : rng_(rng), out_(out), allow_score_(allow_score) {
    // At most kMaxBuffers buffers may be read by one kernel: pick 8 of the 20
    // (dtype, rank) combinations.
    const DType dtypes[] = {DType::I32, DType::F32, DType::F16, DType::BF16, DType::Bool};
    std::vector<std::pair<DType, int>> kinds;
    for (DType d : dtypes)
      for (int rank = 1; rank <= kMaxRank; ++rank)
        kinds.emplace_back(d, rank);
    std::shuffle(kinds.begin(), kinds.end(), rng_);
    kinds.resize(kMaxBuffers);
    for (auto [dtype, rank] : kinds)
      add_buffer(dtype, rank);
    for (int i = 0; i < 3; ++i) {
      std::string name = "pi" + std::to_string(i);
      int_params_.push_back(param_i32(name));
      out_.bindings.params[name] = static_cast<double>(random_int(rng_));
    }
    for (int i = 0; i < 3; ++i) {
      std::string name = "pf" + std::to_string(i);
      float_params_.push_back(param_f32(name));
      out_.bindings.params[name] = static_cast<double>(random_float(rng_));
    }
  }

  // A body of `type`: usually a random tree of at most `max_depth` levels, now
  // and then (deep nesting) a spine of 20 to 120 nested operations whose other
  // operands are shallow.
  Expr top(Type type, int max_depth) {
    if (max_depth >= 4 && chance(rng_, 1.0 / 12))
      return spine(type, 20 + static_cast<int>(pick(rng_, 100)));
    return gen(type, max_depth);
  }

  void allow_score(bool allow) { allow_score_ = allow; }

  Expr gen(Type type, int depth) {
    // Reuse an earlier sub-expression now and then so bodies are DAGs.
    auto& pool = pool_[static_cast<int>(type)];
    if (!pool.empty() && chance(rng_, 0.08))
      return pool[pick(rng_, pool.size())];
    Expr e = depth <= 0 || chance(rng_, 0.15) ? leaf(type) : inner(type, depth - 1);
    pool.push_back(e);
    return e;
  }

private:
  void add_buffer(DType dtype, int rank) {
    std::string name = "buf_" + std::string(to_string(dtype)) + "_" + std::to_string(rank);
    const int64_t max_size = rank == 1 ? 24 : rank == 2 ? 6 : rank == 3 ? 4 : 3;
    TensorView view;
    view.dtype = dtype;
    view.rank = rank;
    for (int d = 0; d < rank; ++d)
      view.sizes[d] = 1 + static_cast<int64_t>(pick(rng_, static_cast<size_t>(max_size)));
    const Layout layout =
        chance(rng_, 0.6) ? Layout::Contiguous
        : chance(rng_, 0.9)
            ? static_cast<Layout>(1 + pick(rng_, 3)) // transposed, padded, broadcast
            : Layout::Empty;
    // Row-major strides over `extent` (the sizes, padded for Layout::Padded).
    std::array<int64_t, kMaxRank> extent = view.sizes;
    if (layout == Layout::Padded)
      for (int d = 0; d < rank; ++d)
        extent[d] += static_cast<int64_t>(pick(rng_, 3));
    if (layout == Layout::Empty)
      view.sizes[pick(rng_, static_cast<size_t>(rank))] = 0;
    int64_t stride = 1;
    for (int d = rank - 1; d >= 0; --d) {
      view.strides[d] = stride;
      stride *= extent[d];
    }
    if (layout == Layout::Transposed) { // column-major
      stride = 1;
      for (int d = 0; d < rank; ++d) {
        view.strides[d] = stride;
        stride *= extent[d];
      }
    }
    if (layout == Layout::Broadcast) // one dimension reads the same elements again
      view.strides[pick(rng_, static_cast<size_t>(rank))] = 0;
    const int64_t elements = std::max<int64_t>(stride, 1);

    std::vector<uint8_t> bytes(static_cast<size_t>(elements * dtype_size(dtype)));
    for (int64_t i = 0; i < elements; ++i)
      random_element(dtype, bytes.data() + i * dtype_size(dtype));
    out_.storage.push_back(std::move(bytes));
    // An empty view may carry no data at all.
    view.data = layout == Layout::Empty && chance(rng_, 0.5) ? nullptr : out_.storage.back().data();
    out_.bindings.buffers[name] = view;
    buffers_.push_back(std::make_unique<Buffer>(name, dtype, rank));
  }

  void random_element(DType dtype, uint8_t* p) {
    switch (dtype) {
    case DType::I32: {
      int32_t v = random_int(rng_);
      std::memcpy(p, &v, 4);
      return;
    }
    case DType::F32: {
      float v = random_float(rng_);
      std::memcpy(p, &v, 4);
      return;
    }
    case DType::F16:
    case DType::BF16: {
      // Any bit pattern: normals, subnormals, infinities and NaNs.
      uint16_t v = static_cast<uint16_t>(rng_());
      if (chance(rng_, 0.5)) // small values around one, common in practice
        v = static_cast<uint16_t>((dtype == DType::F16 ? 0x3C00 : 0x3F80) ^ (rng_() & 0x83FF));
      std::memcpy(p, &v, 2);
      return;
    }
    case DType::Bool:
      *p = static_cast<uint8_t>(rng_() & 1);
      return;
    }
  }

  const Buffer* buffer_of(Type type) {
    std::vector<const Buffer*> fits;
    for (const auto& b : buffers_)
      if (value_type(b->dtype()) == type)
        fits.push_back(b.get());
    return fits.empty() ? nullptr : fits[pick(rng_, fits.size())];
  }

  Expr var(Type type) {
    if (type == Type::Float)
      return make_var(Var::Score);
    const Var vars[] = {Var::B, Var::H, Var::Q, Var::KV, Var::KV, Var::Q};
    return make_var(vars[pick(rng_, 6)]);
  }

  Expr param(Type type) {
    return type == Type::Int ? Expr(int_params_[pick(rng_, int_params_.size())])
                             : Expr(float_params_[pick(rng_, float_params_.size())]);
  }

  // An index that usually lands in (or near) a small buffer.
  Expr index(int depth) {
    switch (pick(rng_, 4)) {
    case 0:
      return var(Type::Int);
    case 1:
      return make_int(static_cast<int32_t>(pick(rng_, 10)) - 2);
    case 2:
      return Node::make(NodeKind::Mod, Type::Int,
                        {var(Type::Int), make_int(1 + static_cast<int32_t>(pick(rng_, 8)))});
    default:
      return gen(Type::Int, depth);
    }
  }

  // A load from a buffer of `type`; `first`, when given, is its first index.
  Expr load(Type type, int depth, Expr first = Expr()) {
    const Buffer* b = buffer_of(type);
    if (!b)
      return Expr();
    std::vector<Expr> idx;
    for (int i = 0; i < b->rank(); ++i)
      idx.push_back(i == 0 && first ? first : index(depth));
    std::shuffle(idx.begin(), idx.end(), rng_);
    return Node::make(NodeKind::Load, type, std::move(idx), 0, 0.0f, b->decl());
  }

  Expr constant(Type type) {
    if (type == Type::Bool)
      return make_bool(chance(rng_, 0.5));
    return type == Type::Int ? make_int(random_int(rng_)) : make_float(random_float(rng_));
  }

  Expr leaf(Type type) {
    for (;;) {
      switch (pick(rng_, 5)) {
      case 0:
      case 1:
        return constant(type);
      case 2:
        if (type == Type::Bool || (type == Type::Float && !allow_score_))
          continue;
        return var(type);
      case 3:
        if (type == Type::Bool)
          continue;
        return param(type);
      default:
        if (Expr e = load(type, 0))
          return e;
      }
    }
  }

  // The DSL rejects a literal zero divisor; folding may still reveal one.
  Expr safe_divisor(NodeKind kind, Expr b) {
    if ((kind == NodeKind::FloorDiv || kind == NodeKind::Mod || kind == NodeKind::Div) &&
        b->is_const() && (b->ival == 0 && b->fval == 0.0f))
      return b.type() == Type::Int ? make_int(3) : make_float(0.5f);
    return b;
  }

  Expr binop(NodeKind kind, Type type, int depth) {
    Expr a = gen(type, depth), b = gen(type, depth);
    return Node::make(kind, type, {a, safe_divisor(kind, b)});
  }

  Type other_type(Type type) {
    Type t = static_cast<Type>(pick(rng_, 3));
    return t == type ? other_type(type) : t;
  }

  static constexpr NodeKind kIntBinary[] = {NodeKind::Add,      NodeKind::Sub,    NodeKind::Mul,
                                            NodeKind::FloorDiv, NodeKind::Mod,    NodeKind::Min,
                                            NodeKind::Max,      NodeKind::BitAnd, NodeKind::BitOr};
  static constexpr NodeKind kFloatBinary[] = {NodeKind::Add, NodeKind::Sub, NodeKind::Mul,
                                              NodeKind::Div, NodeKind::Min, NodeKind::Max};
  static constexpr NodeKind kFloatUnary[] = {NodeKind::Neg,  NodeKind::Abs,        NodeKind::Exp,
                                             NodeKind::Exp2, NodeKind::Log,        NodeKind::Log2,
                                             NodeKind::Sqrt, NodeKind::Rsqrt,      NodeKind::Tanh,
                                             NodeKind::Sin,  NodeKind::TanhApprox, NodeKind::Cos};
  static constexpr NodeKind kCompares[] = {NodeKind::Lt, NodeKind::Le, NodeKind::Eq, NodeKind::Ne};

  Expr inner(Type type, int depth) {
    using K = NodeKind;
    if (chance(rng_, 0.08)) {
      Expr c = gen(Type::Bool, depth);
      return Node::make(K::Select, type, {c, gen(type, depth), gen(type, depth)});
    }
    if (chance(rng_, 0.06))
      return Node::make(K::Cast, type, {gen(other_type(type), depth)});
    if (chance(rng_, 0.08))
      if (Expr e = load(type, depth))
        return e;
    switch (type) {
    case Type::Int: {
      if (chance(rng_, 2.0 / 12))
        return Node::make(chance(rng_, 0.5) ? K::Neg : K::Abs, type, {gen(type, depth)});
      return binop(kIntBinary[pick(rng_, std::size(kIntBinary))], type, depth);
    }
    case Type::Float: {
      const size_t k = pick(rng_, std::size(kFloatBinary) + std::size(kFloatUnary));
      if (k < std::size(kFloatBinary))
        return binop(kFloatBinary[k], type, depth);
      return Node::make(kFloatUnary[k - std::size(kFloatBinary)], type, {gen(type, depth)});
    }
    case Type::Bool: {
      switch (pick(rng_, 8)) {
      case 0:
        return Node::make(K::Not, type, {gen(type, depth)});
      case 1:
        return binop(K::And, type, depth);
      case 2:
        return binop(K::Or, type, depth);
      default: {
        const K k = kCompares[pick(rng_, 4)];
        // Mostly ints: that is what masks compare.
        Type t = chance(rng_, 0.7)                                 ? Type::Int
                 : (chance(rng_, 0.7) || k == K::Lt || k == K::Le) ? Type::Float
                                                                   : Type::Bool;
        if (t == Type::Float && !allow_score_ && chance(rng_, 0.3))
          t = Type::Int;
        return Node::make(k, type, {gen(t, depth), gen(t, depth)});
      }
      }
    }
    }
    return Expr();
  }

  // A spine of `length` operations, each using the previous one as an operand
  // (the others shallow), switching types now and then; ends in `type`.
  Expr spine(Type type, int length) {
    Type t = static_cast<Type>(pick(rng_, 3));
    Expr e = gen(t, 2);
    for (int i = 0; i < length; ++i)
      e = step(e, chance(rng_, 0.1) ? other_type(e.type()) : e.type());
    return e.type() == type ? e : step(e, type);
  }

  // One node of type `u` with `e` among its operands.
  Expr step(const Expr& e, Type u) {
    using K = NodeKind;
    const Type t = e.type();
    auto other = [&](Type type) { return gen(type, 1); };
    auto either = [&](K kind, Type type, Expr x, Expr y) {
      return chance(rng_, 0.5) ? Node::make(kind, type, {x, safe_divisor(kind, y)})
                               : Node::make(kind, type, {y, safe_divisor(kind, x)});
    };
    if (t != u) {
      if (u == Type::Bool && t != Type::Bool && chance(rng_, 0.6)) {
        const K k = kCompares[pick(rng_, 4)];
        return either(k, u, e, other(t));
      }
      if (t == Type::Bool && chance(rng_, 0.5))
        return Node::make(K::Select, u, {e, other(u), other(u)});
      if (t == Type::Int && chance(rng_, 0.4))
        if (Expr l = load(u, 1, e))
          return l;
      return Node::make(K::Cast, u, {e});
    }
    if (chance(rng_, 0.1)) {
      Expr c = t == Type::Bool && chance(rng_, 0.5) ? e : other(Type::Bool);
      Expr x = c.same_as(e) ? other(u) : e;
      return chance(rng_, 0.5) ? Node::make(K::Select, u, {c, x, other(u)})
                               : Node::make(K::Select, u, {c, other(u), x});
    }
    switch (u) {
    case Type::Int:
      if (chance(rng_, 0.15))
        return Node::make(chance(rng_, 0.5) ? K::Neg : K::Abs, u, {e});
      return either(kIntBinary[pick(rng_, std::size(kIntBinary))], u, e, other(u));
    case Type::Float:
      if (chance(rng_, 0.4))
        return Node::make(kFloatUnary[pick(rng_, std::size(kFloatUnary))], u, {e});
      return either(kFloatBinary[pick(rng_, std::size(kFloatBinary))], u, e, other(u));
    case Type::Bool:
      if (chance(rng_, 0.2))
        return Node::make(K::Not, u, {e});
      if (chance(rng_, 0.2))
        return either(K::Eq, u, e, other(u));
      return either(chance(rng_, 0.5) ? K::And : K::Or, u, e, other(u));
    }
    return Expr();
  }

  std::mt19937& rng_;
  RandomMod& out_;
  bool allow_score_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
  std::vector<IntExpr> int_params_;
  std::vector<FloatExpr> float_params_;
  std::vector<Expr> pool_[3];
};

} // namespace

int32_t random_int(std::mt19937& rng) {
  switch (pick(rng, 14)) {
  case 0:
    return INT_MIN;
  case 1:
    return INT_MAX;
  case 2:
    return 0;
  case 3:
    return -1;
  case 4:
    return static_cast<int32_t>(rng());
  case 5:
    return static_cast<int32_t>(pick(rng, 2000)) - 1000;
  case 6: { // edges: INT_MIN + 1, INT_MAX - 1, 2^16 (squares overflow), 46341 (> sqrt(INT_MAX))
    const int32_t edges[] = {INT_MIN + 1, INT_MAX - 1, 65536, -65536, 46341, -46341, 1 << 30};
    return edges[pick(rng, std::size(edges))];
  }
  case 7: // powers of two and their neighbours
    return static_cast<int32_t>((1u << pick(rng, 31)) - 1 + pick(rng, 3)) *
           (chance(rng, 0.5) ? 1 : -1);
  default:
    return static_cast<int32_t>(pick(rng, 17)) - 4;
  }
}

float random_float(std::mt19937& rng) {
  switch (pick(rng, 16)) {
  case 0:
    return chance(rng, 0.5) ? kInf : -kInf;
  case 1:
    return chance(rng, 0.5) ? kNaN : -kNaN;
  case 2:
    return chance(rng, 0.5) ? 0.0f : -0.0f;
  case 3:
    return chance(rng, 0.5) ? kMax : -kMax;
  case 4: { // subnormals and the smallest normals
    const float tiny[] = {kDenormMin, std::bit_cast<float>(0x007fffffu), kMinNormal, 1e-40f};
    return tiny[pick(rng, std::size(tiny))] * (chance(rng, 0.5) ? 1.0f : -1.0f);
  }
  case 5: { // huge and small
    const float scale[] = {1e30f, 1e-30f, 3e38f, 1e10f, 1e-10f};
    return scale[pick(rng, std::size(scale))] * (chance(rng, 0.5) ? 1.0f : -1.0f);
  }
  case 6: { // float -> int saturation edges, and what truncation rounds
    const float edges[] = {2147483648.0f, -2147483648.0f, 2147483520.0f, -2147483904.0f,
                           16777216.0f,   16777218.0f,    0.5f,          -0.5f,
                           1.5f,          -2.5f,          0.99999994f,   -0.99999994f};
    return edges[pick(rng, std::size(edges))];
  }
  case 7: { // exp, exp2 and log edges: overflow to inf, underflow to subnormals and 0
    const float edges[] = {88.72283f, 88.72284f,  -87.33655f, -103.97208f, -104.0f,
                           128.0f,    127.99999f, -126.0f,    -149.0f,     -150.0f};
    return edges[pick(rng, std::size(edges))];
  }
  case 8:
    return std::bit_cast<float>(static_cast<uint32_t>(rng()));
  default:
    return std::uniform_real_distribution<float>(-8.0f, 8.0f)(rng);
  }
}

RandomMod random_expr(std::mt19937& rng, Type type, int max_depth, bool allow_score) {
  RandomMod out;
  Generator gen(rng, out, allow_score);
  out.body = gen.top(type, max_depth);
  return out;
}

RandomMod random_mask(std::mt19937& rng, int max_depth) {
  return random_expr(rng, Type::Bool, max_depth, false);
}

RandomMod random_score(std::mt19937& rng, int max_depth) {
  return random_expr(rng, Type::Float, max_depth, true);
}

RandomMod random_pair(std::mt19937& rng, int max_depth) {
  RandomMod out;
  // One generator for both, so they read one set of buffers and params; the
  // mask first, while no sub-expression it may reuse reads score.
  Generator gen(rng, out, /*allow_score=*/false);
  out.body = gen.top(Type::Bool, max_depth);
  gen.allow_score(true);
  out.score = gen.top(Type::Float, max_depth);
  return out;
}

Point random_point(std::mt19937& rng) {
  auto index = [&]() -> int32_t {
    switch (pick(rng, 12)) {
    case 0:
      return INT_MIN + static_cast<int32_t>(pick(rng, 2));
    case 1:
      return INT_MAX - static_cast<int32_t>(pick(rng, 2));
    case 2:
      return -1 - static_cast<int32_t>(pick(rng, 5));
    case 3:
      return static_cast<int32_t>(pick(rng, 100000));
    case 4:
      return static_cast<int32_t>(rng());
    default:
      return static_cast<int32_t>(pick(rng, 30));
    }
  };
  Point p{index(), index(), index(), index(), 0.0f};
  const float specials[] = {kInf,  -kInf,  kNaN,   -0.0f,        0.0f,       1.0f,
                            -1.0f, 1e-40f, 3e38f,  -kDenormMin,  kMinNormal, kMax,
                            -kMax, 88.8f,  -104.f, 2147483648.0f};
  switch (pick(rng, 8)) {
  case 0:
  case 1:
    p.score = specials[pick(rng, std::size(specials))];
    break;
  case 2:
    p.score = random_float(rng);
    break;
  default:
    p.score = std::uniform_real_distribution<float>(-20.0f, 20.0f)(rng);
  }
  return p;
}

int64_t env_int(const char* name, int64_t fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtoll(text, nullptr, 10) : fallback;
}

bool same_value(Type type, Value a, Value b) {
  switch (type) {
  case Type::Bool:
    return a.b == b.b;
  case Type::Int:
    return a.i == b.i;
  case Type::Float:
    return (std::isnan(a.f) && std::isnan(b.f)) ||
           std::bit_cast<uint32_t>(a.f) == std::bit_cast<uint32_t>(b.f);
  }
  return false;
}

} // namespace flexjit::testing
