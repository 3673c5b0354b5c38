// The CPU interpreter: the semantic oracle every other backend must match.
//
// Semantics (shared by the host JIT and the GPU lowering):
// - int is 32-bit two's complement; + - * neg abs wrap around.
// - floor_div rounds toward -inf, mod takes the divisor's sign (torch's // and %);
//   x // 0 == 0 and x % 0 == 0 at run time; INT_MIN // -1 == INT_MIN.
// - float is binary32; min/max propagate NaN and order -0 < +0 (llvm.minimum).
// - float -> int truncates toward zero, saturating, NaN -> 0; int -> float
//   rounds to nearest; x -> bool is x != 0; bool -> number is 0 or 1.
// - exp, exp2, log, log2, sqrt, tanh, sin, cos are the C library's binary32
//   functions; rsqrt(x) is 1/sqrt(x); tanh_approx is tanh here.
// - a load outside [0, size) in any dimension reads 0 (false), unless its index reads
//   buffer data (data_indexed_loads, compiler/Visitor.h: `offsets[doc[q_idx]]`'s outer
//   load): out of range, that is an error of the data -- the interpreter throws Error naming
//   the buffer, the index and the point; compiled code reads 0 and reports
//   FLEXJIT_DEVICE_ERROR_LOAD through FlexjitModArgs::device_error. Every operand of a node is
//   evaluated (where and && do not guard a load), so such an index must be in range wherever
//   the mod is evaluated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flexjit/compiler/Signature.h"
#include "flexjit/dsl/Expr.h"

namespace flexjit {

union Value {
  int32_t i;
  float f;
  bool b;
};

struct Point {
  int32_t b = 0, h = 0, q = 0, kv = 0;
  float score = 0.0f;
};

// What a data-indexed load outside its buffer does in Program: Throw, the library's
// semantics (the CPU block mask builder, the references); ReadZero reads 0 without a word,
// the value compiled code computes beside its report (the differential tests' value oracle).
enum class DataIndexCheck { Throw, ReadZero };

// An expression compiled to a linear tape over registers, with its bindings
// resolved. Buffers must be host memory (Error otherwise).
class Program {
public:
  Program(const Expr& root, const Bindings& bindings = {},
          DataIndexCheck check = DataIndexCheck::Throw);

  Value eval(const Point& p) const;
  // Whether a data-indexed load falls outside its buffer at p (where eval would throw);
  // false with DataIndexCheck::ReadZero.
  bool reads_outside(const Point& p) const;
  // out[i] = root at (b, h, q, kv0 + i), for i < n; root must be bool.
  void eval_bool_row(int32_t b, int32_t h, int32_t q, int32_t kv0, int32_t n, bool* out) const;
  Type type() const { return type_; }
  // Tape length (one instruction per distinct node).
  size_t size() const { return tape_.size(); }

private:
  struct Instr {
    NodeKind kind;
    Type type;
    Type operand_type;
    int32_t a = -1, b = -1, c = -1; // operand registers
    Value imm{};                    // constants, Var index, param value
    int32_t buffer = -1;            // Load: index into buffers_
    std::vector<int32_t> indices;   // Load: index registers
    bool checked = false;           // Load: its index reads buffer data (throws outside)
    // eval_bool_row: a varying instruction depends on kv and runs once per
    // lane in vector slot `slot`; the others run once per row.
    bool varying = false;
    int32_t slot = -1;
  };
  std::vector<Instr> tape_;
  std::vector<TensorView> buffers_;
  std::vector<std::string> buffer_names_;
  Type type_;
  // Uniform instructions read by varying ones: broadcast into their slot once per row.
  std::vector<int32_t> broadcasts_;
  int32_t num_slots_ = 0;
  friend struct ProgramRunner;
};

// One-shot convenience.
Value evaluate(const Expr& e, const Point& p, const Bindings& bindings = {});

} // namespace flexjit
