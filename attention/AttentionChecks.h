// Internal to attention: flex_attention's argument checks, all before any CUDA call,
// the problem they describe, and the choice of its kernel from the variant table.
#pragma once

#include <memory>

#include "flexjit/attention/FlexAttention.h"
#include "flexjit/codegen/Variants.h"
#include "flexjit/compiler/PreparedMods.h"
#include "flexjit/runtime/Target.h"

namespace flexjit {

struct AttentionProblem {
  DType dtype = DType::F16;
  int B = 0, Hq = 0, Hkv = 0, q_len = 0, kv_len = 0;
  int head_dim = 0, head_dim_v = 0; // Dqk (q, k) and Dv (v, out)
  float scale = 1.0f;
  // q, k and v step no dimension with a zero stride (what TMA tensor maps need).
  bool nonzero_strides = true;
  const BlockMask* block_mask = nullptr;
  std::shared_ptr<const PreparedMods> mods; // the block mask's mask_mod (or noop), score_mod
  ResolvedArgs args;                        // every buffer device memory

  LaunchSizes launch_sizes() const;
};

// Throws Error naming the first bad value. The dtype, head dim and block-mask tiles are
// checked against every forward kernel of the variant table (some arch's must take them).
AttentionProblem check_attention(const TensorView& q, const TensorView& k, const TensorView& v,
                                 const TensorView& out, const FlexAttentionOptions& options);

// The forward's checks plus the backward's: the logsumexp is given, d_out matches out,
// dq matches q, dk and dv match k, and some backward kernel takes the block mask.
AttentionProblem check_attention_backward(const TensorView& q, const TensorView& k,
                                          const TensorView& v, const TensorView& out,
                                          const TensorView& d_out, const TensorView& dq,
                                          const TensorView& dk, const TensorView& dv,
                                          const FlexAttentionOptions& options);

// The kernel of `kind` for a checked problem on `target`: the first row of the variant
// table, in its preference order, that runs there and whose constraints the problem
// meets (the sm_90a backward owns 128 kv rows per CTA; a block mask with kv_block 64
// runs the sm_80 one). Error when none does.
const KernelVariant& select_variant(TemplateKind kind, const Target& target,
                                    const AttentionProblem& problem);

} // namespace flexjit
