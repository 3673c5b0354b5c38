#include "codegen/KernelKey.h"

#include <fmt/format.h>

#include "compiler/Passes.h"

#ifndef FLEXJIT_VERSION
#error "FLEXJIT_VERSION must be defined by the build"
#endif

namespace flexjit {

std::string kernel_key_text(const KernelSpec& spec, const Expr& optimized_mask,
                            const Expr& optimized_score, const ModSignature& sig) {
  return fmt::format(
      "flexjit {}\ntemplate {}\narch {}\nsignature {}\nmask_mod\n{}\nscore_mod\n{}\n",
      FLEXJIT_VERSION, to_string(spec.kind), to_string(spec.arch), sig.to_string(),
      print(optimized_mask), print(optimized_score));
}

std::string kernel_key_text(const KernelSpec& spec) {
  const Expr mask = optimize(spec.mask.body());
  const Expr score = optimize(spec.score.body());
  return kernel_key_text(spec, mask, score, ModSignature::of({mask, score}));
}

std::string kernel_key(const KernelSpec& spec) {
  return hash_text(kernel_key_text(spec)).hex();
}

} // namespace flexjit
