// BlockMask: which (q block, kv block) tiles are empty, partial or full, in
// PyTorch's layout and with its semantics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flexjit/compiler/Signature.h"
#include "flexjit/dsl/Mods.h"

namespace flexjit {

inline constexpr int kDefaultBlockSize = 128;

// Where a BlockMask keeps its index arrays' device copy (blockmask/DeviceCopy.h, made by
// the attention calls on first GPU use, thread-safe, freed with the mask). A copied
// BlockMask starts without one; a mask whose arrays are changed in place after its first
// GPU use must call reset(). A mask built on the GPU holds its arrays there from the start
// (Resident: immutable, shared by its copies, freed with the last).
class BlockMaskDeviceCopy {
public:
  struct Resident; // blockmask/DeviceCopy.h
  BlockMaskDeviceCopy();
  BlockMaskDeviceCopy(const BlockMaskDeviceCopy&);
  BlockMaskDeviceCopy& operator=(const BlockMaskDeviceCopy&);
  BlockMaskDeviceCopy(BlockMaskDeviceCopy&&) noexcept = default;
  BlockMaskDeviceCopy& operator=(BlockMaskDeviceCopy&&) noexcept = default;
  ~BlockMaskDeviceCopy();
  void reset();

  struct State; // blockmask/DeviceCopy.cpp
  State* state() const { return state_.get(); }
  const Resident* resident() const { return resident_.get(); }
  void set_resident(std::shared_ptr<const Resident> resident) { resident_ = std::move(resident); }

private:
  std::shared_ptr<State> state_;
  std::shared_ptr<const Resident> resident_;
};

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
  // The arrays on the GPU, made by the attention calls on first use.
  BlockMaskDeviceCopy device_copy;

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

  // Whether the index arrays above live in device memory only (create_block_mask on the GPU
  // with BlockMaskOptions::host_arrays false): the vectors are empty, flex_attention reads the
  // device arrays, and the methods above copy them back for their answer.
  bool arrays_on_device_only() const;
  // Copies device-only index arrays into the vectors (synchronous; nothing to do otherwise).
  void download_arrays();
};

struct BlockMaskOptions {
  int q_block = kDefaultBlockSize;
  int kv_block = kDefaultBlockSize;
  Bindings bindings;
  // Where the tiles are classified. Host: the CPU builder. Cuda: the
  // JIT-compiled classify kernel (every buffer the mask reads must then be
  // device memory). Auto: Cuda when cuda_available() and every buffer is
  // device memory, else Host.
  Device device = Device::Host;
  // GPU builder only: false leaves the index arrays in device memory alone, where the GPU
  // built them and flex_attention reads them (torch's BlockMask keeps its tensors on the
  // device too); the host vectors stay empty until download_arrays(). True (the default)
  // also copies them into the host vectors.
  bool host_arrays = true;
};

// The memory a BlockMask of this shape needs, known before building it. For
// S = 1M with 128 x 128 blocks and B = H = 1: 1.0 GiB of index arrays, 64 MiB of
// tile states, a 512 MiB device copy; all three grow with B * H * (S / 128)^2.
// Every count saturates at INT64_MAX instead of overflowing.
struct BlockMaskBytes {
  int64_t arrays = 0;      // the eight index arrays of the BlockMask (host memory)
  int64_t states = 0;      // the tile states while building (host; and device for the GPU
                           // builder), at most one byte per tile of [B, H, nq, nkv]
  int64_t device_copy = 0; // the four forward arrays flex_attention uploads on first use
  // Peak host memory of create_block_mask.
  int64_t build_host() const;
};
// Throws Error for the shapes and block sizes create_block_mask rejects.
BlockMaskBytes block_mask_bytes(int B, int H, int q_len, int kv_len,
                                const BlockMaskOptions& options = {});

// B and H may be 1 when the mask does not depend on them (broadcast).
// Memory is checked before anything is allocated: an Error names the bytes
// needed (block_mask_bytes) and those available, on the device first for the
// GPU builder, then on the host (MemAvailable and the cgroup's limit).
// CPU builder: interval analysis first, the interpreter only on tiles it leaves
// undecided. GPU builder (codegen/templates/blockmask_abi.h): the interval
// analysis' rules per tile, the mask_mod point by point on the tiles they leave undecided
// (a warp per tile, early exit once both a true and a false were seen), then the index
// arrays, all in device memory; copied into the host vectors unless options.host_arrays is
// false.
BlockMask create_block_mask(const MaskMod& mod, int B, int H, int q_len, int kv_len,
                            const BlockMaskOptions& options = {});

// Dense [B, H, q_len, kv_len] materialization (1 = attend), on the CPU, or
// on the GPU (the create_mask template; buffers in device memory) and copied
// back when `device` is Cuda (Auto: as for BlockMaskOptions::device). Memory is
// checked as for create_block_mask; at most 16 GiB in any case.
std::vector<uint8_t> create_mask(const MaskMod& mod, int B, int H, int q_len, int kv_len,
                                 const Bindings& bindings = {}, Device device = Device::Host);

// Builds the index arrays from per-tile states [B, H, nq, nkv] (0/1/2); shared
// by the CPU builder and the GPU classifier's host side.
BlockMask block_mask_from_states(const std::vector<uint8_t>& states, int B, int H, int q_len,
                                 int kv_len, int q_block, int kv_block, MaskMod mod);

} // namespace flexjit
