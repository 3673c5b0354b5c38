#include <string_view>

#include "flexjit/codegen/Variants.h"
#include "flexjit/support/Error.h"

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
  case TemplateKind::AttentionForward:
    return "attention_fwd";
  case TemplateKind::AttentionBackward:
    return "attention_bwd";
  case TemplateKind::EvalPoints:
    return "eval_points";
  case TemplateKind::KvAppend:
    return "kv_append";
  case TemplateKind::MergeAttention:
    return "merge_attention";
  }
  FLEXJIT_ASSERT(false, "unknown template kind {}", static_cast<int>(kind));
}

int max_mod_nodes(const KernelSpec& spec) {
  return find_variant(spec).max_mod_nodes;
}

} // namespace flexjit
