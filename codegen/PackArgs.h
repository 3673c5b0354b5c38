// Internal: a call's resolved mod arguments in the kernels' ABI struct.
#pragma once

#include "flexjit/codegen/templates/flexjit_abi.h"
#include "flexjit/compiler/Signature.h"

namespace flexjit {

// Packs resolved values into the ABI struct (buffer data pointers as given). `sig` is the
// kernel's slot layout; `args` must be resolved from the call's own signature (the same
// slots: a kernel is shared by all mods of its key, whose param defaults and captured data
// differ).
FlexjitModArgs pack_mod_args(const ModSignature& sig, const ResolvedArgs& args);

} // namespace flexjit
