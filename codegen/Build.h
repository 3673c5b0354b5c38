// Internal to codegen and the runtime: one variant table row built with prepared mods,
// and its kernel key.
#pragma once

#include <string>

#include "flexjit/codegen/Codegen.h"
#include "flexjit/codegen/Variants.h"
#include "flexjit/compiler/PreparedMods.h"

namespace flexjit {

// DSL -> PTX of `variant` with `mods`. min_ctas_per_sm as KernelSpec's (0: the template's
// launch bounds). Throws Error when the mods exceed the variant's node limit, before any
// LLVM work.
CompiledKernel compile_variant(const KernelVariant& variant, const PreparedMods& mods,
                               int min_ctas_per_sm = 0);

// The full kernel key text: library version and codegen revision, template and a hash of
// its bitcode, arch, dtype and head dims for attention, the one-CTA build, entry, and the
// mods' canonical text (PreparedMods::text).
std::string kernel_key_text(const KernelVariant& variant, const PreparedMods& mods,
                            int min_ctas_per_sm = 0);

} // namespace flexjit
