// LLVM's default module pipeline, shared by the PTX compiler and the host JIT.
#pragma once

#include <llvm/IR/Module.h>
#include <llvm/Passes/OptimizationLevel.h>
#include <llvm/Target/TargetMachine.h>

namespace flexjit {

// Runs the per-module default pipeline at `level`. With a target machine its
// callbacks are registered too (for NVPTX: NVVMReflect at the pipeline start).
void run_default_pipeline(llvm::Module& m, llvm::TargetMachine* tm, llvm::OptimizationLevel level);

} // namespace flexjit
