// The expression IR: immutable, hash-consed nodes behind a value-type handle.
//
// Every node is built through Node::make, which interns it: two requests for
// the same kind, type, payload and (pointer-identical) operands return the same
// node, so structurally equal sub-expressions are shared (CSE by construction)
// and equality of handles is pointer equality.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flexjit/dsl/Types.h"

namespace flexjit {

// One list of node kinds; every switch over NodeKind covers all of them (no
// default:), so -Wswitch finds the pass that forgot a new kind.
#define FLEXJIT_NODE_KINDS(X)                                                                      \
  X(IntConst)   /* int value in ival */                                                            \
  X(FloatConst) /* float value in fval */                                                          \
  X(BoolConst)  /* 0 or 1 in ival */                                                               \
  X(Var)        /* ival: Var::B, H, Q, KV or Score */                                              \
  X(Param)      /* run-time scalar; decl is a ParamDecl */                                         \
  X(Load)       /* buffer element; decl is a BufferDecl, operands are the indices */               \
  X(Add)                                                                                           \
  X(Sub)                                                                                           \
  X(Mul)                                                                                           \
  X(Div)          /* float division */                                                             \
      X(FloorDiv) /* int division rounding toward -inf (torch's //) */                             \
      X(Mod)      /* int remainder with the divisor's sign (torch's %) */                          \
      X(Min) X(Max) X(Lt) X(Le) X(Eq) X(Ne) X(And) X(Or) X(Not) /* bool logic */                   \
      X(BitAnd) X(BitOr)                                        /* int bitwise */                  \
      X(Neg) X(Abs) X(Exp) X(Exp2) X(Log) X(Log2) X(Sqrt) X(Rsqrt) X(Tanh) X(TanhApprox) X(Sin)    \
          X(Cos) X(Select) /* operands: cond, then, else */                                        \
      X(Cast)              /* to the node's type */

enum class NodeKind : uint8_t {
#define FLEXJIT_ENUM(name) name,
  FLEXJIT_NODE_KINDS(FLEXJIT_ENUM)
#undef FLEXJIT_ENUM
};

const char* to_string(NodeKind kind);
int num_node_kinds();

// The mod variables, in the ABI's argument order.
enum class Var : uint8_t { B = 0, H = 1, Q = 2, KV = 3, Score = 4 };
const char* var_name(Var v); // "b", "h", "q_idx", "kv_idx", "score"

// A captured tensor. Its identity is the object; its structural identity (what
// the kernel cache key sees) is name, dtype and rank, never the data.
struct BufferDecl {
  std::string name;
  DType dtype;
  int rank;
  // The data captured at declaration or by Buffer::bind; call-time bindings
  // override it.
  std::optional<TensorView> binding;
};

// A run-time scalar. Changing its value never recompiles.
struct ParamDecl {
  std::string name;
  Type type; // Int or Float
  std::optional<double> default_value;
};

struct Node;
using NodePtr = std::shared_ptr<const Node>;

// A handle to an interned node; cheap to copy, compared by identity.
class Expr {
public:
  Expr() = default;
  explicit Expr(NodePtr node) : node_(std::move(node)) {}

  const Node* get() const { return node_.get(); }
  const Node* operator->() const { return node_.get(); }
  const Node& operator*() const { return *node_; }
  explicit operator bool() const { return node_ != nullptr; }
  bool same_as(const Expr& other) const { return node_ == other.node_; }
  const NodePtr& ptr() const { return node_; }

  Type type() const;
  NodeKind kind() const;

private:
  NodePtr node_;
};

struct Node {
  NodeKind kind;
  Type type;
  int64_t ival = 0;                         // IntConst, BoolConst, Var
  float fval = 0.0f;                        // FloatConst
  std::shared_ptr<const BufferDecl> buffer; // Load
  std::shared_ptr<const ParamDecl> param;   // Param
  std::vector<Expr> operands;
  size_t hash = 0; // of kind, type, payload and operand identities

  // Interns a node. Checks operand types (FLEXJIT_ASSERT: the typed front end
  // and the passes must only build well-typed nodes).
  static Expr make(NodeKind kind, Type type, std::vector<Expr> operands, int64_t ival = 0,
                   float fval = 0.0f, std::shared_ptr<const BufferDecl> buffer = nullptr,
                   std::shared_ptr<const ParamDecl> param = nullptr);

  bool is_const() const {
    return kind == NodeKind::IntConst || kind == NodeKind::FloatConst ||
           kind == NodeKind::BoolConst;
  }
};

// Builders for leaves and a generic rebuild used by mutators.
Expr make_int(int32_t v);
Expr make_float(float v);
Expr make_bool(bool v);
Expr make_var(Var v);
// The same node kind/payload with new operands (returns `e` itself if unchanged).
Expr rebuild(const Expr& e, std::vector<Expr> operands);

// Number of live interned nodes (for tests of sharing and leaks).
size_t interned_node_count();

} // namespace flexjit
