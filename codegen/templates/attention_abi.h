// The ABI between host code and the attention kernel templates (attention_fwd.cu).
// Plain C layout; included by host C++ and by the CUDA-dialect templates.
//
// Forward kernels, one per (dtype, head dim):
//   extern "C" __global__ void flexjit_attention_fwd_{f16,bf16}_d{64,128}(
//       FlexjitAttentionParams params, FlexjitModArgs mod_args);
// Launch: grid (ceil(q_len / FLEXJIT_FWD_BLOCK_M), Hq, B), block FLEXJIT_FWD_THREADS
// threads (sm_90a: FLEXJIT_FWD_SM90_THREADS), dynamic shared memory FLEXJIT_FWD_SMEM_BYTES(D)
// (sm_90a: FLEXJIT_FWD_SM90_SMEM_BYTES(D)) bytes: the variant table (codegen/Variants.cpp)
// states each kernel's launch from these numbers, which the templates static_assert.
// Every size is above 48 KiB, so the host must first raise the limit with
//   cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes).
//
// Requirements the host checks before launching:
//   - q, k, v, out 16-byte aligned; every q/k/v/out stride a multiple of 8 elements;
//     the head-dim stride is 1.
//   - Hq % Hkv == 0 (GQA: query head h reads kv head h / (Hq / Hkv)).
//   - q_block_size % FLEXJIT_FWD_BLOCK_M == 0 and kv_block_size % FLEXJIT_FWD_BLOCK_N == 0
//     (a kernel tile lies inside one block-mask tile); checked only when has_mask != 0.
#pragma once

#ifdef __cplusplus
#include <cstdint>
#else
#include <stdint.h>
#endif

// Kernel tile: BLOCK_M query rows per CTA (4 warps, 32 rows per warp), BLOCK_N kv rows per
// step, which depends on the head dim (D=64: 64, D=128: 32). FLEXJIT_FWD_BLOCK_N is the
// largest of them: the block-mask kv tile size must be a multiple of it. The _FOR(d)
// macros have no value (0) for a head dim without a kernel, so a template instantiated
// for one fails its static_asserts instead of taking another head dim's shape.
#define FLEXJIT_FWD_BLOCK_M 128
#define FLEXJIT_FWD_BLOCK_N_D64 64
#define FLEXJIT_FWD_BLOCK_N_D128 32
#define FLEXJIT_FWD_BLOCK_N_FOR(head_dim)                                                          \
  ((head_dim) == 64 ? FLEXJIT_FWD_BLOCK_N_D64 : (head_dim) == 128 ? FLEXJIT_FWD_BLOCK_N_D128 : 0)
#define FLEXJIT_FWD_BLOCK_N 64
// K/V pipeline depth (tiles in flight) per head dim.
#define FLEXJIT_FWD_STAGES_D64 2
#define FLEXJIT_FWD_STAGES_D128 2
#define FLEXJIT_FWD_STAGES_FOR(head_dim)                                                           \
  ((head_dim) == 64 ? FLEXJIT_FWD_STAGES_D64 : (head_dim) == 128 ? FLEXJIT_FWD_STAGES_D128 : 0)
#define FLEXJIT_FWD_WARPS 4
#define FLEXJIT_FWD_THREADS (32 * FLEXJIT_FWD_WARPS)

// sm_90a (Hopper) kernels instead: wgmma, two warpgroups of 64 rows (BLOCK_M 128 as above),
// BLOCK_N 64 for both head dims, 2 stages; D=64: 49152 bytes, D=128: 98304 bytes of shared
// memory; two CTAs per SM (so at most 128 registers per thread). Measured against kv tiles
// of 128 and one CTA per SM in bench/NOTES_fwd_kernel.md.
#define FLEXJIT_FWD_SM90_THREADS 256
#define FLEXJIT_FWD_SM90_BLOCK_N 64
#define FLEXJIT_FWD_SM90_STAGES 2
#define FLEXJIT_FWD_SM90_SMEM_BYTES(head_dim)                                                      \
  ((FLEXJIT_FWD_BLOCK_M + 2 * FLEXJIT_FWD_SM90_STAGES * FLEXJIT_FWD_SM90_BLOCK_N) * (head_dim)*2)

// sm_90a warp-specialized kernels (attention_fwd_ws.cu), FlashAttention-3's shape: a
// producer warpgroup (one thread issues TMA copies of Q, K, V into a ring of STAGES K and
// V tiles completing on mbarriers) and two consumer warpgroups of 64 query rows each
// (BLOCK_M 128 as above) in ping-pong; kv tiles of FLEXJIT_FWD_WS_BLOCK_N rows, so the
// block mask's kv_block must be a multiple of it. One CTA per SM. Shared memory: the Q
// tile [BLOCK_M][Dqk], the K stages [BLOCK_N][Dqk], the V stages [BLOCK_N][Dv], then the
// barriers (FLEXJIT_FWD_WS_BARRIER_BYTES).
// The kernels take a third parameter, FlexjitTensorMaps (below).
#define FLEXJIT_FWD_WS_THREADS 384
#define FLEXJIT_FWD_WS_BLOCK_N 128
// Stages per (Dqk, Dv) (q, k of Dqk; v, out of Dv); 0: no kernel for that pair.
#define FLEXJIT_FWD_WS_STAGES_FOR(dqk, dv)                                                         \
  ((dqk) == 64 && (dv) == 64 ? 3 : (dqk) == 128 && (dv) == 128 ? 2 : 0)
#define FLEXJIT_FWD_WS_BARRIER_BYTES 256
#define FLEXJIT_FWD_WS_SMEM_BYTES(dqk, dv)                                                         \
  ((FLEXJIT_FWD_BLOCK_M * (dqk) +                                                                  \
    FLEXJIT_FWD_WS_STAGES_FOR(dqk, dv) * FLEXJIT_FWD_WS_BLOCK_N * ((dqk) + (dv))) *                \
       2 +                                                                                         \
   FLEXJIT_FWD_WS_BARRIER_BYTES)

// Dynamic shared memory of a forward kernel: the Q tile plus STAGES stages of K and V tiles,
// all in the input dtype (2 bytes). D=64: 49152 bytes, D=128: 65536 bytes (two CTAs per SM
// on sm_80 and sm_90).
#define FLEXJIT_FWD_SMEM_BYTES(head_dim)                                                           \
  ((FLEXJIT_FWD_BLOCK_M +                                                                          \
    2 * FLEXJIT_FWD_STAGES_FOR(head_dim) * FLEXJIT_FWD_BLOCK_N_FOR(head_dim)) *                    \
   (head_dim)*2)

struct FlexjitAttentionParams {
  // Tensors in the input dtype (f16 or bf16), logical shape [B, H, S, D]; strides in elements.
  const void* q; // [B, Hq, q_len, D]
  const void* k; // [B, Hkv, kv_len, D]
  const void* v; // [B, Hkv, kv_len, D]
  void* out;     // [B, Hq, q_len, D]
  float* lse;    // [B, Hq, q_len], natural log; may be null (not written)

  int64_t q_stride_b, q_stride_h, q_stride_s;
  int64_t k_stride_b, k_stride_h, k_stride_s;
  int64_t v_stride_b, v_stride_h, v_stride_s;
  int64_t out_stride_b, out_stride_h, out_stride_s;
  int64_t lse_stride_b, lse_stride_h; // the lse stride over q is 1

  // Block mask (int32, device memory, contiguous), torch's BlockMask layout:
  //   kv_num_blocks      [mask_B, mask_H, num_q_blocks]
  //   kv_indices         [mask_B, mask_H, num_q_blocks, num_kv_blocks]   partial tiles
  //   full_kv_num_blocks [mask_B, mask_H, num_q_blocks]                  may be null
  //   full_kv_indices    [mask_B, mask_H, num_q_blocks, num_kv_blocks]   may be null
  // mask_B is 1 or B, mask_H is 1 or Hq (1 broadcasts). Ignored when has_mask == 0.
  const int32_t* kv_num_blocks;
  const int32_t* kv_indices;
  const int32_t* full_kv_num_blocks;
  const int32_t* full_kv_indices;

  int32_t B, Hq, Hkv, q_len, kv_len;
  int32_t mask_B, mask_H, num_q_blocks, num_kv_blocks;
  int32_t q_block_size, kv_block_size; // block-mask tile, 128 x 128 by default
  int32_t has_mask;                    // 0: no block mask, every kv tile is full
  float scale;                         // score = (q . k) * scale, then score_mod(score, ...)
};

// A CUDA tensor map (CUtensorMap: 128 opaque bytes, 64-byte aligned), encoded on the host.
struct FlexjitTensorMap {
  uint64_t opaque[16];
} __attribute__((aligned(64)));

// The warp-specialized forward's third parameter: rank-4 tensor maps over q, k and v with
// dims (D, S, H, B) in the tensors' own strides (BHSD, BSHD, any), boxes of 64 head-dim
// elements (128 bytes, the 128-byte swizzle of sm90_tiles.h) by BLOCK_M (q) or
// FLEXJIT_FWD_WS_BLOCK_N (k, v) rows; rows past q_len / kv_len read as zeros.
struct FlexjitTensorMaps {
  struct FlexjitTensorMap q, k, v;
};

// ---- Backward (attention_bwd.cu) ---------------------------------------------------
// Three kernels per (dtype, head dim), in one module:
//   flexjit_attention_bwd_<dt>_d<D>_pre(FlexjitAttentionBwdParams, FlexjitModArgs):
//     delta[b, h, q] = sum_d dO * O, and dq_acc zeroed; grid (ceil(q_len / 8), Hq, B),
//     FLEXJIT_BWD_ROW_THREADS threads (a warp per row).
//   flexjit_attention_bwd_<dt>_d<D>(...): per CTA one kv tile of kv_rows rows of one
//     (batch, kv head): dk, dv for those rows (summed over the group's query heads) and
//     dq_acc += dS K through fp32 atomics; grid (ceil(kv_len / kv_rows), Hkv, B); kv_rows,
//     threads and dynamic shared memory as the variant table says (FLEXJIT_BWD_* below).
//   flexjit_attention_bwd_<dt>_d<D>_dq(...): dq = scale * dq_acc in the input dtype; grid as _pre.
// The block mask's q-major arrays (q_num_blocks, q_indices, full_*) list, per kv block,
// the q blocks to visit; q_block_size and kv_block_size must be multiples of 64.
#define FLEXJIT_BWD_THREADS 128
#define FLEXJIT_BWD_BLOCK_N 64
#define FLEXJIT_BWD_BLOCK_M 64
#define FLEXJIT_BWD_ROW_THREADS 256
#define FLEXJIT_BWD_SMEM_BYTES(head_dim)                                                           \
  ((2 * FLEXJIT_BWD_BLOCK_N + 4 * FLEXJIT_BWD_BLOCK_M) * (head_dim)*2 +                            \
   FLEXJIT_BWD_BLOCK_N * FLEXJIT_BWD_BLOCK_M * 2)

// sm_90a (attention_bwd_sm90.h): per CTA FLEXJIT_BWD_SM90_BLOCK_N kv rows (two warpgroups),
// so the block mask's kv_block_size must be a multiple of it; dS^T and two stages of lse
// and delta in shared memory beside the tiles.
#define FLEXJIT_BWD_SM90_THREADS 256
#define FLEXJIT_BWD_SM90_BLOCK_N 128
#define FLEXJIT_BWD_SM90_SMEM_BYTES(head_dim)                                                      \
  ((2 * FLEXJIT_BWD_SM90_BLOCK_N + 4 * FLEXJIT_BWD_BLOCK_M) * (head_dim)*2 +                       \
   FLEXJIT_BWD_SM90_BLOCK_N * FLEXJIT_BWD_BLOCK_M * 2 + 4 * FLEXJIT_BWD_BLOCK_M * 4)

struct FlexjitAttentionBwdParams {
  // Logical [B, H, S, D] tensors in the input dtype; strides in elements.
  const void* q;     // [B, Hq, q_len, D]
  const void* k;     // [B, Hkv, kv_len, D]
  const void* v;     // [B, Hkv, kv_len, D]
  const void* out;   // [B, Hq, q_len, D], the forward's output
  const void* d_out; // [B, Hq, q_len, D]
  void* dq;          // [B, Hq, q_len, D]
  void* dk;          // [B, Hkv, kv_len, D]
  void* dv;          // [B, Hkv, kv_len, D]
  const float* lse;  // [B, Hq, q_len], the forward's logsumexp (natural log)
  float* delta;      // [B, Hq, q_len] contiguous workspace
  float* dq_acc;     // [B, Hq, q_len, D] contiguous fp32 workspace

  int64_t q_stride_b, q_stride_h, q_stride_s;
  int64_t k_stride_b, k_stride_h, k_stride_s;
  int64_t v_stride_b, v_stride_h, v_stride_s;
  int64_t out_stride_b, out_stride_h, out_stride_s;
  int64_t dout_stride_b, dout_stride_h, dout_stride_s;
  int64_t dq_stride_b, dq_stride_h, dq_stride_s;
  int64_t dk_stride_b, dk_stride_h, dk_stride_s;
  int64_t dv_stride_b, dv_stride_h, dv_stride_s;
  int64_t lse_stride_b, lse_stride_h;

  // The block mask's q-major arrays (int32, device memory, contiguous):
  //   q_num_blocks [mask_B, mask_H, num_kv_blocks], q_indices [.., num_kv_blocks, num_q_blocks]
  const int32_t* q_num_blocks;
  const int32_t* q_indices;
  const int32_t* full_q_num_blocks;
  const int32_t* full_q_indices;

  int32_t B, Hq, Hkv, q_len, kv_len;
  int32_t mask_B, mask_H, num_q_blocks, num_kv_blocks;
  int32_t q_block_size, kv_block_size;
  int32_t has_mask;
  float scale;
};
