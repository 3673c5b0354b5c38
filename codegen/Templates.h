// Internal to codegen: what each TemplateKind is made of.
#pragma once

#include <string>

#include "codegen/Codegen.h"

namespace flexjit {

struct TemplateInfo {
  const char* stem;  // codegen/templates/<stem>.cu
  const char* entry; // the kernel's extern "C" name
};
TemplateInfo template_info(TemplateKind kind);

// The embedded bitcode's symbol for a template and architecture.
std::string template_symbol(TemplateKind kind, Arch arch);

} // namespace flexjit
