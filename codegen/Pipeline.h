// LLVM pass pipelines, shared by the PTX compiler and the host JIT.
#pragma once

#include <string_view>

#include <llvm/IR/Module.h>
#include <llvm/Passes/OptimizationLevel.h>
#include <llvm/Target/TargetMachine.h>

namespace flexjit {

// Runs the per-module default pipeline at `level`. With a target machine its
// callbacks are registered too (for NVPTX: NVVMReflect at the pipeline start).
void run_default_pipeline(llvm::Module& m, llvm::TargetMachine* tm, llvm::OptimizationLevel level);

// Runs a pipeline given in opt's -passes syntax; the target machine's passes
// (e.g. nvvm-reflect) may be named in it. An invalid text is an internal error.
void run_pipeline(llvm::Module& m, llvm::TargetMachine* tm, std::string_view text);

} // namespace flexjit
