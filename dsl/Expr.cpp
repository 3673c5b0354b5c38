#include "flexjit/dsl/Expr.h"

#include <bit>
#include <mutex>
#include <unordered_map>

#include "flexjit/support/Error.h"

namespace flexjit {

const char* to_string(NodeKind kind) {
  switch (kind) {
#define FLEXJIT_NAME(name)                                                                         \
  case NodeKind::name:                                                                             \
    return #name;
    FLEXJIT_NODE_KINDS(FLEXJIT_NAME)
#undef FLEXJIT_NAME
  }
  return "?";
}

int num_node_kinds() {
  int n = 0;
#define FLEXJIT_COUNT(name) ++n;
  FLEXJIT_NODE_KINDS(FLEXJIT_COUNT)
#undef FLEXJIT_COUNT
  return n;
}

const char* var_name(Var v) {
  switch (v) {
  case Var::B:
    return "b";
  case Var::H:
    return "h";
  case Var::Q:
    return "q_idx";
  case Var::KV:
    return "kv_idx";
  case Var::Score:
    return "score";
  }
  return "?";
}

Type Expr::type() const {
  return node_->type;
}
NodeKind Expr::kind() const {
  return node_->kind;
}

namespace {

size_t hash_combine(size_t seed, size_t v) {
  return seed ^ (v + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2));
}

size_t hash_node(const Node& n) {
  size_t h = hash_combine(static_cast<size_t>(n.kind), static_cast<size_t>(n.type));
  h = hash_combine(h, static_cast<size_t>(n.ival));
  h = hash_combine(h, std::bit_cast<uint32_t>(n.fval));
  h = hash_combine(h, reinterpret_cast<size_t>(n.buffer.get()));
  h = hash_combine(h, reinterpret_cast<size_t>(n.param.get()));
  for (const Expr& op : n.operands)
    h = hash_combine(h, reinterpret_cast<size_t>(op.get()));
  return h;
}

bool same_node(const Node& a, const Node& b) {
  if (a.kind != b.kind || a.type != b.type || a.ival != b.ival ||
      std::bit_cast<uint32_t>(a.fval) != std::bit_cast<uint32_t>(b.fval) || a.buffer != b.buffer ||
      a.param != b.param || a.operands.size() != b.operands.size())
    return false;
  for (size_t i = 0; i < a.operands.size(); ++i)
    if (!a.operands[i].same_as(b.operands[i]))
      return false;
  return true;
}

// The intern table holds weak references, so nodes die with their last
// handle; expired entries are swept when the table doubles.
struct InternTable {
  std::mutex mutex;
  std::unordered_multimap<size_t, std::weak_ptr<const Node>> nodes;
  size_t sweep_at = 1024;

  Expr intern(Node&& candidate) {
    std::lock_guard lock(mutex);
    auto [begin, end] = nodes.equal_range(candidate.hash);
    for (auto it = begin; it != end; ++it)
      if (NodePtr existing = it->second.lock(); existing && same_node(*existing, candidate))
        return Expr(std::move(existing));
    auto node = std::make_shared<const Node>(std::move(candidate));
    nodes.emplace(node->hash, node);
    if (nodes.size() >= sweep_at) {
      std::erase_if(nodes, [](const auto& kv) { return kv.second.expired(); });
      sweep_at = std::max<size_t>(1024, nodes.size() * 2);
    }
    return Expr(std::move(node));
  }

  size_t live() {
    std::lock_guard lock(mutex);
    size_t n = 0;
    for (const auto& kv : nodes)
      n += !kv.second.expired();
    return n;
  }
};

InternTable& table() {
  static InternTable* t = new InternTable; // never destroyed: nodes may outlive statics
  return *t;
}

bool is_numeric(Type t) {
  return t == Type::Int || t == Type::Float;
}

void check_types(const Node& n) {
  auto arity = [&](size_t k) {
    FLEXJIT_ASSERT(n.operands.size() == k, "{} takes {} operands, got {}", to_string(n.kind), k,
                   n.operands.size());
    for (const Expr& op : n.operands)
      FLEXJIT_ASSERT(op, "{} has a null operand", to_string(n.kind));
  };
  auto op_type = [&](size_t i) { return n.operands[i].type(); };
  auto all_ops = [&](Type t) {
    for (const Expr& op : n.operands)
      FLEXJIT_ASSERT(op.type() == t, "{} expects {} operands, got {}", to_string(n.kind),
                     to_string(t), to_string(op.type()));
  };
  switch (n.kind) {
  case NodeKind::IntConst:
    arity(0);
    FLEXJIT_ASSERT(n.type == Type::Int, "IntConst must be int");
    return;
  case NodeKind::FloatConst:
    arity(0);
    FLEXJIT_ASSERT(n.type == Type::Float, "FloatConst must be float");
    return;
  case NodeKind::BoolConst:
    arity(0);
    FLEXJIT_ASSERT(n.type == Type::Bool && (n.ival == 0 || n.ival == 1), "bad BoolConst");
    return;
  case NodeKind::Var:
    arity(0);
    FLEXJIT_ASSERT(n.ival >= 0 && n.ival <= 4, "bad Var index {}", n.ival);
    FLEXJIT_ASSERT(n.type == (n.ival == static_cast<int>(Var::Score) ? Type::Float : Type::Int),
                   "bad Var type");
    return;
  case NodeKind::Param:
    arity(0);
    FLEXJIT_ASSERT(n.param && n.param->type == n.type, "Param needs a matching ParamDecl");
    return;
  case NodeKind::Load:
    FLEXJIT_ASSERT(n.buffer, "Load needs a BufferDecl");
    arity(static_cast<size_t>(n.buffer->rank));
    all_ops(Type::Int);
    FLEXJIT_ASSERT(n.type == value_type(n.buffer->dtype), "Load type must match its dtype");
    return;
  case NodeKind::Add:
  case NodeKind::Sub:
  case NodeKind::Mul:
  case NodeKind::Min:
  case NodeKind::Max:
    arity(2);
    FLEXJIT_ASSERT(is_numeric(n.type), "{} must be numeric", to_string(n.kind));
    all_ops(n.type);
    return;
  case NodeKind::Div:
    arity(2);
    FLEXJIT_ASSERT(n.type == Type::Float, "Div is float division");
    all_ops(Type::Float);
    return;
  case NodeKind::FloorDiv:
  case NodeKind::Mod:
  case NodeKind::BitAnd:
  case NodeKind::BitOr:
    arity(2);
    FLEXJIT_ASSERT(n.type == Type::Int, "{} is an int operation", to_string(n.kind));
    all_ops(Type::Int);
    return;
  case NodeKind::Lt:
  case NodeKind::Le:
    arity(2);
    FLEXJIT_ASSERT(n.type == Type::Bool && is_numeric(op_type(0)) && op_type(0) == op_type(1),
                   "{} compares two numbers of one type", to_string(n.kind));
    return;
  case NodeKind::Eq:
  case NodeKind::Ne:
    arity(2);
    FLEXJIT_ASSERT(n.type == Type::Bool && op_type(0) == op_type(1),
                   "{} compares two values of one type", to_string(n.kind));
    return;
  case NodeKind::And:
  case NodeKind::Or:
    arity(2);
    FLEXJIT_ASSERT(n.type == Type::Bool, "{} is bool", to_string(n.kind));
    all_ops(Type::Bool);
    return;
  case NodeKind::Not:
    arity(1);
    FLEXJIT_ASSERT(n.type == Type::Bool, "Not is bool");
    all_ops(Type::Bool);
    return;
  case NodeKind::Neg:
  case NodeKind::Abs:
    arity(1);
    FLEXJIT_ASSERT(is_numeric(n.type), "{} must be numeric", to_string(n.kind));
    all_ops(n.type);
    return;
  case NodeKind::Exp:
  case NodeKind::Exp2:
  case NodeKind::Log:
  case NodeKind::Log2:
  case NodeKind::Sqrt:
  case NodeKind::Rsqrt:
  case NodeKind::Tanh:
  case NodeKind::TanhApprox:
  case NodeKind::Sin:
  case NodeKind::Cos:
    arity(1);
    FLEXJIT_ASSERT(n.type == Type::Float, "{} is float", to_string(n.kind));
    all_ops(Type::Float);
    return;
  case NodeKind::Select:
    arity(3);
    FLEXJIT_ASSERT(op_type(0) == Type::Bool, "Select's condition must be bool");
    FLEXJIT_ASSERT(op_type(1) == n.type && op_type(2) == n.type,
                   "Select's branches must have the node's type");
    return;
  case NodeKind::Cast:
    arity(1);
    return;
  }
  FLEXJIT_ASSERT(false, "unknown node kind {}", static_cast<int>(n.kind));
}

} // namespace

Expr Node::make(NodeKind kind, Type type, std::vector<Expr> operands, int64_t ival, float fval,
                std::shared_ptr<const BufferDecl> buffer, std::shared_ptr<const ParamDecl> param) {
  Node n;
  n.kind = kind;
  n.type = type;
  n.ival = ival;
  n.fval = fval;
  n.buffer = std::move(buffer);
  n.param = std::move(param);
  n.operands = std::move(operands);
  check_types(n);
  n.hash = hash_node(n);
  return table().intern(std::move(n));
}

Expr make_int(int32_t v) {
  return Node::make(NodeKind::IntConst, Type::Int, {}, v);
}
Expr make_float(float v) {
  return Node::make(NodeKind::FloatConst, Type::Float, {}, 0, v);
}
Expr make_bool(bool v) {
  return Node::make(NodeKind::BoolConst, Type::Bool, {}, v ? 1 : 0);
}
Expr make_var(Var v) {
  return Node::make(NodeKind::Var, v == Var::Score ? Type::Float : Type::Int, {},
                    static_cast<int64_t>(v));
}

Expr rebuild(const Expr& e, std::vector<Expr> operands) {
  bool changed = operands.size() != e->operands.size();
  for (size_t i = 0; !changed && i < operands.size(); ++i)
    changed = !operands[i].same_as(e->operands[i]);
  if (!changed)
    return e;
  return Node::make(e->kind, e->type, std::move(operands), e->ival, e->fval, e->buffer, e->param);
}

size_t interned_node_count() {
  return table().live();
}

} // namespace flexjit
