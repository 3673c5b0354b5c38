#include <cstring>

#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

// Node::make checks a node's invariants and interns it, so re-making each
// node re-asserts them with the one checker and must return the node itself.
void check_nodes(const Expr& body) {
  for (const Expr& e : topo_order(body)) {
    Expr again = Node::make(e.kind(), e.type(), e->operands, e->ival, e->fval, e->buffer, e->param);
    FLEXJIT_ASSERT(again.same_as(e), "node {} was not interned", to_string(e.kind()));
  }
}

// Simplification folds constants and throws on a divisor that folds to zero;
// say which mod it came from.
void check_divisions(const char* what, const std::string& name, const Expr& body) {
  try {
    simplify(body);
  } catch (const Error& err) {
    const char* msg = err.what();
    if (std::strncmp(msg, "flexjit: ", 9) == 0)
      msg += 9;
    fail("{} '{}': {}", what, name, msg);
  }
}

} // namespace

void type_check(const MaskMod& mod) {
  const Expr& body = mod.body();
  FLEXJIT_ASSERT(body && body.type() == Type::Bool, "mask_mod '{}' must have a bool body",
                 mod.name());
  check_nodes(body);
  if (analyze_dependence(body).score)
    fail("mask_mod '{}' reads score; a mask_mod depends only on b, h, q_idx, kv_idx (use a "
         "score_mod to change scores)",
         mod.name());
  check_divisions("mask_mod", mod.name(), body);
}

void type_check(const ScoreMod& mod) {
  const Expr& body = mod.body();
  FLEXJIT_ASSERT(body && body.type() == Type::Float, "score_mod '{}' must have a float body",
                 mod.name());
  check_nodes(body);
  check_divisions("score_mod", mod.name(), body);
}

} // namespace flexjit
