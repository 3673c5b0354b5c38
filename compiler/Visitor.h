// Graph-aware traversal: each node of a DAG is visited once, operands first.
#pragma once

#include <functional>
#include <unordered_map>
#include <vector>

#include "flexjit/dsl/Expr.h"

namespace flexjit {

// The nodes reachable from `roots`, each once, every operand before its users.
std::vector<Expr> topo_order(const std::vector<Expr>& roots);
inline std::vector<Expr> topo_order(const Expr& root) {
  return topo_order(std::vector{root});
}

// Rebuilds a DAG bottom-up. visit() sees a node and its already-mutated
// operands; the default rebuilds only if an operand changed, so shared nodes
// stay shared and an unchanged DAG comes back pointer-identical.
class Mutator {
public:
  virtual ~Mutator() = default;
  Expr mutate(const Expr& e);

protected:
  virtual Expr visit(const Expr& original, std::vector<Expr> operands) {
    return rebuild(original, std::move(operands));
  }

private:
  std::unordered_map<const Node*, Expr> memo_;
};

// `root` with the index variables b, h, q_idx and kv_idx replaced by the expressions given for
// them (a null Expr keeps that variable): the rewrite behind offset_mod and the varlen mods.
// Deterministic, so rewriting one DAG twice gives one (hash-consed) DAG.
struct IndexExprs {
  Expr b = Expr(), h = Expr(), q = Expr(), kv = Expr();
};
Expr substitute_indices(const Expr& root, const IndexExprs& with);

} // namespace flexjit
