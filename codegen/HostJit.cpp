// The lowering run on the host: the same IR as on the GPU except for math
// (the C library's binary32 functions, called as nobuiltin so that LLVM never
// folds them, instead of libdevice), optimized at O2 so that any
// undefined behaviour the lowering let in would show up as a miscompile, and
// JIT-compiled by ORC's LLJIT with the process's libm resolving the calls.
// One LLJIT serves the process (creating one costs more than compiling a mod);
// each HostJitMod owns its code through a ResourceTracker and shares the LLJIT.
#include <atomic>
#include <mutex>

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>

#include "flexjit/codegen/HostJit.h"
#include "flexjit/codegen/Lower.h"
#include "flexjit/codegen/Pipeline.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

using MaskFnPtr = bool (*)(int, int, int, int, const FlexjitModArgs*);
using ScoreFnPtr = float (*)(float, int, int, int, int, const FlexjitModArgs*);

template <class T> T check(llvm::Expected<T> value, const char* what) {
  if (!value)
    FLEXJIT_ASSERT(false, "host JIT: {} failed: {}", what, llvm::toString(value.takeError()));
  return std::move(*value);
}

void check(llvm::Error error, const char* what) {
  if (error)
    FLEXJIT_ASSERT(false, "host JIT: {} failed: {}", what, llvm::toString(std::move(error)));
}

// The process's LLJIT, with libm (expf, tanhf & co., and what llvm.sqrt may
// become) resolved from the process's own symbols.
std::shared_ptr<llvm::orc::LLJIT> shared_jit() {
  static std::shared_ptr<llvm::orc::LLJIT> jit = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    std::shared_ptr<llvm::orc::LLJIT> created =
        check(llvm::orc::LLJITBuilder().create(), "creating the LLJIT");
    created->getMainJITDylib().addGenerator(
        check(llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
                  created->getDataLayout().getGlobalPrefix()),
              "opening the process's symbols"));
    return created;
  }();
  return jit;
}

} // namespace

struct HostJitMod::Impl {
  ModSignature signature;
  std::shared_ptr<llvm::orc::LLJIT> jit;
  llvm::orc::ResourceTrackerSP code; // this mod's code in the shared JIT
  MaskFnPtr mask = nullptr;
  ScoreFnPtr score = nullptr;

  ~Impl() {
    if (code)
      llvm::consumeError(code->remove());
  }

  static std::unique_ptr<Impl> compile(HookKind kind, const Expr& optimized_body) {
    static std::atomic<uint64_t> next_id{0};
    auto impl = std::make_unique<Impl>();
    impl->signature = ModSignature::of({optimized_body});
    impl->jit = shared_jit();
    llvm::orc::LLJIT& jit = *impl->jit;

    // A name of its own, as every mod lives in the one JITDylib.
    const std::string name =
        fmt::format("{}.{}", kind == HookKind::Mask ? kMaskHookName : kScoreHookName, next_id++);
    auto ctx = std::make_unique<llvm::LLVMContext>();
    auto m = std::make_unique<llvm::Module>("flexjit_host", *ctx);
    m->setDataLayout(jit.getDataLayout());
    m->setTargetTriple(jit.getTargetTriple().str());
    lower_hook(*m, kind, name, optimized_body, impl->signature, MathTarget::Host);
    std::string errors;
    llvm::raw_string_ostream error_os(errors);
    FLEXJIT_ASSERT(!llvm::verifyModule(*m, &error_os), "invalid host module: {}", errors);
    run_default_pipeline(*m, nullptr, llvm::OptimizationLevel::O2);

    impl->code = jit.getMainJITDylib().createResourceTracker();
    check(jit.addIRModule(impl->code, llvm::orc::ThreadSafeModule(std::move(m), std::move(ctx))),
          "adding the module");
    const llvm::orc::ExecutorAddr addr = check(jit.lookup(name), "looking up the hook");
    if (kind == HookKind::Mask)
      impl->mask = addr.toPtr<MaskFnPtr>();
    else
      impl->score = addr.toPtr<ScoreFnPtr>();
    return impl;
  }
};

HostJitMod::HostJitMod(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HostJitMod::~HostJitMod() = default;
HostJitMod::HostJitMod(HostJitMod&&) noexcept = default;
HostJitMod& HostJitMod::operator=(HostJitMod&&) noexcept = default;

HostJitMod HostJitMod::compile(const MaskMod& mod) {
  type_check(mod);
  return HostJitMod(Impl::compile(HookKind::Mask, optimize(mod.body())));
}

HostJitMod HostJitMod::compile(const ScoreMod& mod) {
  type_check(mod);
  return HostJitMod(Impl::compile(HookKind::Score, optimize(mod.body())));
}

bool HostJitMod::mask(int b, int h, int q, int kv, const FlexjitModArgs& args) const {
  FLEXJIT_ASSERT(impl_ && impl_->mask, "HostJitMod::mask on a mod that is not a mask_mod");
  return impl_->mask(b, h, q, kv, &args);
}

float HostJitMod::score(float s, int b, int h, int q, int kv, const FlexjitModArgs& args) const {
  FLEXJIT_ASSERT(impl_ && impl_->score, "HostJitMod::score on a mod that is not a score_mod");
  return impl_->score(s, b, h, q, kv, &args);
}

const ModSignature& HostJitMod::signature() const {
  FLEXJIT_ASSERT(impl_, "HostJitMod used after being moved from");
  return impl_->signature;
}

} // namespace flexjit
