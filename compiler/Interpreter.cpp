#include "flexjit/compiler/Interpreter.h"

#include <algorithm>
#include <unordered_map>

#include "flexjit/compiler/Semantics.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

// Lanes per vector pass: large enough to amortize the per-instruction
// dispatch, small enough that the live slots stay in L1.
constexpr int kChunk = 128;

// Vector slots hold every type as 32 bits: ints and floats by bit pattern,
// bools as 0 or 1, so one Select or broadcast serves all types.
template <class T> T from_bits(uint32_t u) {
  if constexpr (std::is_same_v<T, float>)
    return std::bit_cast<float>(u);
  else if constexpr (std::is_same_v<T, bool>)
    return u != 0;
  else
    return static_cast<int32_t>(u);
}
template <class T> uint32_t to_bits(T v) {
  if constexpr (std::is_same_v<T, float>)
    return std::bit_cast<uint32_t>(v);
  else if constexpr (std::is_same_v<T, bool>)
    return v ? 1u : 0u;
  else
    return static_cast<uint32_t>(v);
}
uint32_t value_bits(Type type, Value v) {
  return type == Type::Bool ? (v.b ? 1u : 0u) : static_cast<uint32_t>(v.i);
}
Value bits_value(Type type, uint32_t u) {
  Value v{};
  v.i = static_cast<int32_t>(u);
  if (type == Type::Bool)
    v.b = u != 0;
  return v;
}

template <class A, class F>
void map1(uint32_t* __restrict d, const uint32_t* __restrict a, int m, F f) {
  for (int i = 0; i < m; ++i)
    d[i] = to_bits(f(from_bits<A>(a[i])));
}
template <class A, class F>
void map2(uint32_t* __restrict d, const uint32_t* a, const uint32_t* b, int m, F f) {
  for (int i = 0; i < m; ++i)
    d[i] = to_bits(f(from_bits<A>(a[i]), from_bits<A>(b[i])));
}

} // namespace

// The evaluation loops; a friend of Program so the tape stays private.
struct ProgramRunner {
  using Instr = Program::Instr;

  static Value leaf(const Instr& ins, const Point& p) {
    if (ins.kind != NodeKind::Var)
      return ins.imm;
    Value v{};
    switch (static_cast<Var>(ins.imm.i)) {
    case Var::B:
      v.i = p.b;
      return v;
    case Var::H:
      v.i = p.h;
      return v;
    case Var::Q:
      v.i = p.q;
      return v;
    case Var::KV:
      v.i = p.kv;
      return v;
    case Var::Score:
      v.f = p.score;
      return v;
    }
    return v;
  }

  // A data-indexed load's index (Instr::checked) must be inside its buffer: else Error, or
  // *outside = true when the caller asks (Program::reads_outside).
  static void check_index(const Program& prog, const Instr& ins, const int32_t* idx, const Point& p,
                          bool* outside) {
    const TensorView& view = prog.buffers_[ins.buffer];
    const int d = sem::outside_dim(view, idx);
    if (d < 0)
      return;
    if (outside) {
      *outside = true;
      return;
    }
    fail("buffer '{}' is read at index {} in dimension {}, outside its {} elements there, at "
         "(b {}, h {}, q_idx {}, kv_idx {}): an index read from buffer data must lie inside the "
         "buffer",
         prog.buffer_names_[ins.buffer], idx[d], d, view.sizes[d], p.b, p.h, p.q, p.kv);
  }

  // Evaluates the instructions in order into regs; only the uniform ones if
  // `uniform_only` (their values do not depend on p.kv).
  static void scalar(const Program& prog, const Point& p, Value* regs, bool uniform_only,
                     bool* outside = nullptr) {
    for (size_t r = 0; r < prog.tape_.size(); ++r) {
      const Instr& ins = prog.tape_[r];
      if (uniform_only && ins.varying)
        continue;
      if (ins.kind == NodeKind::Load) {
        int32_t idx[kMaxRank];
        for (size_t d = 0; d < ins.indices.size(); ++d)
          idx[d] = regs[ins.indices[d]].i;
        if (ins.checked)
          check_index(prog, ins, idx, p, outside);
        regs[r] = sem::load(prog.buffers_[ins.buffer], idx);
      } else if (ins.a < 0) { // constants, params, vars
        regs[r] = leaf(ins, p);
      } else {
        Value ops[3];
        ops[0] = regs[ins.a];
        ops[1] = ins.b >= 0 ? regs[ins.b] : Value{};
        ops[2] = ins.c >= 0 ? regs[ins.c] : Value{};
        regs[r] = sem::apply(ins.kind, ins.type, ins.operand_type, ops);
      }
    }
  }

  // One varying instruction over m lanes starting at kv.
  // `valid`: the lanes that are points of the row (the others only pad the chunk).
  static void vector(const Program& prog, const Instr& ins, uint32_t* slots, const Point& row,
                     int32_t valid) {
    const int32_t kv = row.kv;
    constexpr int m = kChunk;
    auto slot = [&](int32_t reg) { return slots + prog.tape_[reg].slot * kChunk; };
    uint32_t* d = slots + ins.slot * kChunk;
    const uint32_t* a = ins.a >= 0 ? slot(ins.a) : nullptr;
    const uint32_t* b = ins.b >= 0 ? slot(ins.b) : nullptr;
    const bool is_int = ins.operand_type == Type::Int;
    using K = NodeKind;
    switch (ins.kind) {
    case K::Var: // the only varying leaf is kv_idx
      for (int i = 0; i < m; ++i)
        d[i] = static_cast<uint32_t>(sem::add(kv, i));
      return;
    case K::Add:
      return is_int ? map2<int32_t>(d, a, b, m, sem::add)
                    : map2<float>(d, a, b, m, [](float x, float y) { return x + y; });
    case K::Sub:
      return is_int ? map2<int32_t>(d, a, b, m, sem::sub)
                    : map2<float>(d, a, b, m, [](float x, float y) { return x - y; });
    case K::Mul:
      return is_int ? map2<int32_t>(d, a, b, m, sem::mul)
                    : map2<float>(d, a, b, m, [](float x, float y) { return x * y; });
    case K::FloorDiv:
      return map2<int32_t>(d, a, b, m, sem::floor_div);
    case K::Mod:
      return map2<int32_t>(d, a, b, m, sem::mod);
    case K::Min:
      return is_int ? map2<int32_t>(d, a, b, m, [](int32_t x, int32_t y) { return sem::min(x, y); })
                    : map2<float>(d, a, b, m, sem::fmin);
    case K::Max:
      return is_int ? map2<int32_t>(d, a, b, m, [](int32_t x, int32_t y) { return sem::max(x, y); })
                    : map2<float>(d, a, b, m, sem::fmax);
    case K::Lt:
      return is_int ? map2<int32_t>(d, a, b, m, [](int32_t x, int32_t y) { return x < y; })
                    : map2<float>(d, a, b, m, [](float x, float y) { return x < y; });
    case K::Le:
      return is_int ? map2<int32_t>(d, a, b, m, [](int32_t x, int32_t y) { return x <= y; })
                    : map2<float>(d, a, b, m, [](float x, float y) { return x <= y; });
    case K::Eq:
      // Bools are 0/1 in a slot, so they compare like ints.
      return ins.operand_type != Type::Float
                 ? map2<int32_t>(d, a, b, m, [](int32_t x, int32_t y) { return x == y; })
                 : map2<float>(d, a, b, m, [](float x, float y) { return x == y; });
    case K::Ne:
      return ins.operand_type != Type::Float
                 ? map2<int32_t>(d, a, b, m, [](int32_t x, int32_t y) { return x != y; })
                 : map2<float>(d, a, b, m, [](float x, float y) { return x != y; });
    case K::And:
    case K::BitAnd:
      return map2<int32_t>(d, a, b, m, [](int32_t x, int32_t y) { return x & y; });
    case K::Or:
    case K::BitOr:
      return map2<int32_t>(d, a, b, m, [](int32_t x, int32_t y) { return x | y; });
    case K::Not:
      return map1<int32_t>(d, a, m, [](int32_t x) { return x ^ 1; });
    case K::Neg:
      return is_int ? map1<int32_t>(d, a, m, sem::neg) : map1<float>(d, a, m, sem::fneg);
    case K::Abs:
      return is_int ? map1<int32_t>(d, a, m, [](int32_t x) { return sem::abs(x); })
                    : map1<float>(d, a, m, sem::fabs);
    case K::Select: {
      const uint32_t* c = slot(ins.c);
      for (int i = 0; i < m; ++i)
        d[i] = a[i] ? b[i] : c[i];
      return;
    }
    case K::Load: {
      const TensorView& view = prog.buffers_[ins.buffer];
      const uint32_t* idx[kMaxRank];
      for (size_t k = 0; k < ins.indices.size(); ++k)
        idx[k] = slot(ins.indices[k]);
      int32_t lane_idx[kMaxRank];
      for (int i = 0; i < m; ++i) {
        for (size_t k = 0; k < ins.indices.size(); ++k)
          lane_idx[k] = static_cast<int32_t>(idx[k][i]);
        if (ins.checked && i < valid)
          check_index(prog, ins, lane_idx, Point{row.b, row.h, row.q, sem::add(kv, i), 0.0f},
                      nullptr);
        d[i] = value_bits(ins.type, sem::load(view, lane_idx));
      }
      return;
    }
    case K::IntConst:
    case K::FloatConst:
    case K::BoolConst:
    case K::Param:
    case K::Div:
    case K::Exp:
    case K::Exp2:
    case K::Log:
    case K::Log2:
    case K::Sqrt:
    case K::Rsqrt:
    case K::Tanh:
    case K::TanhApprox:
    case K::Sin:
    case K::Cos:
    case K::Cast:
      break;
    }
    // Rare in masks: one lane at a time through the shared scalar semantics.
    for (int i = 0; i < m; ++i) {
      Value ops[3];
      ops[0] = a ? bits_value(ins.operand_type, a[i]) : Value{};
      ops[1] = b ? bits_value(ins.operand_type, b[i]) : Value{};
      d[i] = value_bits(ins.type, sem::apply(ins.kind, ins.type, ins.operand_type, ops));
    }
  }
};

Program::Program(const Expr& root, const Bindings& bindings, DataIndexCheck check) {
  FLEXJIT_ASSERT(root, "Program needs a non-null expression");
  ModSignature sig = ModSignature::of({root});
  ResolvedArgs args = resolve(sig, bindings);
  for (size_t i = 0; i < sig.buffers.size(); ++i)
    if (args.buffers[i].device != Device::Host)
      fail("buffer '{}' is bound to CUDA device memory; the CPU interpreter needs host data "
           "(bind a host copy for CPU evaluation)",
           sig.buffers[i]->name);
  buffers_ = std::move(args.buffers);
  for (const auto& decl : sig.buffers)
    buffer_names_.push_back(decl->name);
  type_ = root.type();
  const auto checked =
      check == DataIndexCheck::Throw ? data_indexed_loads(root) : std::unordered_set<const Node*>{};

  std::vector<Expr> order = topo_order(root);
  std::unordered_map<const Node*, int32_t> reg;
  tape_.reserve(order.size());
  for (const Expr& e : order) {
    Instr ins;
    ins.kind = e.kind();
    ins.type = e.type();
    ins.operand_type = e->operands.empty() ? e.type() : e->operands[0].type();
    ins.imm.i = 0;
    if (e.kind() == NodeKind::IntConst) {
      ins.imm.i = static_cast<int32_t>(e->ival);
    } else if (e.kind() == NodeKind::FloatConst) {
      ins.imm.f = e->fval;
    } else if (e.kind() == NodeKind::BoolConst) {
      ins.imm.b = e->ival != 0;
    } else if (e.kind() == NodeKind::Var) {
      ins.imm.i = static_cast<int32_t>(e->ival);
      ins.varying = e->ival == static_cast<int>(Var::KV);
    } else if (e.kind() == NodeKind::Param) {
      if (e->param->type == Type::Int)
        ins.imm.i = args.int_params[sig.param_slot(*e->param)];
      else
        ins.imm.f = args.float_params[sig.param_slot(*e->param)];
    } else if (e.kind() == NodeKind::Load) {
      ins.buffer = sig.buffer_slot(*e->buffer);
      ins.checked = checked.count(e.get()) != 0;
      for (const Expr& op : e->operands)
        ins.indices.push_back(reg.at(op.get()));
    } else {
      FLEXJIT_ASSERT(!e->operands.empty() && e->operands.size() <= 3, "{} has {} operands",
                     to_string(e.kind()), e->operands.size());
      int32_t* regs[3] = {&ins.a, &ins.b, &ins.c};
      for (size_t i = 0; i < e->operands.size(); ++i)
        *regs[i] = reg.at(e->operands[i].get());
    }
    for (const Expr& op : e->operands)
      ins.varying = ins.varying || tape_[reg.at(op.get())].varying;
    reg.emplace(e.get(), static_cast<int32_t>(tape_.size()));
    tape_.push_back(std::move(ins));
  }

  // Vector slots for eval_bool_row: one per broadcast uniform operand, and
  // varying results share slots once their last reader has run. A result gets
  // its slot before its operands' slots are freed, so loops never alias.
  auto operands_of = [](const Instr& ins) {
    std::vector<int32_t> ops = ins.indices;
    for (int32_t r : {ins.a, ins.b, ins.c})
      if (r >= 0)
        ops.push_back(r);
    return ops;
  };
  std::vector<int32_t> last_use(tape_.size(), -1);
  for (size_t r = 0; r < tape_.size(); ++r) {
    if (!tape_[r].varying)
      continue;
    for (int32_t op : operands_of(tape_[r])) {
      last_use[op] = static_cast<int32_t>(r);
      if (!tape_[op].varying && tape_[op].slot < 0) {
        tape_[op].slot = num_slots_++;
        broadcasts_.push_back(op);
      }
    }
  }
  std::vector<int32_t> free_slots;
  for (size_t r = 0; r < tape_.size(); ++r) {
    Instr& ins = tape_[r];
    if (!ins.varying)
      continue;
    if (free_slots.empty()) {
      ins.slot = num_slots_++;
    } else {
      ins.slot = free_slots.back();
      free_slots.pop_back();
    }
    std::vector<int32_t> ops = operands_of(ins);
    std::sort(ops.begin(), ops.end());
    ops.erase(std::unique(ops.begin(), ops.end()), ops.end());
    for (int32_t op : ops)
      if (tape_[op].varying && last_use[op] == static_cast<int32_t>(r))
        free_slots.push_back(tape_[op].slot);
  }
}

Value Program::eval(const Point& p) const {
  thread_local std::vector<Value> regs;
  regs.resize(tape_.size());
  ProgramRunner::scalar(*this, p, regs.data(), false);
  return regs.back();
}

bool Program::reads_outside(const Point& p) const {
  thread_local std::vector<Value> regs;
  regs.resize(tape_.size());
  bool outside = false;
  ProgramRunner::scalar(*this, p, regs.data(), false, &outside);
  return outside;
}

void Program::eval_bool_row(int32_t b, int32_t h, int32_t q, int32_t kv0, int32_t n,
                            bool* out) const {
  FLEXJIT_ASSERT(type_ == Type::Bool, "eval_bool_row needs a bool expression, not {}",
                 to_string(type_));
  if (n <= 0)
    return;
  thread_local std::vector<Value> regs;
  thread_local std::vector<uint32_t> slots;
  regs.resize(tape_.size());
  Point p{b, h, q, kv0, 0.0f};
  ProgramRunner::scalar(*this, p, regs.data(), true);
  const Instr& root = tape_.back();
  if (!root.varying) {
    std::fill(out, out + n, regs.back().b);
    return;
  }
  slots.resize(static_cast<size_t>(num_slots_) * kChunk);
  for (int32_t r : broadcasts_)
    std::fill_n(slots.data() + tape_[r].slot * kChunk, kChunk, value_bits(tape_[r].type, regs[r]));
  const uint32_t* result = slots.data() + root.slot * kChunk;
  for (int32_t start = 0; start < n; start += kChunk) {
    int m = std::min(kChunk, n - start);
    const Point at{b, h, q, sem::add(kv0, start), 0.0f};
    // Whole chunks even for a short tail: a constant trip count lets the
    // compiler vectorize the loops, and the extra lanes are harmless (every
    // operation is total, loads are bounds-checked, and only the first m lanes check
    // data-indexed loads).
    for (const Instr& ins : tape_)
      if (ins.varying)
        ProgramRunner::vector(*this, ins, slots.data(), at, m);
    for (int i = 0; i < m; ++i)
      out[start + i] = result[i] != 0;
  }
}

Value evaluate(const Expr& e, const Point& p, const Bindings& bindings) {
  return Program(e, bindings).eval(p);
}

} // namespace flexjit
