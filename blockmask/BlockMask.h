// BlockMask: which (q block, kv block) tiles are empty, partial or full, in
// PyTorch's layout and with its semantics.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/Signature.h"
#include "dsl/Mods.h"

namespace flexjit {

inline constexpr int kDefaultBlockSize = 128;

// All index arrays are int32, row-major, B and H of the mask (1 broadcasts).
// Each index row lists its blocks ascending, padded with 0 after the count.
// A ragged last block's state considers only its in-range elements.
struct BlockMask {
  int B = 1, H = 1;
  int q_len = 0, kv_len = 0;
  int q_block = kDefaultBlockSize, kv_block = kDefaultBlockSize;
  int num_q_blocks = 0, num_kv_blocks = 0;

  // q-major (forward): per q block, the partial kv blocks and the full ones.
  std::vector<int32_t> kv_num_blocks;      // [B, H, num_q_blocks]
  std::vector<int32_t> kv_indices;         // [B, H, num_q_blocks, num_kv_blocks]
  std::vector<int32_t> full_kv_num_blocks; // [B, H, num_q_blocks]
  std::vector<int32_t> full_kv_indices;    // [B, H, num_q_blocks, num_kv_blocks]
  // kv-major transposes (backward): per kv block, the partial / full q blocks.
  std::vector<int32_t> q_num_blocks;      // [B, H, num_kv_blocks]
  std::vector<int32_t> q_indices;         // [B, H, num_kv_blocks, num_q_blocks]
  std::vector<int32_t> full_q_num_blocks; // [B, H, num_kv_blocks]
  std::vector<int32_t> full_q_indices;    // [B, H, num_kv_blocks, num_q_blocks]

  MaskMod mask_mod;

  // Percentage of tiles that are empty (torch's BlockMask.sparsity()).
  double sparsity() const;
  // Torch's picture: "██" full, "░░" partial, "  " empty, summarized to at
  // most grid x grid cells (every tile when grid <= 0), for at most `limit`
  // (b, h) pairs.
  std::string to_string(int grid = 20, int limit = 4) const;
  // 0 empty, 1 partial, 2 full, for tile (b, h, qb, kb) (b, h broadcast).
  int tile_state(int b, int h, int qb, int kb) const;
  // Every tile's state, [B, H, num_q_blocks, num_kv_blocks] (0/1/2): torch's
  // to_dense() with full tiles marked 2.
  std::vector<uint8_t> states() const;
};

struct BlockMaskOptions {
  int q_block = kDefaultBlockSize;
  int kv_block = kDefaultBlockSize;
  Bindings bindings;
};

// CPU builder: interval analysis first, the interpreter only on tiles it leaves
// undecided. B and H may be 1 when the mask does not depend on them.
BlockMask create_block_mask(const MaskMod& mod, int B, int H, int q_len, int kv_len,
                            const BlockMaskOptions& options = {});

// Dense [B, H, q_len, kv_len] materialization (1 = attend), on the CPU.
std::vector<uint8_t> create_mask(const MaskMod& mod, int B, int H, int q_len, int kv_len,
                                 const Bindings& bindings = {});

// Builds the index arrays from per-tile states [B, H, nq, nkv] (0/1/2); shared
// by the CPU builder and the GPU classifier's host side.
BlockMask block_mask_from_states(const std::vector<uint8_t>& states, int B, int H, int q_len,
                                 int kv_len, int q_block, int kv_block, MaskMod mod);

} // namespace flexjit
