#include "tests/RandomMods.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "dsl/Mods.h"

namespace flexjit::testing {

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Builds one random body; owns the buffers and params it may read.
class Generator {
public:
  Generator(std::mt19937& rng, RandomMod& out, bool allow_score)
      : rng_(rng), out_(out), allow_score_(allow_score) {
    // At most kMaxBuffers buffers may be read by one kernel: pick 6 of the 10
    // (dtype, rank) combinations.
    const DType dtypes[] = {DType::I32, DType::F32, DType::F16, DType::BF16, DType::Bool};
    std::vector<std::pair<DType, int>> kinds;
    for (DType d : dtypes)
      for (int rank = 1; rank <= 2; ++rank)
        kinds.emplace_back(d, rank);
    std::shuffle(kinds.begin(), kinds.end(), rng_);
    kinds.resize(6);
    for (auto [dtype, rank] : kinds)
      add_buffer(dtype, rank);
    for (int i = 0; i < 2; ++i) {
      std::string name = "pi" + std::to_string(i);
      int_params_.push_back(param_i32(name));
      out_.bindings.params[name] = static_cast<double>(random_int());
    }
    for (int i = 0; i < 2; ++i) {
      std::string name = "pf" + std::to_string(i);
      float_params_.push_back(param_f32(name));
      out_.bindings.params[name] = static_cast<double>(random_float());
    }
  }

  Expr gen(Type type, int depth) {
    // Reuse an earlier sub-expression now and then so bodies are DAGs.
    auto& pool = pool_[static_cast<int>(type)];
    if (!pool.empty() && chance(0.08))
      return pool[pick(pool.size())];
    Expr e = depth <= 0 || chance(0.15) ? leaf(type) : inner(type, depth - 1);
    pool.push_back(e);
    return e;
  }

  int32_t random_int() {
    switch (pick(8)) {
    case 0:
      return INT_MIN;
    case 1:
      return INT_MAX;
    case 2:
      return 0;
    case 3:
      return -1;
    case 4:
      return static_cast<int32_t>(rng_());
    case 5:
      return static_cast<int32_t>(pick(2000)) - 1000;
    default:
      return static_cast<int32_t>(pick(17)) - 4;
    }
  }

  float random_float() {
    switch (pick(14)) {
    case 0:
      return kInf;
    case 1:
      return -kInf;
    case 2:
      return kNaN;
    case 3:
      return -0.0f;
    case 4:
      return 0.0f;
    case 5:
      return std::numeric_limits<float>::max();
    case 6:
      return std::numeric_limits<float>::denorm_min();
    case 7:
      return -std::numeric_limits<float>::min();
    case 8:
      return 1e30f;
    case 9:
      return std::bit_cast<float>(static_cast<uint32_t>(rng_()));
    default:
      return std::uniform_real_distribution<float>(-8.0f, 8.0f)(rng_);
    }
  }

private:
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

  void add_buffer(DType dtype, int rank) {
    std::string name = "buf_" + std::string(to_string(dtype)) + "_" + std::to_string(rank);
    int64_t rows = rank == 1 ? 1 + static_cast<int64_t>(pick(24)) : 1 + pick(6);
    int64_t cols = 1 + static_cast<int64_t>(pick(6));
    int64_t numel = rank == 1 ? rows : rows * cols;
    std::vector<uint8_t> bytes(static_cast<size_t>(numel * dtype_size(dtype)));
    for (int64_t i = 0; i < numel; ++i) {
      uint8_t* p = bytes.data() + i * dtype_size(dtype);
      switch (dtype) {
      case DType::I32: {
        int32_t v = random_int();
        std::memcpy(p, &v, 4);
        break;
      }
      case DType::F32: {
        float v = random_float();
        std::memcpy(p, &v, 4);
        break;
      }
      case DType::F16:
      case DType::BF16: {
        // Any bit pattern: normals, subnormals, infinities and NaNs.
        uint16_t v = static_cast<uint16_t>(rng_());
        if (chance(0.5)) // small values around one, common in practice
          v = static_cast<uint16_t>((dtype == DType::F16 ? 0x3C00 : 0x3F80) ^ (rng_() & 0x83FF));
        std::memcpy(p, &v, 2);
        break;
      }
      case DType::Bool:
        *p = static_cast<uint8_t>(rng_() & 1);
        break;
      }
    }
    out_.storage.push_back(std::move(bytes));
    const void* data = out_.storage.back().data();
    TensorView view = rank == 1 ? TensorView::contiguous(data, dtype, {rows})
                                : TensorView::contiguous(data, dtype, {rows, cols});
    out_.bindings.buffers[name] = view;
    buffers_.push_back(std::make_unique<Buffer>(name, dtype, rank));
  }

  const Buffer* buffer_of(Type type) {
    std::vector<const Buffer*> fits;
    for (const auto& b : buffers_)
      if (value_type(b->dtype()) == type)
        fits.push_back(b.get());
    return fits.empty() ? nullptr : fits[pick(fits.size())];
  }

  Expr var(Type type) {
    if (type == Type::Float)
      return make_var(Var::Score);
    const Var vars[] = {Var::B, Var::H, Var::Q, Var::KV, Var::KV, Var::Q};
    return make_var(vars[pick(6)]);
  }

  // An index that usually lands in (or near) a small buffer.
  Expr index(int depth) {
    switch (pick(4)) {
    case 0:
      return var(Type::Int);
    case 1:
      return make_int(static_cast<int32_t>(pick(10)) - 2);
    case 2:
      return Node::make(NodeKind::Mod, Type::Int,
                        {var(Type::Int), make_int(1 + static_cast<int32_t>(pick(8)))});
    default:
      return gen(Type::Int, depth);
    }
  }

  Expr load(Type type, int depth) {
    const Buffer* b = buffer_of(type);
    if (!b)
      return Expr();
    std::vector<Expr> idx;
    for (int i = 0; i < b->rank(); ++i)
      idx.push_back(index(depth));
    return Node::make(NodeKind::Load, type, std::move(idx), 0, 0.0f, b->decl());
  }

  Expr leaf(Type type) {
    for (;;) {
      switch (pick(5)) {
      case 0:
      case 1:
        if (type == Type::Bool)
          return make_bool(chance(0.5));
        return type == Type::Int ? make_int(random_int()) : make_float(random_float());
      case 2:
        if (type == Type::Bool || (type == Type::Float && !allow_score_))
          continue;
        return var(type);
      case 3:
        if (type == Type::Bool)
          continue;
        return type == Type::Int ? Expr(int_params_[pick(2)]) : Expr(float_params_[pick(2)]);
      default:
        if (Expr e = load(type, 0))
          return e;
      }
    }
  }

  Expr binop(NodeKind kind, Type type, int depth) {
    Expr a = gen(type, depth), b = gen(type, depth);
    // The DSL rejects a literal zero divisor; folding may still reveal one.
    if ((kind == NodeKind::FloorDiv || kind == NodeKind::Mod || kind == NodeKind::Div) &&
        b->is_const() && (b->ival == 0 && b->fval == 0.0f))
      b = type == Type::Int ? make_int(3) : make_float(0.5f);
    return Node::make(kind, type, {a, b});
  }

  Type other_type(Type type) {
    Type t = static_cast<Type>(pick(3));
    return t == type ? other_type(type) : t;
  }

  Expr inner(Type type, int depth) {
    using K = NodeKind;
    if (chance(0.08)) {
      Expr c = gen(Type::Bool, depth);
      return Node::make(K::Select, type, {c, gen(type, depth), gen(type, depth)});
    }
    if (chance(0.06))
      return Node::make(K::Cast, type, {gen(other_type(type), depth)});
    if (chance(0.08))
      if (Expr e = load(type, depth))
        return e;
    switch (type) {
    case Type::Int: {
      const K kinds[] = {K::Add, K::Sub,    K::Mul,   K::FloorDiv, K::Mod, K::Min,
                         K::Max, K::BitAnd, K::BitOr, K::Neg,      K::Abs, K::Add};
      K k = kinds[pick(std::size(kinds))];
      if (k == K::Neg || k == K::Abs)
        return Node::make(k, type, {gen(type, depth)});
      return binop(k, type, depth);
    }
    case Type::Float: {
      const K kinds[] = {K::Add,  K::Sub,   K::Mul,  K::Div,        K::Min, K::Max,
                         K::Neg,  K::Abs,   K::Exp,  K::Exp2,       K::Log, K::Log2,
                         K::Sqrt, K::Rsqrt, K::Tanh, K::TanhApprox, K::Sin, K::Cos};
      K k = kinds[pick(std::size(kinds))];
      if (k == K::Add || k == K::Sub || k == K::Mul || k == K::Div || k == K::Min || k == K::Max)
        return binop(k, type, depth);
      return Node::make(k, type, {gen(type, depth)});
    }
    case Type::Bool: {
      switch (pick(8)) {
      case 0:
        return Node::make(K::Not, type, {gen(type, depth)});
      case 1:
        return binop(K::And, type, depth);
      case 2:
        return binop(K::Or, type, depth);
      default: {
        const K cmps[] = {K::Lt, K::Le, K::Eq, K::Ne};
        K k = cmps[pick(4)];
        // Mostly ints: that is what masks compare.
        Type t = chance(0.7)                                 ? Type::Int
                 : (chance(0.7) || k == K::Lt || k == K::Le) ? Type::Float
                                                             : Type::Bool;
        if (t == Type::Float && !allow_score_ && chance(0.3))
          t = Type::Int;
        return Node::make(k, type, {gen(t, depth), gen(t, depth)});
      }
      }
    }
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

RandomMod random_expr(std::mt19937& rng, Type type, int max_depth, bool allow_score) {
  RandomMod out;
  Generator gen(rng, out, allow_score);
  out.body = gen.gen(type, max_depth);
  return out;
}

RandomMod random_mask(std::mt19937& rng, int max_depth) {
  return random_expr(rng, Type::Bool, max_depth, false);
}

RandomMod random_score(std::mt19937& rng, int max_depth) {
  return random_expr(rng, Type::Float, max_depth, true);
}

Point random_point(std::mt19937& rng) {
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  auto index = [&]() -> int32_t {
    switch (pick(10)) {
    case 0:
      return INT_MIN;
    case 1:
      return INT_MAX;
    case 2:
      return -1 - pick(5);
    case 3:
      return pick(100000);
    default:
      return pick(30);
    }
  };
  Point p{index(), index(), index(), index(), 0.0f};
  const float specials[] = {kInf, -kInf, kNaN, -0.0f, 0.0f, 1.0f, -1.0f, 1e-40f, 3e38f};
  p.score =
      pick(4) == 0 ? specials[pick(9)] : std::uniform_real_distribution<float>(-20.0f, 20.0f)(rng);
  return p;
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
