#include "flexjit/compiler/Visitor.h"

#include <unordered_set>

namespace flexjit {

std::vector<Expr> topo_order(const std::vector<Expr>& roots) {
  std::vector<Expr> order;
  std::unordered_set<const Node*> seen;
  // Iterative post-order: (node, next operand to visit).
  std::vector<std::pair<Expr, size_t>> stack;
  for (const Expr& root : roots) {
    if (!root || !seen.insert(root.get()).second)
      continue;
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->operands.size()) {
        const Expr& op = node->operands[next++];
        if (seen.insert(op.get()).second)
          stack.emplace_back(op, 0);
        continue;
      }
      order.push_back(node);
      stack.pop_back();
    }
  }
  return order;
}

bool is_library_buffer(const BufferDecl& decl) {
  return decl.name.starts_with("flexjit_");
}

std::unordered_set<const Node*> data_indexed_loads(const std::vector<Expr>& roots) {
  // reads_data: a load of a user's buffer at or below the node
  std::unordered_set<const Node*> reads_data, checked;
  for (const Expr& e : topo_order(roots)) {
    bool below = false;
    for (const Expr& op : e->operands)
      below = below || reads_data.count(op.get()) != 0;
    const bool load = e.kind() == NodeKind::Load;
    if (load && below)
      checked.insert(e.get());
    if (below || (load && !is_library_buffer(*e->buffer)))
      reads_data.insert(e.get());
  }
  return checked;
}

Expr Mutator::mutate(const Expr& root) {
  for (const Expr& e : topo_order(root)) {
    if (memo_.count(e.get()))
      continue;
    std::vector<Expr> ops;
    ops.reserve(e->operands.size());
    for (const Expr& op : e->operands)
      ops.push_back(memo_.at(op.get()));
    memo_.emplace(e.get(), visit(e, std::move(ops)));
  }
  return memo_.at(root.get());
}

Expr substitute_indices(const Expr& root, const IndexExprs& with) {
  class Substitute : public Mutator {
  public:
    explicit Substitute(const IndexExprs& w) : w_(w) {}

  protected:
    Expr visit(const Expr& original, std::vector<Expr> operands) override {
      if (original.kind() == NodeKind::Var) {
        const Expr* by = nullptr;
        switch (static_cast<Var>(original->ival)) {
        case Var::B:
          by = &w_.b;
          break;
        case Var::H:
          by = &w_.h;
          break;
        case Var::Q:
          by = &w_.q;
          break;
        case Var::KV:
          by = &w_.kv;
          break;
        case Var::Score:
          break;
        }
        if (by && *by)
          return *by;
      }
      return rebuild(original, std::move(operands));
    }

  private:
    const IndexExprs& w_;
  };
  return Substitute(with).mutate(root);
}

} // namespace flexjit
