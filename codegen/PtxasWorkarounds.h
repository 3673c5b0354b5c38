// Internal to codegen: rewrites of the optimized LLVM IR, run just before PTX is
// emitted, that keep a known miscompile of NVIDIA's PTX -> SASS compiler (ptxas, and
// the same compiler inside the driver) from being triggered. Each rewrite is as
// narrow as the evidence for its bug, and documented with it.
#pragma once

#include <llvm/IR/Module.h>

namespace flexjit {

// ptxas (CUDA 13.0, and the driver 580.159.04 of CUDA 13) at -O1 and above, for
// sm_90a: in `min(min(-p, a), b)` (or max/max), with `p` a kernel parameter (a
// constant-bank operand) and the mins signed 32-bit, it folds the negation into the
// uniform-register operand of a three-input VIMNMX3 and drops it: the kernel computes
// min(min(p, a), b); its code is byte-identical to the code of the PTX without the
// neg.s32. Reproducer, SASS and analysis: docs/ptxas_vimnmx3_neg/README.md; found as
// tests/fuzz_corpus/gpu_int_mask_pair586.fz.
//
// The rewrite: a 32-bit negation `sub 0, x` of a kernel parameter `x` (a scalar
// argument of a kernel, or a load from a kernel's by-value struct argument) that is
// an operand of a signed min or max (llvm.smin, llvm.smax) reaches that min or max as
// `~x + 1` instead (not.b32 and add.s32 in inline PTX, which LLVM cannot fold back
// into a neg.s32); ptxas turns it into a correct VIADDMNMX. Its other uses keep the
// plain negation. Returns the number of operands rewritten.
int work_around_ptxas_min_of_negated_param(llvm::Module& m);

} // namespace flexjit
