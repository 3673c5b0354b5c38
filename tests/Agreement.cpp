#include "tests/Agreement.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <unordered_map>

#include <fmt/format.h>

#include "compiler/Passes.h"
#include "compiler/Semantics.h"
#include "compiler/Visitor.h"
#include "tests/RandomMods.h"

namespace flexjit::testing {

namespace {

// Position of a float on the ordered integer line: -0 and +0 are both 0, and
// neighbouring floats (FLT_MAX and inf, the subnormals) are 1 apart.
int64_t ordered(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  return bits & 0x80000000u ? -static_cast<int64_t>(bits & 0x7fffffffu)
                            : static_cast<int64_t>(bits);
}

float from_ordered(int64_t o) {
  constexpr int64_t kInfBits = 0x7f800000;
  o = std::clamp(o, -kInfBits, kInfBits);
  return o < 0 ? std::bit_cast<float>(static_cast<uint32_t>(-o) | 0x80000000u)
               : std::bit_cast<float>(static_cast<uint32_t>(o));
}

// Moves an inexact result to position `t` in [-1, 1] of its band.
float perturb(NodeKind kind, float y, double t) {
  if (std::isnan(y))
    return y;
  if (kind != NodeKind::TanhApprox)
    return from_ordered(ordered(y) + static_cast<int64_t>(std::lround(t * kTranscendentalUlps)));
  double moved = static_cast<double>(y) * (1.0 + t * kTanhApproxRelative);
  if (std::fabs(y) < std::numeric_limits<float>::min())
    moved += t * std::numeric_limits<float>::min();
  return static_cast<float>(moved);
}

// The optimized body as a tape the rule-4 search re-evaluates with chosen
// errors in the inexact nodes.
struct Tape {
  struct Instr {
    NodeKind kind;
    Type type, operand_type;
    int32_t ops[kMaxRank] = {-1, -1, -1, -1};
    int num_ops = 0;
    Value imm{}; // constants, param values; Var: the variable's index in imm.i
    int buffer = -1;
  };
  std::vector<Instr> code;
  std::vector<TensorView> buffers;

  Tape(const Expr& body, const Bindings& bindings) {
    const ModSignature sig = ModSignature::of({body});
    ResolvedArgs args = resolve(sig, bindings);
    buffers = std::move(args.buffers);
    std::unordered_map<const Node*, int32_t> index;
    for (const Expr& e : topo_order(body)) {
      Instr ins;
      ins.kind = e.kind();
      ins.type = e.type();
      ins.operand_type = e->operands.empty() ? e.type() : e->operands[0].type();
      ins.imm.i = 0;
      for (const Expr& op : e->operands)
        ins.ops[ins.num_ops++] = index.at(op.get());
      switch (e.kind()) {
      case NodeKind::IntConst:
      case NodeKind::Var:
        ins.imm.i = static_cast<int32_t>(e->ival);
        break;
      case NodeKind::FloatConst:
        ins.imm.f = e->fval;
        break;
      case NodeKind::BoolConst:
        ins.imm.b = e->ival != 0;
        break;
      case NodeKind::Param:
        if (e->param->type == Type::Int)
          ins.imm.i = args.int_params[sig.param_slot(*e->param)];
        else
          ins.imm.f = args.float_params[sig.param_slot(*e->param)];
        break;
      case NodeKind::Load:
        ins.buffer = sig.buffer_slot(*e->buffer);
        break;
      default:
        break;
      }
      index.emplace(e.get(), static_cast<int32_t>(code.size()));
      code.push_back(ins);
    }
  }

  // The root's value; `error(i)` in [-1, 1] places inexact instruction i in its band.
  Value run(Backend backend, const Point& p, const std::function<double(size_t)>& error) const {
    std::vector<Value> v(code.size());
    for (size_t i = 0; i < code.size(); ++i) {
      const Instr& ins = code[i];
      Value r{};
      r.i = 0;
      switch (ins.kind) {
      case NodeKind::IntConst:
      case NodeKind::FloatConst:
      case NodeKind::BoolConst:
      case NodeKind::Param:
        r = ins.imm;
        break;
      case NodeKind::Var: {
        const int32_t vars[] = {p.b, p.h, p.q, p.kv};
        if (ins.imm.i == static_cast<int32_t>(Var::Score))
          r.f = p.score;
        else
          r.i = vars[ins.imm.i];
        break;
      }
      case NodeKind::Load: {
        int32_t idx[kMaxRank] = {};
        for (int d = 0; d < ins.num_ops; ++d)
          idx[d] = v[static_cast<size_t>(ins.ops[d])].i;
        r = sem::load(buffers[static_cast<size_t>(ins.buffer)], idx);
        break;
      }
      default: {
        Value ops[3] = {};
        for (int k = 0; k < ins.num_ops; ++k)
          ops[k] = v[static_cast<size_t>(ins.ops[k])];
        r = sem::apply(ins.kind, ins.type, ins.operand_type, ops);
        if (is_inexact(backend, ins.kind))
          r.f = perturb(ins.kind, r.f, error(i));
      }
      }
      v[i] = r;
    }
    return v.back();
  }
};

} // namespace

bool is_inexact(Backend backend, NodeKind kind) {
  if (backend == Backend::HostJit)
    return false;
  switch (kind) {
  case NodeKind::Exp:
  case NodeKind::Exp2:
  case NodeKind::Log:
  case NodeKind::Log2:
  case NodeKind::Sin:
  case NodeKind::Cos:
  case NodeKind::Tanh:
  case NodeKind::TanhApprox:
    return true;
  default:
    return false;
  }
}

int64_t ulp_distance(float a, float b) {
  if (std::isnan(a) || std::isnan(b))
    return std::isnan(a) && std::isnan(b) ? 0 : std::numeric_limits<int64_t>::max();
  const int64_t d = ordered(a) - ordered(b);
  return d < 0 ? -d : d;
}

struct Agreement::Impl {
  Program oracle;
  Tape tape;
  Impl(const Expr& body, const Bindings& bindings)
      : oracle(body, bindings), tape(optimize(body), bindings) {}
};

Agreement::Agreement(const Expr& body, const Bindings& bindings)
    : impl_(std::make_unique<Impl>(body, bindings)) {}
Agreement::~Agreement() = default;
Agreement::Agreement(Agreement&&) noexcept = default;
Agreement& Agreement::operator=(Agreement&&) noexcept = default;

Type Agreement::type() const {
  return impl_->oracle.type();
}

Value Agreement::want(const Point& p) const {
  return impl_->oracle.eval(p);
}

Verdict Agreement::check(Backend backend, const Point& p, Value got) const {
  const Type type = impl_->oracle.type();
  const Value want = impl_->oracle.eval(p);
  Verdict verdict;
  if (same_value(type, got, want))
    return verdict;
  verdict.exact = false;
  verdict.detail = fmt::format("at {}: got {}, the interpreter {}", testing::describe(p),
                               describe(type, got), describe(type, want));
  const Tape& tape = impl_->tape;
  std::vector<size_t> inexact;
  for (size_t i = 0; i < tape.code.size(); ++i)
    if (is_inexact(backend, tape.code[i].kind))
      inexact.push_back(i);
  if (inexact.empty()) {
    verdict.ok = false;
    verdict.detail += " (only exact operations: bit-for-bit agreement required)";
    return verdict;
  }

  // Rule 4: the oracle's values over choices of the inexact results.
  std::vector<Value> seen;
  auto run = [&](const std::function<double(size_t)>& error) {
    seen.push_back(tape.run(backend, p, error));
  };
  run([](size_t) { return 0.0; });
  run([](size_t) { return -1.0; });
  run([](size_t) { return 1.0; });
  for (size_t k = 0; k < std::min<size_t>(inexact.size(), 16); ++k)
    for (double end : {-1.0, 1.0})
      run([&](size_t i) { return i == inexact[k] ? end : 0.0; });
  std::mt19937 rng(static_cast<uint32_t>(p.q * 31 + p.kv));
  for (int r = 0; r < 48; ++r) {
    std::vector<double> errors(tape.code.size());
    for (double& e : errors)
      e = r % 3 == 0 ? (rng() & 1 ? 1.0 : -1.0) : std::uniform_real_distribution<>(-1, 1)(rng);
    run([&](size_t i) { return errors[i]; });
  }

  for (const Value& v : seen)
    if (same_value(type, got, v))
      return verdict;
  if (type == Type::Int) {
    auto [lo, hi] =
        std::minmax_element(seen.begin(), seen.end(), [](Value a, Value b) { return a.i < b.i; });
    if (lo->i <= got.i && got.i <= hi->i)
      return verdict;
    verdict.detail +=
        fmt::format(" (outside [{}, {}] over the inexact results' bands)", lo->i, hi->i);
  } else if (type == Type::Float && !std::isnan(got.f)) {
    int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
    for (const Value& v : seen)
      if (!std::isnan(v.f)) {
        lo = std::min(lo, ordered(v.f));
        hi = std::max(hi, ordered(v.f));
      }
    if (lo <= ordered(got.f) && ordered(got.f) <= hi)
      return verdict;
    if (lo <= hi)
      verdict.detail += fmt::format(" (outside [{}, {}] over the inexact results' bands)",
                                    from_ordered(lo), from_ordered(hi));
  } else {
    verdict.detail += " (no choice of the inexact results within their bands gives it)";
  }
  verdict.ok = false;
  return verdict;
}

std::string describe(Type type, Value v) {
  switch (type) {
  case Type::Bool:
    return v.b ? "true" : "false";
  case Type::Int:
    return std::to_string(v.i);
  case Type::Float:
    return fmt::format("{} ({:#x})", v.f, std::bit_cast<uint32_t>(v.f));
  }
  return "?";
}

std::string describe(const Point& p) {
  return fmt::format("b={} h={} q={} kv={} score={} ({:#x})", p.b, p.h, p.q, p.kv, p.score,
                     std::bit_cast<uint32_t>(p.score));
}

} // namespace flexjit::testing
