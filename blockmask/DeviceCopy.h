// Internal to blockmask and attention: a BlockMask's index arrays in device memory.
#pragma once

#include <cstdint>

#include "flexjit/blockmask/BlockMask.h"

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
};

// The device arrays of `mask` in the current context, uploading them if needed (once per
// mask and context; again only when its host arrays were reallocated): the forward's
// (kv-major) and, with `backward`, the q-major ones too (otherwise null). Needs CUDA.
BlockMaskDeviceArrays device_arrays(const BlockMask& mask, bool backward = false);

// How many uploads the mask's device copy made (for tests).
int device_copy_uploads(const BlockMask& mask);

} // namespace flexjit
