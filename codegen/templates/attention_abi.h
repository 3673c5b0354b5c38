// The ABI between host code and the attention kernel templates (attention_fwd.cu).
// Plain C layout; included by host C++ and by the CUDA-dialect templates.
//
// Forward kernels, one per (dtype, q/k head dim, v head dim) and arch:
//   extern "C" __global__ void flexjit_attention_fwd[_ws]_<dt>_d<Dqk>[_v<Dv>](
//       FlexjitAttentionParams params, FlexjitModArgs mod_args[, FlexjitTensorMaps maps]);
// Launch: grid (ceil(q_len / FLEXJIT_FWD_BLOCK_M), Hq, B), or for the persistent
// flexjit_attention_fwd_ws_persistent_* (min(work tiles, SMs), 1, 1) with work tiles
// ceil(q_len / FLEXJIT_FWD_BLOCK_M) * Hq * B; threads, kv tile and dynamic
// shared memory per kernel from flexjit_fwd_ws_shape / flexjit_fwd_sm80_shape (sm_90a v2:
// FLEXJIT_FWD_SM90_*): the variant table (codegen/Variants.cpp) states each kernel's launch
// from them, and the templates take their tiles from the same functions.
// Every size is above 48 KiB, so the host must first raise the limit with
//   cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes).
//
// Requirements the host checks before launching:
//   - q, k, v, out 16-byte aligned; every q/k/v/out stride a multiple of 8 elements;
//     the head-dim stride is 1.
//   - Hq % Hkv == 0 (GQA: query head h reads kv head h / (Hq / Hkv)).
//   - q_block_size % FLEXJIT_FWD_BLOCK_M == 0 and kv_block_size a multiple of the kernel's
//     kv tile (a kernel tile lies inside one block-mask tile); checked only when has_mask != 0.
#pragma once

#ifdef __cplusplus
#include <cstdint>
#else
#include <stdint.h>
#endif

// Kernel tile: BLOCK_M query rows per CTA; kv tiles per kernel (flexjit_fwd_*_shape below).
// The sm_80 kernel's numbers (tools/fwd_smoke reads them): FLEXJIT_FWD_WARPS warps of 32
// rows, kv tiles of FLEXJIT_FWD_BLOCK_N_D64 rows at head dim 64 and FLEXJIT_FWD_BLOCK_N_D128
// wider, FLEXJIT_FWD_STAGES stages. FLEXJIT_FWD_BLOCK_N is the largest kv tile of the sm_80
// and the v2 sm_90a kernels: the block-mask kv tile must be a multiple of it.
#define FLEXJIT_FWD_BLOCK_M 128
#define FLEXJIT_FWD_BLOCK_N_D64 64
#define FLEXJIT_FWD_BLOCK_N_D128 32
#define FLEXJIT_FWD_BLOCK_N 64
#define FLEXJIT_FWD_STAGES 2
#define FLEXJIT_FWD_WARPS 4

// sm_90a (Hopper) kernels instead: wgmma, two warpgroups of 64 rows (BLOCK_M 128 as above),
// BLOCK_N 64 for both head dims, 2 stages; D=64: 49152 bytes, D=128: 98304 bytes of shared
// memory; two CTAs per SM (so at most 128 registers per thread). Measured against kv tiles
// of 128 and one CTA per SM in bench/NOTES_fwd_kernel.md.
#define FLEXJIT_FWD_SM90_THREADS 256
#define FLEXJIT_FWD_SM90_BLOCK_N 64
#define FLEXJIT_FWD_SM90_STAGES 2
#define FLEXJIT_FWD_SM90_SMEM_BYTES(head_dim)                                                      \
  ((FLEXJIT_FWD_BLOCK_M + 2 * FLEXJIT_FWD_SM90_STAGES * FLEXJIT_FWD_SM90_BLOCK_N) * (head_dim) * 2)

// sm_90a warp-specialized kernels (attention_fwd_ws.cu), FlashAttention-3's shape: a
// producer warpgroup (one thread issues TMA copies of Q, K, V into a ring of `stages` K
// and V tiles completing on mbarriers) and two consumer warpgroups of 64 query rows each
// (BLOCK_M 128 as above) in ping-pong; kv tiles of `block_n` rows, so the block mask's
// kv_block must be a multiple of it. One CTA per SM. Shared memory: the Q tile
// [BLOCK_M][Dqk], the K stages [block_n][Dqk], the V stages [block_n][Dv] (each head dim
// rounded up to a tile width, flexjit_tile_dim), then the barriers and, in the persistent
// kernels, their work records (FLEXJIT_FWD_WS_BARRIER_BYTES). The kernels take a third
// parameter, FlexjitTensorMaps.
#define FLEXJIT_FWD_WS_THREADS 384
#define FLEXJIT_FWD_WS_BARRIER_BYTES 256
#define FLEXJIT_SMEM_PER_CTA_MAX 232448      // 227 KiB: sm_90's opt-in shared memory per CTA
#define FLEXJIT_SMEM_PER_CTA_MAX_SM80 166912 // 163 KiB: sm_80's

// The split-KV decode kernels (attention_decode_ws.cu, sm_90a): a producer warpgroup (one
// thread issues TMA copies) and one consumer warpgroup of FLEXJIT_DECODE_ROWS packed query
// rows -- the q_len rows of params.decode_heads query heads of one kv head -- over one range
// of the kv walk; grid (splits, Hkv * Hq / Hkv / decode_heads, B). With more than one split
// each writes its partial O and lse and the combine kernel
//   flexjit_attention_decode_combine_<dt>_d<Dqk>[_v<Dv>](params, mod_args)
// (a warp per (b, h, q) row, FLEXJIT_DECODE_COMBINE_THREADS threads, grid-stride) merges
// them into out and lse. Auto takes them for q_len <= FLEXJIT_DECODE_MAX_Q_LEN.
#define FLEXJIT_DECODE_ROWS 64
#define FLEXJIT_DECODE_THREADS 256
#define FLEXJIT_DECODE_COMBINE_THREADS 256
#define FLEXJIT_DECODE_MAX_Q_LEN 16

#ifdef __cplusplus
// The head dims a forward kernel can be built for: q and k of Dqk elements per row, v and
// out of Dv <= Dqk, both multiples of 16 up to 256. Which pairs have kernels is the variant
// table's (codegen/Variants.cpp) alone.
constexpr bool flexjit_fwd_head_dims(int dqk, int dv) {
  return dqk % 16 == 0 && dv % 16 == 0 && dv > 0 && dv <= dqk && dqk <= 256;
}
// A head dim's width in shared memory: whole 64-element (128-byte) swizzle atoms. Head dims
// 32, 80 and 96 are padded; the kernels never read the padding of their operands.
constexpr int flexjit_tile_dim(int d) {
  return (d + 63) / 64 * 64;
}

// A forward kernel's launch: threads, kv tile (block_n rows), pipeline depth, dynamic
// shared memory. stages == 0: no kernel for that head-dim pair.
struct FlexjitFwdShape {
  int threads, block_n, stages, smem_bytes;
};

// The warp-specialized forward: kv tiles of 128 rows, of 64 when a K and a V tile of 128
// would not leave two stages room (Dqk + Dv > 320); three stages for narrow tiles (Dqk 64)
// and 64-row ones where they fit, else two (measured at D=128: bench/NOTES_fwd_kernel.md).
constexpr FlexjitFwdShape flexjit_fwd_ws_shape(int dqk, int dv) {
  const int tqk = flexjit_tile_dim(dqk), tv = flexjit_tile_dim(dv);
  const int block_n = tqk + tv > 320 ? 64 : 128;
  auto bytes = [&](int stages) {
    return (FLEXJIT_FWD_BLOCK_M * tqk + stages * block_n * (tqk + tv)) * 2 +
           FLEXJIT_FWD_WS_BARRIER_BYTES;
  };
  int stages = tqk <= 64 || block_n == 64 ? 3 : 2;
  while (stages > 2 && bytes(stages) > FLEXJIT_SMEM_PER_CTA_MAX)
    --stages;
  if (!flexjit_fwd_head_dims(dqk, dv) || bytes(stages) > FLEXJIT_SMEM_PER_CTA_MAX)
    stages = 0;
  return {FLEXJIT_FWD_WS_THREADS, block_n, stages, stages ? bytes(stages) : 0};
}

// The decode kernel: kv tiles of 128 rows or 64 (below), up to four stages (the
// consumer's Q tile is a quarter of the forward's: the ring takes the room).
constexpr FlexjitFwdShape flexjit_decode_ws_shape(int dqk, int dv) {
  const int tqk = flexjit_tile_dim(dqk), tv = flexjit_tile_dim(dv);
  // 64-row tiles from Dqk + Dv = 320 on (the forward's from 320 up): at (192, 128), S and P
  // of 128 columns beside O and the mods' values spill past 255 registers.
  const int block_n = tqk + tv >= 320 ? 64 : 128;
  auto bytes = [&](int stages) {
    return (FLEXJIT_DECODE_ROWS * tqk + stages * block_n * (tqk + tv)) * 2 +
           FLEXJIT_FWD_WS_BARRIER_BYTES;
  };
  int stages = 4;
  while (stages > 2 && bytes(stages) > FLEXJIT_SMEM_PER_CTA_MAX)
    --stages;
  if (!flexjit_fwd_head_dims(dqk, dv) || bytes(stages) > FLEXJIT_SMEM_PER_CTA_MAX)
    stages = 0;
  return {FLEXJIT_DECODE_THREADS, block_n, stages, stages ? bytes(stages) : 0};
}

// The sm_80 (mma.sync) forward: 4 warps of 32 rows for tiles up to 128 wide, 8 warps of 16
// rows past that (O's registers); kv tiles of FLEXJIT_FWD_BLOCK_N_D64 rows at width 64,
// FLEXJIT_FWD_BLOCK_N_D128 wider; two stages.
constexpr FlexjitFwdShape flexjit_fwd_sm80_shape(int dqk, int dv) {
  const int tqk = flexjit_tile_dim(dqk), tv = flexjit_tile_dim(dv);
  const int warps = tqk <= 128 ? FLEXJIT_FWD_WARPS : 2 * FLEXJIT_FWD_WARPS;
  const int block_n = tqk <= 64 ? FLEXJIT_FWD_BLOCK_N_D64 : FLEXJIT_FWD_BLOCK_N_D128;
  const int bytes = (FLEXJIT_FWD_BLOCK_M * tqk + FLEXJIT_FWD_STAGES * block_n * (tqk + tv)) * 2;
  const bool ok = flexjit_fwd_head_dims(dqk, dv) && bytes <= FLEXJIT_SMEM_PER_CTA_MAX_SM80;
  return {32 * warps, block_n, ok ? FLEXJIT_FWD_STAGES : 0, ok ? bytes : 0};
}
#endif

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
  // The persistent forward (GridRule::WorkTiles, tile_scheduler.h): (b, h) planes per
  // section of its work-tile order, a multiple of Hq / Hkv, >= 1; and with a block mask the
  // q tiles heaviest first (ceil(q_len / FLEXJIT_FWD_BLOCK_M) tile indices, device memory), or
  // null: the last q tile first. Other kernels ignore both.
  int32_t sched_planes;
  const int32_t* q_tile_order;
  // The split-KV decode kernel (FLEXJIT_DECODE_*): query heads per CTA (a divisor of
  // Hq / Hkv; decode_heads * q_len <= FLEXJIT_DECODE_ROWS; 1 when the block mask has H > 1);
  // with more than one split, each split's O (f32, normalized by its own row sum) and lse,
  // o_part [splits][B][Hq][q_len][Dv] and lse_part [splits][B][Hq][q_len] (device workspace,
  // contiguous), which the combine kernel reads; decode_splits the number of splits.
  int32_t decode_heads, decode_splits;
  float* o_part;
  float* lse_part;
  // A KV cache (the sm_90a warp-specialized forward and decode kernels): kv_lens [B] (device, may
  // be null: every sequence has kv_len) bounds sequence b to its rows [0, kv_lens[b]), kv_lens[b]
  // <= kv_len; block_table [B, max_pages] (device, may be null) pages k and v: they are page pools
  // [num_pages, 1 << page_shift, Hkv, D] (the tensor maps' dims (D, page slots, Hkv, num_pages))
  // and the sequence's kv row j lies in page block_table[b * max_pages + (j >> page_shift)], slot j
  // % page size; kv_len = max_pages << page_shift. A kernel that finds a length beyond kv_len or a
  // page outside the pool reads page 0 instead (never out of bounds) and sets its bit
  // (FLEXJIT_DEVICE_ERROR_*) in *device_error (host-mapped memory the host reads, never null
  // for a decode launch or one with a KV cache).
  const int32_t* kv_lens;
  const int32_t* block_table;
  int32_t max_pages, page_shift, num_pages;
  uint32_t* device_error;
};
// A paged KV cache's page sizes: powers of two in [MIN, MAX] (a kernel issues at most its kv
// tile / MIN boxes per tile: kv_source.h's KvCache).
#define FLEXJIT_PAGE_SIZE_MIN 16
#define FLEXJIT_PAGE_SIZE_MAX 256
#define FLEXJIT_DEVICE_ERROR_KV_LEN 1u // kv_lens[b] < 0 or > kv_len (the cache's capacity)
#define FLEXJIT_DEVICE_ERROR_PAGE 2u   // a block-table entry outside [0, num_pages)

// ---- Appending to a KV cache (kv_append.cu) --------------------------------------------
//   flexjit_kv_append(FlexjitKvAppendParams, FlexjitModArgs): token t < n_new of sequence b,
//     head h: k_new / v_new row (b, h, t) to the cache's position kv_lens[b] + t (through the
//     block table when paged); 16 bytes per thread, grid-stride (GridRule::Elements).
//   flexjit_kv_advance(...): kv_lens[b] += n_new, launched after it (stream order: every copy
//     read the old length). A position past the capacity or a page outside the pool is not
//     written and sets its FLEXJIT_DEVICE_ERROR_* bit; such a sequence's length stays.
struct FlexjitKvAppendParams {
  const void* k_new; // [B, Hkv, n_new, Dk], element strides below (D contiguous)
  const void* v_new; // [B, Hkv, n_new, Dv]
  void* k_cache;     // [B, Hkv, capacity, Dk] or a page pool [num_pages, page_size, Hkv, Dk]
  void* v_cache;
  int32_t* kv_lens;           // [B], device
  const int32_t* block_table; // [B, max_pages] or null (unpaged)
  uint32_t* device_error;
  int64_t kn_stride_b, kn_stride_h, kn_stride_s;
  int64_t vn_stride_b, vn_stride_h, vn_stride_s;
  // The cache's strides: unpaged (b, h, position); paged (page, slot, h).
  int64_t kc_stride_0, kc_stride_1, kc_stride_2;
  int64_t vc_stride_0, vc_stride_1, vc_stride_2;
  int32_t B, Hkv, n_new, dk, dv, capacity;
  int32_t max_pages, page_shift, num_pages;
};

// ---- Merging two partial attention results (merge_attention.cu) -------------------------
//   flexjit_merge_attention(FlexjitMergeParams, FlexjitModArgs): row (b, h, s) of out and lse
//     from those of a and b (attention_common.h's lse_weight / merged_lse), a warp per row,
//     16 bytes of the head dim per lane (D a multiple of 8, at most FLEXJIT_MERGE_MAX_HEAD_DIM),
//     grid-stride (GridRule::Elements over rows x 32). out / lse may be a's or b's (in place).
#define FLEXJIT_MERGE_MAX_HEAD_DIM 256
struct FlexjitMergeParams {
  const void* out_a; // [B, H, S, D], element strides below (D contiguous)
  const void* out_b;
  void* out;
  const float* lse_a; // [B, H, S], stride 1 over S
  const float* lse_b;
  float* lse;
  int64_t oa_stride_b, oa_stride_h, oa_stride_s;
  int64_t ob_stride_b, ob_stride_h, ob_stride_s;
  int64_t o_stride_b, o_stride_h, o_stride_s;
  int64_t la_stride_b, la_stride_h, lb_stride_b, lb_stride_h, l_stride_b, l_stride_h;
  int32_t B, H, S, D;
  int32_t bf16; // the outs' dtype: bf16 (1) or f16 (0)
};

// A CUDA tensor map (CUtensorMap: 128 opaque bytes, 64-byte aligned), encoded on the host.
struct FlexjitTensorMap {
  uint64_t opaque[16];
} __attribute__((aligned(64)));

// The warp-specialized forward's third parameter: rank-4 tensor maps over q, k and v with
// dims (D, S, H, B) in the tensors' own strides (BHSD, BSHD, any), boxes of 64 head-dim
// elements (128 bytes, the 128-byte swizzle of sm90_tiles.h) by BLOCK_M (q) or
// FLEXJIT_FWD_WS_BLOCK_N (k, v) rows; rows past q_len / kv_len read as zeros.
// The decode kernel's q map is rank 5 instead, dims (D, heads of a group, S, Hkv, B), with
// boxes of 64 x decode_heads x q_len: a CTA's packed rows, row = q * decode_heads + head.
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
  ((2 * FLEXJIT_BWD_BLOCK_N + 4 * FLEXJIT_BWD_BLOCK_M) * (head_dim) * 2 +                          \
   FLEXJIT_BWD_BLOCK_N * FLEXJIT_BWD_BLOCK_M * 2)

// sm_90a (attention_bwd_sm90.h): per CTA FLEXJIT_BWD_SM90_BLOCK_N kv rows (two warpgroups),
// so the block mask's kv_block_size must be a multiple of it; dS^T and two stages of lse
// and delta in shared memory beside the tiles.
#define FLEXJIT_BWD_SM90_THREADS 256
#define FLEXJIT_BWD_SM90_BLOCK_N 128
#define FLEXJIT_BWD_SM90_SMEM_BYTES(head_dim)                                                      \
  ((2 * FLEXJIT_BWD_SM90_BLOCK_N + 4 * FLEXJIT_BWD_BLOCK_M) * (head_dim) * 2 +                     \
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
