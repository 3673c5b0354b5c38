#include <bit>
#include <cmath>
#include <cstdint>
#include <unordered_map>

#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

// Shortest round-trip text, marked as a float ("1.0f") so it never reads as an int.
// NaNs keep their bits (distinct nodes print distinctly, and the parser restores
// them): "nan" and "-nan" for the default quiet NaN and its negation, else
// "nan(0x<bits>)".
std::string float_text(float v) {
  if (std::isnan(v)) {
    const uint32_t bits = std::bit_cast<uint32_t>(v);
    if (bits == 0x7fc00000u)
      return "nan";
    if (bits == 0xffc00000u)
      return "-nan";
    return fmt::format("nan({:#010x})", bits);
  }
  if (std::isinf(v))
    return v > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".e") == std::string::npos)
    s += ".0";
  return s + "f";
}

const char* infix(NodeKind kind) {
  switch (kind) {
  case NodeKind::Add:
    return "+";
  case NodeKind::Sub:
    return "-";
  case NodeKind::Mul:
    return "*";
  case NodeKind::Div:
    return "/";
  case NodeKind::FloorDiv:
    return "//";
  case NodeKind::Mod:
    return "%";
  case NodeKind::Lt:
    return "<";
  case NodeKind::Le:
    return "<=";
  case NodeKind::Eq:
    return "==";
  case NodeKind::Ne:
    return "!=";
  case NodeKind::And:
    return "&&";
  case NodeKind::Or:
    return "||";
  case NodeKind::BitAnd:
    return "&";
  case NodeKind::BitOr:
    return "|";
  case NodeKind::IntConst:
  case NodeKind::FloatConst:
  case NodeKind::BoolConst:
  case NodeKind::Var:
  case NodeKind::Param:
  case NodeKind::Load:
  case NodeKind::Min:
  case NodeKind::Max:
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
    return nullptr;
  }
  return nullptr;
}

// A function-call spelling for the kinds that are not infix.
std::string call_name(const Node& n) {
  switch (n.kind) {
  case NodeKind::Min:
    return "min";
  case NodeKind::Max:
    return "max";
  case NodeKind::Not:
    return "!";
  case NodeKind::Neg:
    return "-";
  case NodeKind::Abs:
    return "abs";
  case NodeKind::Exp:
    return "exp";
  case NodeKind::Exp2:
    return "exp2";
  case NodeKind::Log:
    return "log";
  case NodeKind::Log2:
    return "log2";
  case NodeKind::Sqrt:
    return "sqrt";
  case NodeKind::Rsqrt:
    return "rsqrt";
  case NodeKind::Tanh:
    return "tanh";
  case NodeKind::TanhApprox:
    return "tanh_approx";
  case NodeKind::Sin:
    return "sin";
  case NodeKind::Cos:
    return "cos";
  case NodeKind::Select:
    return "where";
  case NodeKind::Cast:
    return std::string(to_string(n.type));
  case NodeKind::IntConst:
  case NodeKind::FloatConst:
  case NodeKind::BoolConst:
  case NodeKind::Var:
  case NodeKind::Param:
  case NodeKind::Load:
  case NodeKind::Add:
  case NodeKind::Sub:
  case NodeKind::Mul:
  case NodeKind::Div:
  case NodeKind::FloorDiv:
  case NodeKind::Mod:
  case NodeKind::Lt:
  case NodeKind::Le:
  case NodeKind::Eq:
  case NodeKind::Ne:
  case NodeKind::And:
  case NodeKind::Or:
  case NodeKind::BitAnd:
  case NodeKind::BitOr:
    break;
  }
  FLEXJIT_ASSERT(false, "{} has no call spelling", to_string(n.kind));
}

std::string leaf_text(const Node& n) {
  if (n.kind == NodeKind::IntConst)
    return std::to_string(n.ival);
  if (n.kind == NodeKind::FloatConst)
    return float_text(n.fval);
  if (n.kind == NodeKind::BoolConst)
    return n.ival ? "true" : "false";
  if (n.kind == NodeKind::Var)
    return var_name(static_cast<Var>(n.ival));
  FLEXJIT_ASSERT(n.kind == NodeKind::Param, "{} is not a leaf", to_string(n.kind));
  return fmt::format("{}:{}", n.param->name, to_string(n.param->type));
}

} // namespace

std::string print(const Expr& root) {
  FLEXJIT_ASSERT(root, "print needs a non-null expression");
  std::vector<Expr> order = topo_order(root);
  std::unordered_map<const Node*, int> uses;
  for (const Expr& e : order)
    for (const Expr& op : e->operands)
      ++uses[op.get()];
  // Text of each node as its users see it: a let name or the inline spelling.
  std::unordered_map<const Node*, std::string> text;
  std::string out;
  int next_let = 0;
  for (const Expr& e : order) {
    const Node& n = *e;
    std::string s;
    if (n.operands.empty()) {
      s = leaf_text(n);
    } else {
      std::vector<const std::string*> ops;
      for (const Expr& op : n.operands)
        ops.push_back(&text.at(op.get()));
      if (n.kind == NodeKind::Load) {
        s = fmt::format("{}:{}:{}[", n.buffer->name, to_string(n.buffer->dtype), n.buffer->rank);
        for (size_t i = 0; i < ops.size(); ++i)
          s += (i ? ", " : "") + *ops[i];
        s += "]";
      } else if (const char* op = infix(n.kind)) {
        s = fmt::format("({} {} {})", *ops[0], op, *ops[1]);
      } else {
        s = call_name(n) + "(";
        for (size_t i = 0; i < ops.size(); ++i)
          s += (i ? ", " : "") + *ops[i];
        s += ")";
      }
    }
    if (!n.operands.empty() && uses[e.get()] >= 2) {
      std::string name = fmt::format("t{}", next_let++);
      out += fmt::format("let {} = {}\n", name, s);
      s = std::move(name);
    }
    text.emplace(e.get(), std::move(s));
  }
  return out + text.at(root.get());
}

Hash128 structural_hash(const MaskMod& mod) {
  return hash_text(print(optimize(mod.body())));
}
Hash128 structural_hash(const ScoreMod& mod) {
  return hash_text(print(optimize(mod.body())));
}

} // namespace flexjit
