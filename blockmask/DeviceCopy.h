// Internal to blockmask and attention: a BlockMask's index arrays in device memory.
#pragma once

#include <cstdint>

#include "flexjit/blockmask/BlockMask.h"
#include "flexjit/runtime/Context.h"
#include "flexjit/runtime/Runtime.h"

namespace flexjit {

struct BlockMaskDeviceArrays {
  const int32_t* kv_num_blocks = nullptr;
  const int32_t* kv_indices = nullptr;
  const int32_t* full_kv_num_blocks = nullptr;
  const int32_t* full_kv_indices = nullptr;
  const int32_t* q_num_blocks = nullptr; // q-major: the backward's
  const int32_t* q_indices = nullptr;
  const int32_t* full_q_num_blocks = nullptr;
  const int32_t* full_q_indices = nullptr;
  // The forward's q tiles of q_tile_rows rows (device_arrays), heaviest first: by the partial
  // plus full kv blocks of their q block, summed over the mask's (b, h) rows; ties, the later
  // tile first (causal: every tile in descending order). Null when q_tile_rows does not
  // divide the mask's q_block.
  const int32_t* q_tile_order = nullptr;
};

// A mask's index arrays as the GPU builder made them (blockmask/BlockMaskGpu.cpp), in one
// device buffer of `context`; the forward's q-tile order for tiles of q_tile_rows rows (0:
// none).
struct BlockMaskDeviceCopy::Resident {
  CUcontext context = nullptr;
  DeviceBuffer buffer;
  BlockMaskDeviceArrays arrays;
  int q_tile_rows = 0;
};

// The q tiles of `mask` (q_tile_rows rows each, a divisor of its q_block) in the order
// above: ceil(q_len / q_tile_rows) tile indices.
std::vector<int32_t> heaviest_q_tiles_first(const BlockMask& mask, int q_tile_rows);

// The device arrays of `mask` in the current context: a GPU-built mask's own while its host
// vectors are empty (Error in another context), else uploaded if needed (once per
// mask and context; again only when its host arrays were reallocated): the forward's
// (kv-major, with the q-tile order for tiles of q_tile_rows rows) and, with `backward`, the
// q-major ones too (otherwise null). Needs CUDA.
BlockMaskDeviceArrays device_arrays(const BlockMask& mask, bool backward, int q_tile_rows);

// How many uploads the mask's device copy made (for tests).
int device_copy_uploads(const BlockMask& mask);

} // namespace flexjit
