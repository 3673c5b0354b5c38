// Internal: a call's resolved mod arguments in the kernels' ABI struct.
#pragma once

#include "flexjit/codegen/templates/flexjit_abi.h"
#include "flexjit/compiler/Signature.h"

namespace flexjit {

// Packs values resolved from `sig` (the call's own PreparedMods::signature) into the ABI
// struct (buffer data pointers as given), with the word data-indexed loads report in
// (FlexjitModArgs::device_error: a launch's cuda::device_error_word(), or null).
FlexjitModArgs pack_mod_args(const ModSignature& sig, const ResolvedArgs& args,
                             uint32_t* device_error);

} // namespace flexjit
