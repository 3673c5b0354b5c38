// Canonical operand order for commutative nodes. Hash-consing then makes
// a + b and b + a one node. The order must not depend on pointers (the cache
// key is the printed text of the result), so it compares a structural hash
// built from kinds, types, payloads and names, tie-broken by printed text.
#include <bit>
#include <unordered_map>

#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdULL;
  return h ^ (h >> 33);
}

class Canonicalizer : public Mutator {
protected:
  Expr visit(const Expr& original, std::vector<Expr> ops) override {
    // Constants last (Simplify's rules look for them on the right), then by
    // structure.
    if (is_commutative(original.kind()) && before(ops[1], ops[0]))
      std::swap(ops[0], ops[1]);
    return rebuild(original, std::move(ops));
  }

private:
  bool before(const Expr& x, const Expr& y) {
    if (x.same_as(y))
      return false;
    if (x->is_const() != y->is_const())
      return !x->is_const();
    uint64_t hx = hash(x), hy = hash(y);
    if (hx != hy)
      return hx < hy;
    return print(x) < print(y); // a collision, or two same-named buffers: rare
  }

  // Bottom-up structural hash; operands are already canonical when a node is
  // hashed, so it does not depend on the order the user wrote them in.
  uint64_t hash(const Expr& e) {
    if (auto it = hashes_.find(e.get()); it != hashes_.end())
      return it->second.second;
    const Node& n = *e;
    uint64_t h = mix(static_cast<uint64_t>(n.kind) + 1, static_cast<uint64_t>(n.type));
    h = mix(h, static_cast<uint64_t>(n.ival));
    h = mix(h, std::bit_cast<uint32_t>(n.fval));
    if (n.buffer) {
      h = mix(h, hash_text(n.buffer->name).lo);
      h = mix(h, static_cast<uint64_t>(n.buffer->dtype) * 16 + n.buffer->rank);
    }
    if (n.param) {
      h = mix(h, hash_text(n.param->name).lo);
      h = mix(h, static_cast<uint64_t>(n.param->type));
    }
    for (const Expr& op : n.operands)
      h = mix(h, hash(op));
    hashes_.emplace(e.get(), std::pair{e, h}); // holds e so its address is not reused
    return h;
  }

  std::unordered_map<const Node*, std::pair<Expr, uint64_t>> hashes_;
};

} // namespace

bool is_commutative(NodeKind kind) {
  switch (kind) {
  case NodeKind::Add:
  case NodeKind::Mul:
  case NodeKind::Min:
  case NodeKind::Max:
  case NodeKind::Eq:
  case NodeKind::Ne:
  case NodeKind::And:
  case NodeKind::Or:
  case NodeKind::BitAnd:
  case NodeKind::BitOr:
    return true;
  case NodeKind::IntConst:
  case NodeKind::FloatConst:
  case NodeKind::BoolConst:
  case NodeKind::Var:
  case NodeKind::Param:
  case NodeKind::Load:
  case NodeKind::Sub:
  case NodeKind::Div:
  case NodeKind::FloorDiv:
  case NodeKind::Mod:
  case NodeKind::Lt:
  case NodeKind::Le:
  case NodeKind::Not:
  case NodeKind::Neg:
  case NodeKind::Abs:
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
  case NodeKind::Select:
  case NodeKind::Cast:
    return false;
  }
  return false;
}

Expr cse(const Expr& e) {
  FLEXJIT_ASSERT(e, "cse needs a non-null expression");
  return Canonicalizer().mutate(e);
}

Expr optimize(const Expr& e) {
  Expr cur = e;
  for (int round = 0; round < 32; ++round) {
    Expr next = cse(simplify(cur));
    if (next.same_as(cur))
      return cur;
    cur = next;
  }
  return cur;
}

} // namespace flexjit
