// Internal to blockmask: the GPU side of create_block_mask and create_mask.
#pragma once

#include <cstdint>
#include <vector>

#include "flexjit/blockmask/BlockMask.h"
#include "flexjit/compiler/PreparedMods.h"

namespace flexjit {

// Whether work for a mask runs on the GPU for `device` (Auto: CUDA available
// and every buffer the prepared mask reads is device memory).
bool runs_on_cuda(Device device, const PreparedMods& mask, const Bindings& bindings);

// A mask's shape fields (and mod) without arrays, after the checks of create_block_mask
// (shared by the CPU and GPU builders).
BlockMask block_mask_shape(int B, int H, int q_len, int kv_len, int q_block, int kv_block,
                           MaskMod mod);

// What block_mask_cuda checks before any launch, callable on its own (and first) by
// create_block_mask: the device memory it needs (tile states, q-block work, the index arrays;
// Error naming the bytes needed and free). B, H: the mask's planes; Bc, Hc: those it reads.
void check_block_mask_cuda(int B, int H, int Bc, int Hc, int q_len, int kv_len, int q_block,
                           int kv_block);

// The block mask of `mask` by the classify template (codegen/templates/blockmask_abi.h): its
// index arrays built in device memory, where they stay as the mask's device copy
// (BlockMaskDeviceCopy::Resident), and copied into its host vectors when `host_arrays`. Bc and
// Hc are the planes the mask depends on (B or 1, H or 1), broadcast to B and H on the device.
// Returns once the kernels have finished. The caller has run check_block_mask_cuda.
BlockMask block_mask_cuda(const PreparedMods& mask, MaskMod mod, int B, int H, int Bc, int Hc,
                          int q_len, int kv_len, int q_block, int kv_block,
                          const Bindings& bindings, bool host_arrays);

// The device memory create_mask_cuda needs (Error naming bytes needed and free).
void check_create_mask_cuda(int B, int H, int q_len, int kv_len);

// Dense [B, H, q_len, kv_len] bytes by the create_mask template.
std::vector<uint8_t> create_mask_cuda(const PreparedMods& mask, int B, int H, int q_len, int kv_len,
                                      const Bindings& bindings);

} // namespace flexjit
