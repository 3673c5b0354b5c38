// Internal to the runtime: flex_attention's argument checks, all before any
// CUDA call, and the problem they describe.
#pragma once

#include "codegen/Codegen.h"
#include "runtime/FlexAttention.h"

namespace flexjit {

struct AttentionProblem {
  DType dtype = DType::F16;
  int B = 0, Hq = 0, Hkv = 0, q_len = 0, kv_len = 0, head_dim = 0;
  float scale = 1.0f;
  MaskMod mask; // the block mask's mask_mod, or noop
  // Of the optimized mask and score mod; owned by a process-wide memo of the
  // per-mods analysis (type check, optimize, signature), so it outlives the call.
  const ModSignature* signature = nullptr;
  ResolvedArgs args; // every buffer device memory
};

// Throws Error naming the first bad value.
AttentionProblem check_attention(const TensorView& q, const TensorView& k, const TensorView& v,
                                 const TensorView& out, const FlexAttentionOptions& options);

// The forward's checks plus the backward's: the logsumexp is given, d_out matches out,
// dq matches q, dk and dv match k.
AttentionProblem check_attention_backward(const TensorView& q, const TensorView& k,
                                          const TensorView& v, const TensorView& out,
                                          const TensorView& d_out, const TensorView& dq,
                                          const TensorView& dk, const TensorView& dv,
                                          const FlexAttentionOptions& options);

} // namespace flexjit
