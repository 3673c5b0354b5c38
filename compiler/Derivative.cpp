// d(score_mod)/d(score), and d(score_mod)/d(each load of a buffer), by reverse
// accumulation over the DAG (one pass, two kinds of leaves): every float node that
// reaches a leaf gets an adjoint (the sum of its users' contributions, complete
// once every user was visited in reverse topological order); the derivative is the
// adjoint reaching the leaf. Where the function is not differentiable the rules pick
// torch's one-sided choice: min/max route the whole adjoint to the first operand on a
// tie, abs has slope 0 at 0, select routes it to the branch taken; int and bool values
// (indices, comparisons, casts to int) carry none.
#include <algorithm>
#include <functional>
#include <unordered_map>

#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

using K = NodeKind;

Expr f(float v) {
  return make_float(v);
}
Expr op(K kind, Expr a, Expr b) {
  return Node::make(kind, Type::Float, {std::move(a), std::move(b)});
}
Expr op(K kind, Expr a) {
  return Node::make(kind, Type::Float, {std::move(a)});
}
Expr mul(Expr a, Expr b) {
  return op(K::Mul, std::move(a), std::move(b));
}
Expr select(Expr cond, Expr a, Expr b) {
  return Node::make(K::Select, Type::Float, {std::move(cond), std::move(a), std::move(b)});
}
Expr cmp(K kind, Expr a, Expr b) {
  return Node::make(kind, Type::Bool, {std::move(a), std::move(b)});
}

constexpr float kLn2 = 0.6931471805599453f;

// Reverse accumulation from `body` down to its leaves of interest (`is_leaf`: Var::Score,
// or loads of the buffers asked for): each leaf's adjoint, unsummed (one contribution per
// use), in the order the leaves are met, leaves before any of their own operands.
std::vector<std::pair<Expr, std::vector<Expr>>>
reverse_adjoints(const Expr& body, const std::function<bool(const Expr&)>& is_leaf) {
  std::unordered_map<const Node*, std::vector<Expr>> contributions;
  contributions[body.get()].push_back(f(1.0f));
  std::vector<std::pair<Expr, std::vector<Expr>>> leaves;

  const std::vector<Expr> order = topo_order(body); // operands before users
  // Only what reaches a leaf carries an adjoint (through float nodes).
  std::unordered_map<const Node*, bool> reaches;
  for (const Expr& e : order) {
    bool r = e.type() == Type::Float && is_leaf(e);
    for (const Expr& operand : e->operands)
      r = r || reaches[operand.get()];
    reaches[e.get()] = r;
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const Expr& e = *it;
    auto found = contributions.find(e.get());
    if (found == contributions.end() || e.type() != Type::Float)
      continue;
    std::vector<Expr> adjoints = std::move(found->second);
    contributions.erase(found);
    if (is_leaf(e)) {
      leaves.emplace_back(e, std::move(adjoints));
      continue; // a leaf's operands (a load's indices) carry no derivative
    }
    Expr g = adjoints[0];
    for (size_t i = 1; i < adjoints.size(); ++i)
      g = op(K::Add, g, adjoints[i]);

    auto to = [&](size_t i, Expr adjoint) {
      const Expr& operand = e->operands[i];
      if (operand.type() == Type::Float && reaches[operand.get()])
        contributions[operand.get()].push_back(std::move(adjoint));
    };
    const std::vector<Expr>& x = e->operands;
    switch (e.kind()) {
    case K::Add:
      to(0, g);
      to(1, g);
      break;
    case K::Sub:
      to(0, g);
      to(1, op(K::Neg, g));
      break;
    case K::Mul:
      to(0, mul(g, x[1]));
      to(1, mul(g, x[0]));
      break;
    case K::Div: // d(a/b) = da / b - a db / b^2
      to(0, op(K::Div, g, x[1]));
      to(1, op(K::Neg, op(K::Div, mul(g, e), x[1])));
      break;
    case K::Min:
      to(0, select(cmp(K::Le, x[0], x[1]), g, f(0)));
      to(1, select(cmp(K::Le, x[0], x[1]), f(0), g));
      break;
    case K::Max:
      to(0, select(cmp(K::Le, x[1], x[0]), g, f(0)));
      to(1, select(cmp(K::Le, x[1], x[0]), f(0), g));
      break;
    case K::Neg:
      to(0, op(K::Neg, g));
      break;
    case K::Abs: // sign(a) g, with sign(0) = 0
      to(0, select(cmp(K::Lt, x[0], f(0)), op(K::Neg, g), select(cmp(K::Lt, f(0), x[0]), g, f(0))));
      break;
    case K::Exp:
      to(0, mul(g, e));
      break;
    case K::Exp2:
      to(0, mul(g, mul(e, f(kLn2))));
      break;
    case K::Log:
      to(0, op(K::Div, g, x[0]));
      break;
    case K::Log2:
      to(0, op(K::Div, g, mul(x[0], f(kLn2))));
      break;
    case K::Sqrt: // g / (2 sqrt(a))
      to(0, op(K::Div, g, mul(f(2), e)));
      break;
    case K::Rsqrt: // d a^(-1/2) = -a^(-1/2) / (2a)
      to(0, op(K::Neg, op(K::Div, mul(g, e), mul(f(2), x[0]))));
      break;
    case K::Tanh:
    case K::TanhApprox: // 1 - tanh^2, of the value the mod computed
      to(0, mul(g, op(K::Sub, f(1), mul(e, e))));
      break;
    case K::Sin:
      to(0, mul(g, op(K::Cos, x[0])));
      break;
    case K::Cos:
      to(0, op(K::Neg, mul(g, op(K::Sin, x[0]))));
      break;
    case K::Select:
      to(1, select(x[0], g, f(0)));
      to(2, select(x[0], f(0), g));
      break;
    case K::Var: // the score, when it is no leaf: reaches none, so never visited
    case K::FloatConst:
    case K::Param:
    case K::Load:
    case K::Cast: // from int or bool: no derivative
      break;
    default:
      FLEXJIT_ASSERT(false, "derivative: no rule for float node kind {}",
                     static_cast<int>(e.kind()));
    }
  }
  return leaves;
}

Expr sum(const std::vector<Expr>& terms) {
  if (terms.empty())
    return make_float(0.0f);
  Expr total = terms[0];
  for (size_t i = 1; i < terms.size(); ++i)
    total = op(K::Add, total, terms[i]);
  return optimize(total);
}

} // namespace

Expr score_derivative(const Expr& body) {
  FLEXJIT_ASSERT(body.type() == Type::Float, "score_derivative of a {} expression",
                 to_string(body.type()));
  std::vector<Expr> terms;
  for (auto& [leaf, adjoints] : reverse_adjoints(body, [](const Expr& e) {
         return e.kind() == K::Var && static_cast<Var>(e->ival) == Var::Score;
       }))
    terms.insert(terms.end(), adjoints.begin(), adjoints.end());
  return sum(terms);
}

std::vector<LoadAdjoint> load_adjoints(const Expr& body, const std::vector<std::string>& buffers) {
  FLEXJIT_ASSERT(body.type() == Type::Float, "load_adjoints of a {} expression",
                 to_string(body.type()));
  auto asked = [&](const Expr& e) {
    return e.kind() == K::Load &&
           std::find(buffers.begin(), buffers.end(), e->buffer->name) != buffers.end();
  };
  std::vector<LoadAdjoint> out;
  for (auto& [leaf, adjoints] : reverse_adjoints(body, asked))
    out.push_back({leaf, sum(adjoints)});
  std::stable_sort(out.begin(), out.end(), [](const LoadAdjoint& a, const LoadAdjoint& b) {
    return a.load->buffer->name < b.load->buffer->name;
  });
  return out;
}

} // namespace flexjit
