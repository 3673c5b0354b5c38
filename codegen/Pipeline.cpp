#include "flexjit/codegen/Pipeline.h"

#include <llvm/Passes/PassBuilder.h>

#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

// A PassBuilder with its analysis managers registered and cross-wired.
struct Pipeline {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb;

  explicit Pipeline(llvm::TargetMachine* tm) : pb(tm) {
    pb.registerModuleAnalyses(mam);
    pb.registerCGSCCAnalyses(cgam);
    pb.registerFunctionAnalyses(fam);
    pb.registerLoopAnalyses(lam);
    pb.crossRegisterProxies(lam, fam, cgam, mam);
  }
};

} // namespace

void run_default_pipeline(llvm::Module& m, llvm::TargetMachine* tm, llvm::OptimizationLevel level) {
  Pipeline p(tm);
  p.pb.buildPerModuleDefaultPipeline(level).run(m, p.mam);
}

void run_pipeline(llvm::Module& m, llvm::TargetMachine* tm, std::string_view text) {
  Pipeline p(tm);
  llvm::ModulePassManager mpm;
  if (llvm::Error error = p.pb.parsePassPipeline(mpm, llvm::StringRef(text.data(), text.size())))
    FLEXJIT_ASSERT(false, "invalid pass pipeline '{}': {}", text, llvm::toString(std::move(error)));
  mpm.run(m, p.mam);
}

} // namespace flexjit
