// The ABI between the GPU block-mask builder's host side (blockmask/BlockMaskGpu.cpp) and its
// kernels (classify.cu). Plain C layout; included by host C++ and by the CUDA-dialect template.
//
//   flexjit_block_classify(FlexjitModArgs args, FlexjitBlockMaskParams p, flexjit::iv::Program
//       program): a CTA of FLEXJIT_BLOCK_MASK_THREADS threads per row (bc, hc, q block) of
//       tiles of the classified planes [Bc, Hc], grid-stride (GridRule::Elements over rows x
//       threads). Each tile's state: the interval program first (compiler/IntervalRules.h),
//       the mask_mod point by point on the tiles it leaves undecided (a warp per tile, early
//       exit once both a true and a false were seen); then the row's q-major index arrays,
//       written to every (b, h) plane the classified one broadcasts to, and its tile count
//       added to q_block_work[q block].
//   flexjit_block_mask_columns(p), after it: a warp per column (bc, hc, kv block), grid-stride
//       (GridRule::Elements over columns x 32): the kv-major (backward) arrays; then, per q tile
//       of q_tile_rows rows, the forward's heaviest-first order (q_tile_order).
// Layouts as BlockMask's (blockmask/BlockMask.h): counts [B, H, n], index rows [B, H, n, m]
// ascending, padded with 0.
#pragma once

#ifdef __cplusplus
#include <cstdint>
#else
#include <stdint.h>
#endif

#define FLEXJIT_BLOCK_MASK_THREADS 256

struct FlexjitBlockMaskParams {
  int32_t Bc, Hc; // the classified planes: the (b, h) the mask reads (B or 1, H or 1)
  int32_t B, H;   // the planes written, broadcast from the classified ones
  int32_t q_len, kv_len, q_block, kv_block, num_q_blocks, num_kv_blocks;
  // The forward's q tiles (q_tile_rows rows, a divisor of q_block) heaviest first: by the
  // partial plus full tiles of their q block, ties the later tile first. q_tiles 0: no order.
  int32_t q_tiles, q_tile_rows;
  uint8_t* states;                  // [Bc, Hc, nq, nkv]: 0 empty, 1 partial, 2 full
  unsigned long long* q_block_work; // [nq], zeroed before the launch
  int32_t* kv_num_blocks;           // [B, H, nq]
  int32_t* kv_indices;              // [B, H, nq, nkv]
  int32_t* full_kv_num_blocks;
  int32_t* full_kv_indices;
  int32_t* q_num_blocks; // [B, H, nkv]
  int32_t* q_indices;    // [B, H, nkv, nq]
  int32_t* full_q_num_blocks;
  int32_t* full_q_indices;
  int32_t* q_tile_order; // [q_tiles]
};
