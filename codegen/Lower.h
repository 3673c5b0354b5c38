// Internal to codegen: lowering a mod's expression DAG to an LLVM IR function
// with the hook ABI of templates/flexjit_abi.h. Includes LLVM headers, so it is
// never included by a public header.
#pragma once

#include <llvm/IR/Function.h>
#include <llvm/IR/Module.h>

#include "flexjit/compiler/Signature.h"
#include "flexjit/dsl/Expr.h"

namespace flexjit {

// Where the lowered code runs, which decides how math is spelled: the C
// library's binary32 functions (`expf`, `tanhf`, as nobuiltin calls) on the
// host, libdevice (`__nv_*`) and PTX on the GPU.
enum class MathTarget { Host, NVPTX };

enum class HookKind { Mask, Score };
inline constexpr const char* kMaskHookName = "flexjit_mask_mod";
inline constexpr const char* kScoreHookName = "flexjit_score_mod";
inline constexpr const char* kScoreGradHookName = "flexjit_score_grad"; // a HookKind::Score

// The hooks' LLVM types, matching what clang emits for their C declarations:
//   zeroext i1 (i32, i32, i32, i32, ptr) and float (float, i32, i32, i32, i32, ptr).
llvm::FunctionType* hook_type(llvm::LLVMContext& ctx, HookKind kind);

// Defines the hook `name` in `module` (filling its declaration if the module
// already declares it) from `body`, which must already be optimized: a bool
// expression for HookKind::Mask, a float one for HookKind::Score. Buffer and
// param slots come from `sig`. Every DAG node is lowered once.
llvm::Function* lower_hook(llvm::Module& module, HookKind kind, llvm::StringRef name,
                           const Expr& body, const ModSignature& sig, MathTarget target);

} // namespace flexjit
