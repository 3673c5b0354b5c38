// Internal to attention: the mods and bindings attention_forward_varlen gives flex_attention
// (attention/Varlen.cpp), for its tests to evaluate on the CPU.
#pragma once

#include <cstdint>
#include <vector>

#include "flexjit/attention/FlexAttention.h"

namespace flexjit {

// The mask_mod (same sequence, causal / window bounds, the user's mask at local positions) and
// score_mod (the user's, softcap, ALiBi; noop when none) of the options.
struct VarlenMods {
  MaskMod mask;
  ScoreMod score;
};
VarlenMods varlen_mods(const VarlenOptions& options);

// Their buffers and params for a call: options.bindings, each token's sequence (seq_q, seq_k),
// cu_seqlens, the ALiBi slopes, the window and softcap values.
Bindings varlen_bindings(const VarlenOptions& options, const TensorView& seq_q,
                         const TensorView& seq_k, const TensorView& cu_q, const TensorView& cu_k);

// Each token's sequence from checked cu_seqlens.
std::vector<int32_t> token_sequences(const std::vector<int32_t>& cu);

} // namespace flexjit
