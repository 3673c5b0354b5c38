// Kernel keys: everything that changes a kernel's code, as text.
#include <fmt/format.h>

#include <map>
#include <mutex>

#include "flexjit/codegen/Build.h"
#include "flexjit/codegen/Embedded.h"
#include "flexjit/support/Hash.h"

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
//   3: no CodeGenPrepare in the NVPTX codegen (codegen/Compiler.cpp).
//   4: a buffer load on the GPU is a predicated ld.global (codegen/Lower.cpp).
constexpr int kCodegenRevision = 4;

// A hash of the template's embedded bitcode, so an edited template never
// reuses a kernel cached (on disk) from the old one. Hashed once per symbol.
std::string template_hash(const std::string& symbol) {
  static std::mutex mutex;
  static std::map<std::string, std::string> hashes;
  std::lock_guard lock(mutex);
  auto [it, inserted] = hashes.try_emplace(symbol);
  if (inserted)
    it->second = hash_text(embedded_bitcode(symbol)).hex();
  return it->second;
}

} // namespace

std::string kernel_key_text(const KernelVariant& v, const PreparedMods& mods, int min_ctas_per_sm) {
  // Only the attention templates are instantiated per dtype and head dim.
  std::string variant;
  if (v.is_attention()) {
    variant = fmt::format("dtype {}\nhead_dim {}\n", to_string(v.dtype), v.dqk);
    if (v.dv != v.dqk)
      variant += fmt::format("head_dim_v {}\n", v.dv);
  }
  if (min_ctas_per_sm > 0)
    variant += fmt::format("min_ctas_per_sm {}\n", min_ctas_per_sm);
  return fmt::format("flexjit {} codegen {}\ntemplate {} {}\narch {}\n{}entry {}\n{}",
                     FLEXJIT_VERSION, kCodegenRevision, to_string(v.kind),
                     template_hash(v.bitcode_symbol()), to_string(v.arch), variant, v.main.entry,
                     mods.text);
}

std::string kernel_key_text(const KernelSpec& spec) {
  return kernel_key_text(find_variant(spec), *prepare_mods(spec.mask, spec.score),
                         spec.min_ctas_per_sm);
}

std::string kernel_key(const KernelSpec& spec) {
  return hash_text(kernel_key_text(spec)).hex();
}

} // namespace flexjit
