// Mod arguments for a kernel launch: the signature's slots resolved from the
// call's bindings, every buffer checked to be device memory, packed into the ABI
// struct. No CUDA call, so it runs before any launch work.
#pragma once

#include "flexjit/compiler/Signature.h"

namespace flexjit {

// Throws Error naming a buffer that is host memory or has no data; `what`
// names the operation ("flex_attention", "create_block_mask").
ResolvedArgs resolve_device_args(const ModSignature& sig, const Bindings& bindings,
                                 const char* what);

} // namespace flexjit
