// Internal to codegen: the cache key's text from mods already optimized, so
// compile_to_ptx optimizes each mod once.
#pragma once

#include <string>

#include "codegen/Codegen.h"

namespace flexjit {

std::string kernel_key_text(const KernelSpec& spec, const Expr& optimized_mask,
                            const Expr& optimized_score, const ModSignature& sig);

} // namespace flexjit
