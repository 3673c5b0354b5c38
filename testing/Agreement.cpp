#include "flexjit/testing/Agreement.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <unordered_map>

#include <fmt/format.h>

#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Semantics.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/testing/RandomMods.h"

namespace flexjit::testing {

namespace {

// Rule 5's grid: positions in an imaged node's interval tried one node at a time.
constexpr int kImageGrid = 64;

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

// Rule 5: the interval a sin or cos node's result may take (inclusive).
struct Image {
  bool active = false;
  double lo = 0, hi = 0;
};

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

  // The root's value; `error(i)` in [-1, 1] places inexact instruction i in its band or,
  // where `images` has one for i (rule 5), in that interval instead. `trace`, when
  // given, receives every instruction's value.
  Value run(Backend backend, const Point& p, const std::function<double(size_t)>& error,
            const std::vector<Image>* images = nullptr, std::vector<Value>* trace = nullptr) const {
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
        const Image* image = images && (*images)[i].active ? &(*images)[i] : nullptr;
        if (image && !std::isnan(r.f))
          r.f = static_cast<float>(image->lo + (error(i) + 1) / 2 * (image->hi - image->lo));
        else if (is_inexact(backend, ins.kind))
          r.f = perturb(ins.kind, r.f, error(i));
      }
      }
      v[i] = r;
    }
    if (trace)
      *trace = v;
    return v.back();
  }
};

// Rule 5: the values sin or cos takes over the operand interval [a, b] (the whole
// range once b - a spans a period), widened by the function's band.
Image periodic_image(NodeKind kind, double a, double b) {
  constexpr double kPi = 3.14159265358979323846, kTwoPi = 2 * kPi;
  double lo = -1, hi = 1;
  if (b - a < kTwoPi) {
    // cos(x) = sin(x + pi/2); sin peaks at pi/2 + 2k pi and dips at -pi/2 + 2k pi.
    const double shift = kind == NodeKind::Cos ? kPi / 2 : 0.0;
    const double fa = std::sin(a + shift), fb = std::sin(b + shift);
    auto reaches = [&](double c) { // some c + 2k pi in [a + shift, b + shift]
      return c + kTwoPi * std::ceil((a + shift - c) / kTwoPi) <= b + shift;
    };
    lo = reaches(-kPi / 2) ? -1.0 : std::min(fa, fb);
    hi = reaches(kPi / 2) ? 1.0 : std::max(fa, fb);
  }
  Image image;
  image.active = true;
  image.lo = from_ordered(ordered(static_cast<float>(lo)) - kTranscendentalUlps - 1);
  image.hi = from_ordered(ordered(static_cast<float>(hi)) + kTranscendentalUlps + 1);
  return image;
}

// Rule 5's grid over an image, as positions in [-1, 1]: kImageGrid + 1 evenly spaced,
// and, when the image holds 0, the values 0 and +-2^-k (k = 1..24), where a later log,
// division or compare changes fastest.
std::vector<double> image_positions(const Image& image) {
  std::vector<double> positions;
  for (int g = 0; g <= kImageGrid; ++g)
    positions.push_back(-1.0 + 2.0 * g / kImageGrid);
  if (image.lo < 0 && image.hi > 0) {
    auto at = [&](double v) { return 2 * (v - image.lo) / (image.hi - image.lo) - 1; };
    positions.push_back(at(0));
    for (int k = 1; k <= 24; ++k)
      for (double v : {std::ldexp(1.0, -k), -std::ldexp(1.0, -k)})
        positions.push_back(at(v));
  }
  return positions;
}

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
  Program oracle;  // the body as written, reading 0 outside every buffer
  Program outside; // the optimized body (the backends' code): where it reports
  Tape tape;
  Impl(const Expr& body, const Expr& optimized, const Bindings& bindings)
      : oracle(body, bindings, DataIndexCheck::ReadZero), outside(optimized, bindings),
        tape(optimized, bindings) {}
};

Agreement::Agreement(const Expr& body, const Bindings& bindings)
    : impl_(std::make_unique<Impl>(body, optimize(body), bindings)) {}
Agreement::~Agreement() = default;
Agreement::Agreement(Agreement&&) noexcept = default;
Agreement& Agreement::operator=(Agreement&&) noexcept = default;

Type Agreement::type() const {
  return impl_->oracle.type();
}

Value Agreement::want(const Point& p) const {
  return impl_->oracle.eval(p);
}

bool Agreement::reads_outside(const Point& p) const {
  return impl_->outside.reads_outside(p);
}

Verdict Agreement::check(Backend backend, const Point& p, Value got,
                         std::optional<bool> reported) const {
  const Type type = impl_->oracle.type();
  const Value want = impl_->oracle.eval(p);
  Verdict verdict;
  if (reported && *reported != reads_outside(p)) {
    verdict.ok = verdict.exact = false;
    verdict.detail =
        fmt::format("at {}: the backend {} a data-indexed load outside its buffer, the "
                    "interpreter {}",
                    testing::describe(p), *reported ? "reported" : "did not report",
                    *reported ? "finds none" : "finds one");
    return verdict;
  }
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

  // Rule 4: the oracle's values over choices of the inexact results. Rule 5: the
  // operand interval of every sin and cos over those choices.
  std::vector<Value> seen;
  std::vector<double> operand_lo(tape.code.size(), INFINITY),
      operand_hi(tape.code.size(), -INFINITY);
  std::vector<Value> nominal;
  std::vector<Value> trace;
  auto run = [&](const std::function<double(size_t)>& error, const std::vector<Image>* images) {
    seen.push_back(tape.run(backend, p, error, images, &trace));
    if (nominal.empty())
      nominal = trace;
    for (size_t i : inexact) {
      const NodeKind kind = tape.code[i].kind;
      const float x = trace[static_cast<size_t>(tape.code[i].ops[0])].f;
      if ((kind == NodeKind::Sin || kind == NodeKind::Cos) && std::isfinite(x)) {
        operand_lo[i] = std::min(operand_lo[i], static_cast<double>(x));
        operand_hi[i] = std::max(operand_hi[i], static_cast<double>(x));
      }
    }
  };
  // One search: the nominal choice, all down, all up, each node at either end, random
  // choices; with rule-5 images, also each imaged node on a grid over its image.
  auto search = [&](const std::vector<Image>* images) {
    run([](size_t) { return 0.0; }, images);
    run([](size_t) { return -1.0; }, images);
    run([](size_t) { return 1.0; }, images);
    for (size_t k = 0; k < std::min<size_t>(inexact.size(), 16); ++k)
      for (double end : {-1.0, 1.0})
        run([&](size_t i) { return i == inexact[k] ? end : 0.0; }, images);
    if (images) {
      int imaged = 0;
      for (size_t k = 0; k < inexact.size() && imaged < 16; ++k) {
        if (!(*images)[inexact[k]].active)
          continue;
        ++imaged;
        for (double t : image_positions((*images)[inexact[k]]))
          run([&](size_t i) { return i == inexact[k] ? t : 0.0; }, images);
      }
    }
    std::mt19937 rng(static_cast<uint32_t>(p.q * 31 + p.kv));
    for (int r = 0; r < 48; ++r) {
      std::vector<double> errors(tape.code.size());
      for (double& e : errors)
        e = r % 3 == 0 ? (rng() & 1 ? 1.0 : -1.0) : std::uniform_real_distribution<>(-1, 1)(rng);
      run([&](size_t i) { return errors[i]; }, images);
    }
  };
  // Whether `got` is one of the values seen or lies between them; the reason if not.
  auto accepted = [&](std::string& why) {
    for (const Value& v : seen)
      if (same_value(type, got, v))
        return true;
    if (type == Type::Int) {
      auto [lo, hi] =
          std::minmax_element(seen.begin(), seen.end(), [](Value a, Value b) { return a.i < b.i; });
      if (lo->i <= got.i && got.i <= hi->i)
        return true;
      why = fmt::format(" (outside [{}, {}] over the inexact results' bands)", lo->i, hi->i);
    } else if (type == Type::Float && !std::isnan(got.f)) {
      int64_t lo = std::numeric_limits<int64_t>::max(), hi = std::numeric_limits<int64_t>::min();
      for (const Value& v : seen)
        if (!std::isnan(v.f)) {
          lo = std::min(lo, ordered(v.f));
          hi = std::max(hi, ordered(v.f));
        }
      if (lo <= ordered(got.f) && ordered(got.f) <= hi)
        return true;
      why = lo <= hi ? fmt::format(" (outside [{}, {}] over the inexact results' bands)",
                                   from_ordered(lo), from_ordered(hi))
                     : " (no choice of the inexact results within their bands gives it)";
    } else {
      why = " (no choice of the inexact results within their bands gives it)";
    }
    return false;
  };

  search(nullptr);
  std::string why;
  if (accepted(why))
    return verdict;
  // Rule 5: a sin or cos whose operand interval moves its result by more than its band
  // may take any value of the function over that interval. Nested ones widen in turn.
  std::vector<Image> images(tape.code.size());
  std::string imaged;
  for (int round = 0; round < 4; ++round) {
    bool widened = false;
    for (size_t i : inexact) {
      const NodeKind kind = tape.code[i].kind;
      if ((kind != NodeKind::Sin && kind != NodeKind::Cos) || !(operand_lo[i] < operand_hi[i]))
        continue;
      const float y = nominal[i].f;
      const double band = std::fabs(static_cast<double>(perturb(kind, y, 1.0)) - y);
      // |sin'| and |cos'| are at most 1: the operand interval moves the result by at
      // most its width, which must exceed the band's (2 * band) to matter.
      if (std::isnan(y) || operand_hi[i] - operand_lo[i] <= 2 * band)
        continue;
      const Image image = periodic_image(kind, operand_lo[i], operand_hi[i]);
      if (images[i].active && image.lo >= images[i].lo && image.hi <= images[i].hi)
        continue;
      images[i] = image;
      widened = true;
      imaged += fmt::format("; rule 5: {} of an operand in [{}, {}] is any value in [{}, {}]",
                            to_string(kind), operand_lo[i], operand_hi[i], image.lo, image.hi);
    }
    if (!widened)
      break;
    search(&images);
    if (accepted(why))
      return verdict;
  }
  verdict.detail += why + imaged;
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
