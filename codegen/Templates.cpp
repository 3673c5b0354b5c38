#include "codegen/Templates.h"

#include <algorithm>
#include <iterator>

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
  case TemplateKind::AttentionForward:
    return "attention_fwd";
  case TemplateKind::AttentionBackward:
    return "attention_bwd";
  case TemplateKind::EvalPoints:
    return "eval_points";
  }
  FLEXJIT_ASSERT(false, "unknown template kind {}", static_cast<int>(kind));
}

std::vector<TemplateKind> all_templates() {
  return {TemplateKind::BlockClassify, TemplateKind::CreateMask, TemplateKind::AttentionForward,
          TemplateKind::AttentionBackward};
}

namespace {
// For templates clang optimized and fully unrolled at build time (TemplateInfo).
constexpr const char* kLightPipeline =
    "function(nvvm-reflect),always-inline,function(sroa,early-cse<memssa>,"
    "instcombine<no-verify-fixpoint>,loop-mssa(licm),early-cse<memssa>,simplifycfg),globaldce";
} // namespace

TemplateInfo template_info(TemplateKind kind) {
  switch (kind) {
  case TemplateKind::BlockClassify:
    return {"classify", "flexjit_block_classify"};
  case TemplateKind::CreateMask:
    return {"create_mask", "flexjit_create_mask"};
  case TemplateKind::AttentionForward:
    return {"attention_fwd", "flexjit_attention_fwd", kLightPipeline};
  case TemplateKind::AttentionBackward:
    return {"attention_bwd", "flexjit_attention_bwd", kLightPipeline};
  case TemplateKind::EvalPoints:
    return {"eval_points", "flexjit_eval_points"};
  }
  FLEXJIT_ASSERT(false, "unknown template kind {}", static_cast<int>(kind));
}

int max_mod_nodes(TemplateKind kind) {
  return kind == TemplateKind::AttentionForward ? kMaxAttentionModNodes : kMaxModNodes;
}

Arch arch_for_compute_capability(int major, int minor) {
  if (major == 9 && minor == 0)
    return Arch::SM90a;
  if (major >= 8)
    return Arch::SM80;
  fail("compute capability {}.{} is not supported: flexjit kernels need 8.0 (Ampere) or newer",
       major, minor);
}

Arch arch_for_device(int major, int minor, const char* forced) {
  const Arch arch = arch_for_compute_capability(major, minor);
  if (!forced || !*forced)
    return arch;
  if (std::string_view(forced) != "sm_80")
    fail("FLEXJIT_ARCH={} is not supported; expected sm_80 (or unset)", forced);
  return Arch::SM80;
}

std::optional<KernelSpec> one_cta_variant(const KernelSpec& spec) {
  if (spec.kind != TemplateKind::AttentionForward || spec.arch != Arch::SM90a ||
      spec.min_ctas_per_sm != 0)
    return std::nullopt;
  KernelSpec one = spec;
  one.min_ctas_per_sm = 1;
  return one;
}

std::string kernel_entry(const KernelSpec& spec) {
  const TemplateInfo info = template_info(spec.kind);
  if (!is_attention(spec.kind))
    return info.entry;
  if (spec.dtype != DType::F16 && spec.dtype != DType::BF16)
    fail("attention dtype {} is not supported: expected f16 or bf16", to_string(spec.dtype));
  if (std::find(std::begin(kAttentionHeadDims), std::end(kAttentionHeadDims), spec.head_dim) ==
      std::end(kAttentionHeadDims))
    fail("attention head dim {} is not supported: expected 64 or 128", spec.head_dim);
  return fmt::format("{}_{}_d{}", info.entry, to_string(spec.dtype), spec.head_dim);
}

std::string template_symbol(const KernelSpec& spec) {
  const TemplateInfo info = template_info(spec.kind);
  if (!is_attention(spec.kind))
    return fmt::format("flexjit_bc_{}_{}", info.stem, to_string(spec.arch));
  // One bitcode per kernel (cmake/EmbedTemplates.cmake): its entry minus the prefix.
  const std::string entry = kernel_entry(spec);
  return fmt::format("flexjit_bc_{}{}_{}", info.stem,
                     entry.substr(std::string_view(info.entry).size()), to_string(spec.arch));
}

} // namespace flexjit
