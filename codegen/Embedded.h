// Internal to codegen: the bitcode embedded in the library at build time
// (cmake/EmbedTemplates.cmake): kernel templates per architecture and libdevice.
#pragma once

#include <string_view>

namespace flexjit {

// The bytes of embedded bitcode `symbol` (e.g. "flexjit_bc_classify_sm_90a",
// "flexjit_bc_libdevice"); empty if there is none by that name.
std::string_view embedded_bitcode(std::string_view symbol);

} // namespace flexjit
