#include "codegen/Templates.h"

#include "dsl/Error.h"

namespace flexjit {

std::string_view to_string(Arch arch) {
  switch (arch) {
  case Arch::SM80:
    return "sm_80";
  case Arch::SM90a:
    return "sm_90a";
  }
  FLEXJIT_ASSERT(false, "unknown arch {}", static_cast<int>(arch));
}

std::string_view to_string(TemplateKind kind) {
  switch (kind) {
  case TemplateKind::BlockClassify:
    return "block_classify";
  case TemplateKind::CreateMask:
    return "create_mask";
  }
  FLEXJIT_ASSERT(false, "unknown template kind {}", static_cast<int>(kind));
}

std::vector<TemplateKind> all_templates() {
  return {TemplateKind::BlockClassify, TemplateKind::CreateMask};
}

TemplateInfo template_info(TemplateKind kind) {
  switch (kind) {
  case TemplateKind::BlockClassify:
    return {"classify", "flexjit_block_classify"};
  case TemplateKind::CreateMask:
    return {"create_mask", "flexjit_create_mask"};
  }
  FLEXJIT_ASSERT(false, "unknown template kind {}", static_cast<int>(kind));
}

std::string template_symbol(TemplateKind kind, Arch arch) {
  return fmt::format("flexjit_bc_{}_{}", template_info(kind).stem, to_string(arch));
}

} // namespace flexjit
