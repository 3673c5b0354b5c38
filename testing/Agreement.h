// The agreement rule of the differential tests: what it means for a backend's
// value of a mod at a point to agree with the interpreter's (the semantic
// oracle, compiler/Interpreter.h). Every differential comparison -- the host
// JIT in test_codegen_lowering.cpp, the GPU in test_codegen_gpu_fuzz.cpp, the fuzz corpus --
// goes through agree(); the rule lives here and nowhere else.
//
// 0. A data-indexed load outside its buffer reads 0 (the value compared) and reports
//    (compared where the backend can say per point: the host JIT); where is decided on the
//    optimized body, the code the backends run (the optimizer drops loads the result cannot
//    depend on). On the GPU, whose report is part of a read-only asm (codegen/Lower.cpp),
//    LLVM may also drop a load it proves dead, and its report with it: there a launch's report
//    must only never appear without a load outside (test_codegen_gpu_fuzz.cpp).
// 1. Exact operations agree bit for bit: ints and bools identical, floats
//    identical bits or both NaN (any payload or sign). Exact is every node kind
//    but the eight below: int arithmetic, float + - * / (div.rn), sqrt
//    (sqrt.rn), rsqrt (1 / sqrt, both correctly rounded), min/max, compares,
//    logic, casts, loads, select. No FMA contraction: the lowered IR carries no
//    fast-math flags, so no backend may fuse a multiply and an add.
// 2. exp, exp2, log, log2, sin, cos, tanh call the C library on the host, as
//    the interpreter does (Backend::HostJit: bit for bit); on the GPU they are
//    libdevice's, which may differ from the host's by up to
//    kTranscendentalUlps units in the last place (CUDA documents at most 2 ulps
//    for expf, exp2f, sinf, cosf, tanhf and 1 for logf, log2f; glibc's binary32
//    functions are within 2 ulps (tanhf) or 1 (the others); 4 covers the sum).
//    Ulps are counted on the ordered integer line of binary32, so -0 and +0 are
//    0 apart, FLT_MAX and inf 1 apart, and subnormals count like normals.
// 3. tanh_approx is tanhf on the host (bit for bit) and PTX tanh.approx.f32 on
//    the GPU, which may differ from tanh by a relative kTanhApproxRelative
//    (the PTX ISA's bound, 2^-10.987, rounded up to 2^-10); results below
//    FLT_MIN may also be off by FLT_MIN (flushed or not).
// 4. A value computed from inexact results (2, 3) agrees when some choice of
//    those results, each within its bound, makes the oracle compute it. agree()
//    searches that set: the oracle is re-evaluated with every inexact node's
//    result moved to each end of its band (all down, all up, one node at a
//    time) and to random points inside it; the backend's value agrees when it
//    equals one of those values or, for ints and floats, lies between the
//    smallest and the largest of them. Bit-exact agreement with the oracle is
//    always accepted, so the search runs only for a value that differs.
// 5. An ill-conditioned sin or cos: when its operand carries the error of earlier
//    inexact results -- over rule 4's choices the operand takes values in [a, b] --
//    and that error moves the result by more than the result's own band can
//    express (|sin'|, |cos'| <= 1, so: when b - a exceeds the band's width,
//    2 * kTranscendentalUlps ulps of the result), the node's result may be any value
//    of the function over [a, b]: its image, [-1, 1] once [a, b] holds a peak and a
//    dip, widened by the band. Example (tests/fuzz_corpus/gpu_sin_of_exp_pair739.fz):
//    exp(18.68) = 1.3e8 has ulps of 8, so exp's band holds 9 floats across 10
//    periods of sin, and sin(exp(18.68)) on the GPU may be anything in [-1, 1]; the
//    interval then flows through the later operations like any other choice. When
//    rule 4 does not accept a value, the search is re-run with each such node's
//    result on a grid over its image (65 evenly spaced values, and 0 and +-2^-k
//    when the image holds 0, where a later log or division changes fastest), up to
//    4 rounds as nested nodes widen in turn. Only sin and cos: the other inexact
//    functions are monotone, so the ends of an operand interval give the ends of
//    their image, which rule 4's end runs reach already; steep ones (exp of a large
//    operand) need nothing more. Rule 5 only ever widens where the operand is
//    uncertain: a sin of an exact operand keeps its 4-ulp band at any argument, a
//    sin whose operand error is small keeps a band of a few ulps more, and a value
//    outside what the image can produce still fails (tests/test_testing_agreement.cpp).
//    Rules 4 and 5 search; they prove nothing: a non-monotone exact operation after
//    an inexact one (abs, x * x, %, a compare) is covered only as far as the
//    search's samples reach.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "flexjit/compiler/Interpreter.h"
#include "flexjit/compiler/Signature.h"
#include "flexjit/dsl/Expr.h"

namespace flexjit::testing {

enum class Backend { HostJit, Gpu };

inline constexpr int kTranscendentalUlps = 4;
inline constexpr double kTanhApproxRelative = 1.0 / 1024; // 2^-10

// Whether `kind` may differ from the interpreter on `backend` (rules 2 and 3; rule 5
// widens sin and cos).
bool is_inexact(Backend backend, NodeKind kind);

// Distance between two floats in units in the last place (rule 2's ordering);
// 0 when both are NaN, a huge value when only one is.
int64_t ulp_distance(float a, float b);

struct Verdict {
  bool ok = true;
  bool exact = true;  // the value equals the oracle's bit for bit
  std::string detail; // why not, for the test's report
};

// Checks backend values of one mod body against the oracle. The interpreter
// runs `body` as written; rule 4's search runs the optimized body, the code the
// backends compile.
class Agreement {
public:
  Agreement(const Expr& body, const Bindings& bindings);
  ~Agreement();
  Agreement(Agreement&&) noexcept;
  Agreement& operator=(Agreement&&) noexcept;

  // The oracle's value at `p` (reading 0 outside every buffer, as compiled code does).
  Value want(const Point& p) const;
  // Whether the optimized body (the code backends run) reads a data-indexed load outside its
  // buffer at `p` (compiler/Interpreter.h): where compiled code reports
  // FLEXJIT_DEVICE_ERROR_LOAD.
  bool reads_outside(const Point& p) const;
  // Whether `got`, computed by `backend` at `p`, agrees with the oracle; with `reported`
  // (the backend's report at p), also whether it reported exactly where reads_outside is true.
  Verdict check(Backend backend, const Point& p, Value got,
                std::optional<bool> reported = std::nullopt) const;
  Type type() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A value as text: "true", "-7", "1.5 (0x3fc00000)".
std::string describe(Type type, Value v);
std::string describe(const Point& p);

} // namespace flexjit::testing
