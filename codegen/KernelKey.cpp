#include "codegen/KernelKey.h"

#include <fmt/format.h>

#include <map>
#include <mutex>

#include "codegen/Embedded.h"
#include "codegen/Templates.h"
#include "compiler/Passes.h"

#ifndef FLEXJIT_VERSION
#error "FLEXJIT_VERSION must be defined by the build"
#endif

namespace flexjit {

namespace {

// The revision of the code generation itself (the lowering, the IR rewrites of
// codegen/PtxasWorkarounds.h): bumped whenever the same mods and template bitcode
// compile to different code, so that no disk cache serves a kernel built the old way.
//   1: (implicit) up to the first bump.
//   2: a negated kernel param reaches a signed min or max as ~x + 1 (fuzz pair 586).
constexpr int kCodegenRevision = 2;

// A hash of the template's embedded bitcode, so an edited template never
// reuses a kernel cached (on disk) from the old one. Hashed once per symbol.
std::string template_hash(const KernelSpec& spec) {
  static std::mutex mutex;
  static std::map<std::string, std::string> hashes;
  const std::string symbol = template_symbol(spec);
  std::lock_guard lock(mutex);
  auto [it, inserted] = hashes.try_emplace(symbol);
  if (inserted) {
    const std::string_view bytes = embedded_bitcode(symbol);
    it->second = hash_text(bytes).hex();
  }
  return it->second;
}

} // namespace

std::string kernel_key_text(const KernelSpec& spec, const Expr& optimized_mask,
                            const Expr& optimized_score, const ModSignature& sig) {
  // Only the attention templates are instantiated per dtype and head dim.
  std::string variant = is_attention(spec.kind) ? fmt::format("dtype {}\nhead_dim {}\n",
                                                              to_string(spec.dtype), spec.head_dim)
                                                : std::string();
  if (spec.min_ctas_per_sm > 0)
    variant += fmt::format("min_ctas_per_sm {}\n", spec.min_ctas_per_sm);
  return fmt::format("flexjit {} codegen {}\ntemplate {} {}\narch {}\n{}entry {}\nsignature "
                     "{}\nmask_mod\n{}\nscore_mod\n{}\n",
                     FLEXJIT_VERSION, kCodegenRevision, to_string(spec.kind), template_hash(spec),
                     to_string(spec.arch), variant, kernel_entry(spec), sig.to_string(),
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
