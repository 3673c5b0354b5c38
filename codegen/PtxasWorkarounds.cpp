#include "flexjit/codegen/PtxasWorkarounds.h"

#include <vector>

#include <llvm/ADT/SmallPtrSet.h>
#include <llvm/Analysis/ValueTracking.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/IntrinsicInst.h>
#include <llvm/IR/Metadata.h>
#include <llvm/IR/PatternMatch.h>

namespace flexjit {

namespace {

using llvm::Value;

// The module's kernels: the functions !nvvm.annotations marks "kernel" (what clang
// emits for __global__), or of the PTX kernel calling convention.
llvm::SmallPtrSet<const llvm::Function*, 4> kernels(const llvm::Module& m) {
  llvm::SmallPtrSet<const llvm::Function*, 4> out;
  for (const llvm::Function& f : m)
    if (f.getCallingConv() == llvm::CallingConv::PTX_Kernel)
      out.insert(&f);
  if (const llvm::NamedMDNode* annotations = m.getNamedMetadata("nvvm.annotations"))
    for (const llvm::MDNode* node : annotations->operands()) {
      if (node->getNumOperands() < 3)
        continue;
      auto* fn = llvm::mdconst::dyn_extract_or_null<llvm::Function>(node->getOperand(0));
      auto* name = llvm::dyn_cast_or_null<llvm::MDString>(node->getOperand(1));
      auto* value = llvm::mdconst::dyn_extract_or_null<llvm::ConstantInt>(node->getOperand(2));
      if (fn && name && name->getString() == "kernel" && value && value->isOne())
        out.insert(fn);
    }
  return out;
}

// Whether `v` is a kernel parameter, which ptxas reads from the constant bank: a
// scalar argument of a kernel, or a load from a kernel's by-value (struct) argument
// -- the mods' int params, read from FlexjitModArgs.
bool is_kernel_param(const Value* v, const llvm::SmallPtrSet<const llvm::Function*, 4>& kernels) {
  if (const auto* arg = llvm::dyn_cast<llvm::Argument>(v))
    return kernels.contains(arg->getParent()) && !arg->getType()->isPointerTy();
  if (const auto* load = llvm::dyn_cast<llvm::LoadInst>(v)) {
    const Value* base = llvm::getUnderlyingObject(load->getPointerOperand(), /*MaxLookup=*/0);
    if (const auto* arg = llvm::dyn_cast<llvm::Argument>(base))
      return kernels.contains(arg->getParent()) && arg->hasByValAttr();
  }
  return false;
}

bool is_signed_min_max(const llvm::User* user) {
  const auto* call = llvm::dyn_cast<llvm::IntrinsicInst>(user);
  return call && (call->getIntrinsicID() == llvm::Intrinsic::smin ||
                  call->getIntrinsicID() == llvm::Intrinsic::smax);
}

} // namespace

int work_around_ptxas_min_of_negated_param(llvm::Module& m) {
  using namespace llvm::PatternMatch;
  const auto kernel_set = kernels(m);
  if (kernel_set.empty())
    return 0;
  llvm::Type* i32 = llvm::Type::getInt32Ty(m.getContext());
  auto* type = llvm::FunctionType::get(i32, {i32}, false);
  // Two's complement negation spelled so that neither LLVM nor ptxas sees a neg.s32.
  auto* negate = llvm::InlineAsm::get(type, "not.b32 $0, $1;\n\tadd.s32 $0, $0, 1;", "=r,r",
                                      /*hasSideEffects=*/false);
  int rewritten = 0;
  for (llvm::Function& f : m) {
    if (!kernel_set.contains(&f))
      continue;
    std::vector<llvm::Instruction*> negations;
    for (llvm::BasicBlock& block : f)
      for (llvm::Instruction& inst : block) {
        Value* x = nullptr;
        if (inst.getType() == i32 && match(&inst, m_Sub(m_ZeroInt(), m_Value(x))) &&
            is_kernel_param(x, kernel_set))
          negations.push_back(&inst);
      }
    for (llvm::Instruction* neg : negations) {
      llvm::CallInst* safe = nullptr;
      for (llvm::Use& use : llvm::make_early_inc_range(neg->uses())) {
        if (!is_signed_min_max(use.getUser()))
          continue;
        if (!safe) {
          safe = llvm::CallInst::Create(type, negate, {neg->getOperand(1)}, "neg.ptxas");
          safe->insertAfter(neg);
          safe->setDoesNotAccessMemory();
          safe->setDoesNotThrow();
        }
        use.set(safe);
        ++rewritten;
      }
      if (neg->use_empty())
        neg->eraseFromParent();
    }
  }
  return rewritten;
}

} // namespace flexjit
