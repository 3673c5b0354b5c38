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
  // Whether the forward takes a persistent kernel where the table has one (persistent_schedule).
  bool persistent = false;
  // Whether it takes the split-KV decode kernel where the table has one (decode_schedule), and
  // the query heads that kernel packs per CTA (decode_heads; 0: q_len too long to pack).
  bool decode = false;
  int decode_heads = 0;
  // The KV cache the call reads through (its lengths, pages), or null. kv_len above is the
  // cache's capacity.
  const KvCache* kv_cache = nullptr;
  const BlockMask* block_mask = nullptr;
  std::shared_ptr<const PreparedMods> mods; // the block mask's mask_mod (or noop), score_mod
  ResolvedArgs args;                        // every buffer device memory

  LaunchSizes launch_sizes() const;
};

// Whether a forward of p's sizes runs on a persistent grid where the table has a kernel for
// it: as `schedule` says; for Auto at q/k head dims up to 64 (measured faster at every
// length), and at wider ones under a block mask when kv_len <= 4096 (the next work tile's
// copies overlap this one's epilogue, and short uneven tiles pack the SMs; on long rows at
// D = 128 its static order loses L2 locality to the hardware's CTA order: causal at S =
// 32768 -13%, and without a mask it is 1-2% slower): bench/NOTES_fwd_kernel.md, session 14.
bool persistent_schedule(FlexAttentionOptions::Schedule schedule, const AttentionProblem& p);

// Whether a forward of p's sizes runs the split-KV decode kernel where the table has one: as
// `schedule` says (SplitKv), and for Auto when q_len <= FLEXJIT_DECODE_MAX_Q_LEN (the rows of
// a query tile are few: a forward kernel would read K and V once per query head and q tile).
bool decode_schedule(FlexAttentionOptions::Schedule schedule, const AttentionProblem& p);
// The query heads of one kv head the decode kernel packs into a CTA's FLEXJIT_DECODE_ROWS
// rows: the largest divisor of Hq / Hkv with heads * q_len <= FLEXJIT_DECODE_ROWS; 1 under a
// block mask with per-head rows (the packed heads walk one mask row); 0 when q_len is longer.
int decode_heads(const AttentionProblem& p);
// How many kv splits the decode kernel takes for p (its kv tile kv_tile rows, on sm_count
// SMs, a CTA each): the fewest that fill every SM once, then within four times that the
// count whose last wave is fullest (ties: fewer); never more splits than kv tiles.
int decode_splits(const AttentionProblem& p, int kv_tile, int sm_count);

// The KV cache's checks (everything the host can check: shapes, dtypes, memory, page size;
// the lengths and pages themselves are the kernel's): its capacity, the logical kv_len.
int64_t check_kv_cache(const KvCache& cache, int64_t B, const TensorView& k, const TensorView& v,
                       const char* fn = "flex_attention");

// append_kv_cache's checks: every tensor as flex_attention's, one dtype, the cache's (above),
// the new tokens' shape against the cache's; kv_lens is required.
struct KvAppendProblem {
  int B = 0, Hkv = 0, n_new = 0, dk = 0, dv = 0, capacity = 0;
};
KvAppendProblem check_kv_append(const TensorView& k_new, const TensorView& v_new,
                                const TensorView& k_cache, const TensorView& v_cache,
                                const KvCache& cache);

// attention_forward_varlen's checks of everything but cu_seqlens' values (dropout first, then
// the tensors as flex_attention's, viewed as [1, H, total, D]: those views) and of those values
// once read (check_cu_seqlens: 0 first, non-decreasing, `total` last, lengths within max_seqlen
// when it is > 0).
struct VarlenProblem {
  int B = 0;
  TensorView q, k, v, out; // [1, H, total, D]
};
VarlenProblem check_varlen(const TensorView& q, const TensorView& k, const TensorView& v,
                           const TensorView& cu_seqlens_q, const TensorView& cu_seqlens_k,
                           const TensorView& out, const VarlenOptions& options);
void check_cu_seqlens(const char* name, const std::vector<int32_t>& cu, int64_t total,
                      int max_seqlen);

// merge_attention's checks: the three outs as flex_attention's out, of one dtype and shape
// [B, H, S, D] (D a multiple of 8, at most FLEXJIT_MERGE_MAX_HEAD_DIM), the lses f32 [B, H, S].
struct MergeProblem {
  int B = 0, H = 0, S = 0, D = 0;
};
MergeProblem check_merge(const TensorView& out_a, const TensorView& lse_a, const TensorView& out_b,
                         const TensorView& lse_b, const TensorView& out, const TensorView& lse);

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
