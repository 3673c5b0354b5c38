// flex_attention: the fused block-sparse attention forward on the GPU, with the
// mods JIT-compiled into the attention template (PyTorch's flex_attention).
#pragma once

#include <optional>

#include "flexjit/blockmask/BlockMask.h"
#include "flexjit/compiler/Signature.h"
#include "flexjit/dsl/Mods.h"
#include "flexjit/runtime/Runtime.h"

namespace flexjit {

// A KV cache that flex_attention's sm_90a warp-specialized kernels read -- the forward (prefill:
// Schedule OneTilePerCta or Persistent, or Auto's choice) and the split-KV decode kernel --
// per-sequence lengths and, optionally, pages; the other kernels (the sm_80 mma.sync forward, the
// sm_90a wgmma forward a block mask of 64-row kv blocks takes, the backward) reject it with an
// Error. Everything here is device data, read by the kernel: a length or page index out of
// range is reported through the device error word (check_device_errors), never read out of
// bounds.
struct KvCache {
  // int32 [B], device memory: sequence b attends its keys [0, kv_lens[b]), each at most the
  // cache's capacity (kv_len, or max_pages * page_size when paged). Null: every key.
  const TensorView* kv_lens = nullptr;
  // int32 [B, max_pages], device memory, stride 1 over pages: key j of sequence b lies in page
  // block_table[b][j / page_size], slot j % page_size, of the pools k and v, which are then
  // [num_pages, page_size, Hkv, D] (any strides with D contiguous). Mods and block masks see
  // the logical position j; a block mask is built for kv_len = max_pages * page_size. Null: k
  // and v are [B, Hkv, kv_len, D].
  const TensorView* block_table = nullptr;
  int page_size = 0; // with a block table: a power of two from 16 to 256
};

struct FlexAttentionOptions {
  ScoreMod score_mod;                    // identity by default
  const BlockMask* block_mask = nullptr; // null: every (q, kv) pair attends (noop mask)
  std::optional<float> scale;            // default 1 / sqrt(head dim)
  const TensorView* lse = nullptr; // float32 [B, Hq, q_len] (q stride 1), natural log; may be null
  void* stream = nullptr;          // a CUstream; null: the legacy default stream
  Bindings bindings;               // call-time buffers and params of the mods
  // The forward's tile schedule where the kernel has them (sm_90a): OneTilePerCta launches a
  // CTA per (q tile, h, b) work tile, Persistent a CTA per SM looping over its work tiles
  // (the next tile's copies overlap this one's epilogue), SplitKv the decode kernel (the
  // query heads of a kv head packed into one tile, the kv range split over CTAs, the splits
  // merged; for q_len up to 64), Auto the library's choice by the problem (SplitKv for q_len
  // <= 16; select_variant). Every choice gives the same result; other kernels ignore it.
  enum class Schedule : uint8_t {
    Auto,
    OneTilePerCta,
    Persistent,
    SplitKv
  } schedule = Schedule::Auto;
  const KvCache* kv_cache = nullptr; // null: k and v are whole [B, Hkv, kv_len, D] tensors
};

// out = softmax(score_mod(q . k * scale) where mask_mod, else -inf) v, per (b, h, q).
// q: [B, Hq, q_len, Dqk]; k: [B, Hkv, kv_len, Dqk]; v: [B, Hkv, kv_len, Dv]; out:
// [B, Hq, q_len, Dv]; views with element strides (BHSD, BSHD, ...), f16 or bf16, device
// memory; the (Dqk, Dv) pairs of the variant table (an Error lists them); Hq a
// multiple of Hkv (GQA). The mask is block_mask->mask_mod; a row nothing may
// attend gets out 0 and lse -inf. Asynchronous on `stream`.
//
// Everything is checked before any CUDA call, each failure an Error naming
// the value: dtypes, shapes, null or host pointers, head-dim stride 1, 16-byte
// aligned pointers and strides a multiple of 8, the block mask's lengths,
// tile sizes (q_block a multiple of 128, kv_block of 64) and B/H (1 or equal),
// the lse view, and the mods' buffers (device memory; a buffer dimension
// indexed by exactly b, h, q_idx or kv_idx must have at least B, Hq, q_len or
// kv_len elements). Changing a param or buffer binding never recompiles.
void flex_attention(const TensorView& q, const TensorView& k, const TensorView& v,
                    const TensorView& out, const FlexAttentionOptions& options = {});

// Bad device data an earlier flex_attention call's kernel found (a KvCache length or page
// index out of range; the kernel read page 0 or the capacity instead, so that call's output
// is not to be trusted): after synchronising `stream`, throws Error naming what was wrong, and
// clears it. flex_attention raises the same Error, without synchronising, for what kernels
// reported before it was called.
void check_device_errors(void* stream = nullptr);

// Appends each sequence's n_new new tokens to a KV cache: k_new [B, Hkv, n_new, Dk] and v_new
// [B, Hkv, n_new, Dv] (f16/bf16, D contiguous, a multiple of 8) go to positions kv_lens[b] ..
// kv_lens[b] + n_new - 1 of k_cache and v_cache (the layouts of KvCache: [B, Hkv, capacity, D],
// or page pools through the block table), then kv_lens[b] += n_new. cache.kv_lens is required.
// Two kernels on `stream`, nothing read on the host: a CUDA graph can capture it (after one
// call outside the capture has loaded the kernels). A sequence whose new tokens would pass the
// capacity, or whose page is outside the pool, is not written and keeps its length; the kernel
// reports it through the device error word (check_device_errors).
void append_kv_cache(const TensorView& k_new, const TensorView& v_new, const TensorView& k_cache,
                     const TensorView& v_cache, const KvCache& cache, void* stream = nullptr);

// Context parallelism: `mod` evaluated at global positions, q_idx + q_offset and kv_idx +
// kv_offset, for a shard whose queries and keys are rows [q_offset, ...) and [kv_offset, ...) of
// the whole sequence. The offsets are the int params kQOffsetParam and kKvOffsetParam (default
// 0), bound per call (bind_offsets) in FlexAttentionOptions::bindings and, for the shard's block
// mask (create_block_mask of the offset mask_mod), in BlockMaskOptions::bindings: every shard
// runs one kernel. A shard's partial results merge with merge_attention.
inline constexpr const char* kQOffsetParam = "flexjit_q_offset";
inline constexpr const char* kKvOffsetParam = "flexjit_kv_offset";
MaskMod offset_mod(const MaskMod& mod);
ScoreMod offset_mod(const ScoreMod& mod);
void bind_offsets(Bindings& bindings, int q_offset, int kv_offset);

// FlashAttention's varlen API (seed 002) on flex_attention: B sequences packed along the tokens,
// q [total_q, Hq, Dqk], k [total_k, Hkv, Dqk], v [total_k, Hkv, Dv], out [total_q, Hq, Dv]
// (f16/bf16, D contiguous, device), cu_seqlens_q / cu_seqlens_k int32 [B + 1] on the device
// (sequence b's tokens are [cu[b], cu[b + 1]): 0 first, non-decreasing, total last; checked on
// the host, an Error otherwise). Sequence b's q row i and key j (sequence-local positions, d =
// len_k - len_q) attend each other when the options below allow; a block mask of the packed
// sequences is built on the GPU for each call, and the call returns after its kernel (it
// synchronizes the stream: to read cu_seqlens, and before freeing that block mask).
struct VarlenOptions {
  int max_seqlen_q = 0, max_seqlen_k = 0; // > 0: every sequence's length is checked against it
  float softmax_scale = 0.0f;             // 0: 1 / sqrt(Dqk)
  bool causal = false;                    // j <= i + d (aligned bottom-right, as FlashAttention)
  int window_left = -1,
      window_right = -1; // window_size: i + d - left <= j <= i + d + right (-1: no bound)
  float softcap = 0.0f;  // > 0: scores -> softcap * tanh(scores / softcap)
  // f32 [Hq] or [B, Hq], device: scores -= slope * |i + d - j| (after the softcap).
  const TensorView* alibi_slopes = nullptr;
  bool deterministic = false;      // accepted: the forward is deterministic in any case
  float dropout_p = 0.0f;          // anything but 0 is an Error: dropout is not supported
  const TensorView* lse = nullptr; // return_lse: f32 [Hq, total_q] (total_q stride 1), natural log
  // The user's own mods at sequence-local positions (b is the sequence, q_idx = i, kv_idx = j),
  // applied before the softcap and ALiBi; their buffers and params in `bindings`.
  MaskMod mask_mod;
  ScoreMod score_mod;
  Bindings bindings;
  void* stream = nullptr;
};
void attention_forward_varlen(const TensorView& q, const TensorView& k, const TensorView& v,
                              const TensorView& cu_seqlens_q, const TensorView& cu_seqlens_k,
                              const TensorView& out, const VarlenOptions& options = {});

// Merges two partial attention results of the same queries over disjoint sets of keys -- what
// a ring or all-gather context-parallel loop holds after each step: out_a, out_b and out [B, H,
// S, D] (f16/bf16, one dtype, D contiguous, a multiple of 8 up to 256), lse_a, lse_b and lse
// f32 [B, H, S] (flex_attention's lse: natural log, stride 1 over S):
//   out = (e^lse_a out_a + e^lse_b out_b) / (e^lse_a + e^lse_b), lse = ln(e^lse_a + e^lse_b),
// each row as if one call had attended both key sets; a row of lse -inf in a part (it saw no
// key) takes the other's (its out is not read); both -inf gives out 0, lse -inf. out and lse
// may be out_a and lse_a (or b's): merge in place. One kernel on `stream`, graph-capturable.
void merge_attention(const TensorView& out_a, const TensorView& lse_a, const TensorView& out_b,
                     const TensorView& lse_b, const TensorView& out, const TensorView& lse,
                     void* stream = nullptr);

// The gradients of a flex_attention call: given its inputs, its output `out`, its
// logsumexp (options.lse, required) and the gradient d_out of the loss with respect to
// out, writes dq, dk and dv (the shapes, dtypes and layout rules of q, k and v; GQA: dk,
// dv summed over each kv head's query heads). The same options as the forward call
// (score_mod, block_mask, scale, bindings); the score_mod is differentiated symbolically
// (compiler/Derivative.cpp). Rows nothing attends give zero gradients. Asynchronous on
// options.stream; needs B * Hq * q_len * (D + 1) * 4 bytes of device workspace, kept
// (grow-only) per thread.
void flex_attention_backward(const TensorView& q, const TensorView& k, const TensorView& v,
                             const TensorView& out, const TensorView& d_out, const TensorView& dq,
                             const TensorView& dk, const TensorView& dv,
                             const FlexAttentionOptions& options);

} // namespace flexjit
