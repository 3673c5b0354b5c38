// Internal to blockmask: the GPU side of create_block_mask and create_mask.
#pragma once

#include <cstdint>
#include <vector>

#include "flexjit/compiler/PreparedMods.h"

namespace flexjit {

// Whether work for a mask runs on the GPU for `device` (Auto: CUDA available
// and every buffer the prepared mask reads is device memory).
bool runs_on_cuda(Device device, const PreparedMods& mask, const Bindings& bindings);

// What classify_tiles_cuda checks before any launch, callable on its own (and
// first) by create_block_mask: the grid limits (Error, without a CUDA call), then
// the device memory its tile states need (Error naming bytes needed and free).
void check_classify_tiles_cuda(int B, int H, int q_len, int kv_len, int q_block, int kv_block);

// Tile states [B, H, nq, nkv] (0 empty, 1 partial, 2 full) by the classify
// template; B and H are the ones the mask depends on (no broadcast here).
std::vector<uint8_t> classify_tiles_cuda(const PreparedMods& mask, int B, int H, int q_len,
                                         int kv_len, int q_block, int kv_block,
                                         const Bindings& bindings);

// The device memory create_mask_cuda needs (Error naming bytes needed and free).
void check_create_mask_cuda(int B, int H, int q_len, int kv_len);

// Dense [B, H, q_len, kv_len] bytes by the create_mask template.
std::vector<uint8_t> create_mask_cuda(const PreparedMods& mask, int B, int H, int q_len, int kv_len,
                                      const Bindings& bindings);

} // namespace flexjit
