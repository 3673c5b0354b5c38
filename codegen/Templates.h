// Internal to codegen: what each TemplateKind is made of.
#pragma once

#include <string>

#include "codegen/Codegen.h"

namespace flexjit {

struct TemplateInfo {
  const char* stem;  // codegen/templates/<stem>.cu
  const char* entry; // the kernel's extern "C" name
  // The JIT's pass pipeline once the hooks are in (opt's -passes syntax), or null for
  // the default O3 pipeline. A template clang already optimized and fully unrolled
  // at build time only needs the hooks inlined and cleaned up: a quarter of O3's time.
  const char* jit_pipeline = nullptr;
};
TemplateInfo template_info(TemplateKind kind);

// The embedded bitcode's symbol for a kernel: its template, architecture and, for
// templates compiled per variant, its variant.
std::string template_symbol(const KernelSpec& spec);

} // namespace flexjit
