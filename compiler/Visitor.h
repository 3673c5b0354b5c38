// Graph-aware traversal: each node of a DAG is visited once, operands first.
#pragma once

#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "flexjit/dsl/Expr.h"

namespace flexjit {

// The nodes reachable from `roots`, each once, every operand before its users.
std::vector<Expr> topo_order(const std::vector<Expr>& roots);
inline std::vector<Expr> topo_order(const Expr& root) {
  return topo_order(std::vector{root});
}

// The loads below `roots` whose index reads buffer data (a load inside one of its indices, e.g.
// `offsets[doc[q_idx]]`'s outer load). Such an index is data, not geometry: out of range it is
// an error of the data (the interpreter throws; a kernel reads 0 and reports
// FLEXJIT_DEVICE_ERROR_LOAD; block masks never decide a tile where it may fall outside), where a
// load indexed by positions and params reads 0 outside its buffer (compiler/Interpreter.h).
// Data read from the library's own buffers (is_library_buffer: varlen's token sequences, built
// from cu_seqlens the host checked) is trusted: an index it gives is not data-indexed.
std::unordered_set<const Node*> data_indexed_loads(const std::vector<Expr>& roots);
// Whether a buffer is one the library builds and checks itself: its name begins "flexjit_"
// (a prefix the README reserves for the library).
bool is_library_buffer(const BufferDecl& decl);
inline std::unordered_set<const Node*> data_indexed_loads(const Expr& root) {
  return data_indexed_loads(std::vector{root});
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
