// The block schedule (../shared/DESIGN.md's BlockSchedule policy): the tiles of kRows rows
// that one tile of the other dimension visits through a block mask -- the partial blocks
// first (mask_mod per element), then the full ones (no mask call); without a block mask
// every tile, as full. `sub` kernel tiles per block-mask block; tile t is row
// (index(t / sub) * sub + t % sub) * kRows. One class for both walks; the Lists policy says
// which of the mask's arrays it reads:
//   KvMajor (the forward): a q tile's kv blocks, kv_num_blocks / kv_indices / full_*;
//   QMajor (the backward): a kv tile's q blocks, q_num_blocks / q_indices / full_*.
#pragma once

#include "codegen/templates/attention_abi.h"
#include "codegen/templates/attention_common.h"

namespace flexjit::dev {

// The forward's lists: row (b, h, q block), kv blocks.
struct KvMajor {
  const FlexjitAttentionParams& p;
  __device__ __forceinline__ const int32_t* num() const { return p.kv_num_blocks; }
  __device__ __forceinline__ const int32_t* indices() const { return p.kv_indices; }
  __device__ __forceinline__ const int32_t* full_num() const { return p.full_kv_num_blocks; }
  __device__ __forceinline__ const int32_t* full_indices() const { return p.full_kv_indices; }
  __device__ __forceinline__ int rows_per_plane() const { return p.num_q_blocks; }
  __device__ __forceinline__ int row_length() const { return p.num_kv_blocks; }
  __device__ __forceinline__ int block_size() const { return p.kv_block_size; }
  __device__ __forceinline__ int len() const { return p.kv_len; }
  // The q block of the q tile starting at row `pos`.
  __device__ __forceinline__ int block_of(int pos) const { return pos / p.q_block_size; }
};
// The backward's lists: row (b, h, kv block), q blocks.
struct QMajor {
  const FlexjitAttentionBwdParams& p;
  __device__ __forceinline__ const int32_t* num() const { return p.q_num_blocks; }
  __device__ __forceinline__ const int32_t* indices() const { return p.q_indices; }
  __device__ __forceinline__ const int32_t* full_num() const { return p.full_q_num_blocks; }
  __device__ __forceinline__ const int32_t* full_indices() const { return p.full_q_indices; }
  __device__ __forceinline__ int rows_per_plane() const { return p.num_kv_blocks; }
  __device__ __forceinline__ int row_length() const { return p.num_q_blocks; }
  __device__ __forceinline__ int block_size() const { return p.q_block_size; }
  __device__ __forceinline__ int len() const { return p.q_len; }
  // The kernel's kv tiles are the mask's kv blocks: `pos` is the block.
  __device__ __forceinline__ int block_of(int pos) const { return pos; }
};

template <int kRows, class Lists> struct BlockSchedule {
  Lists lists;
  int n_part = 0, n_full = 0, sub = 1;
  int64_t list = 0; // this row of indices / full_indices
  int n_blocks = 0, n_tiles = 0, n_part_tiles = 0;

  // The row for batch b, query head h and the tile of the other dimension at `pos`
  // (Lists::block_of). Without a mask the walk covers `len` rows (-1: Lists::len(); the
  // decode kernel's per-sequence kv length).
  template <class Params>
  __device__ __forceinline__ BlockSchedule(const Params& p, int b, int h, int pos, int len = -1)
      : lists{p} {
    if (p.has_mask) {
      const int mb = p.mask_B == 1 ? 0 : b, mh = p.mask_H == 1 ? 0 : h;
      const int64_t row =
          (static_cast<int64_t>(mb) * p.mask_H + mh) * lists.rows_per_plane() + lists.block_of(pos);
      n_part = lists.num()[row];
      n_full = lists.full_num() ? lists.full_num()[row] : 0;
      list = row * lists.row_length();
      sub = lists.block_size() / kRows;
    } else {
      n_full = ((len < 0 ? lists.len() : len) + kRows - 1) / kRows;
    }
    n_blocks = n_part + n_full;
    n_tiles = n_blocks * sub;
    n_part_tiles = n_part * sub;
  }

  // The mask's index of block blk < n_blocks (without a mask: blk); kAhead (the forward's
  // read one block ahead): blk may also be n_blocks, which yields blk. (The bound test only
  // where it can fail: the backward's code is the same as before this class, a compare's
  // operands commuted.)
  template <bool kAhead = false> __device__ __forceinline__ int index(int blk) const {
    int idx = blk;
    if (blk < n_part)
      idx = lists.indices()[list + blk];
    else if constexpr (kAhead) {
      if (lists.p.has_mask && blk < n_blocks)
        idx = lists.full_indices()[list + blk - n_part];
    } else if (lists.p.has_mask) {
      idx = lists.full_indices()[list + blk - n_part];
    }
    return idx;
  }
  // The first row of tile t < n_tiles, in any order.
  __device__ __forceinline__ int start(int t) const {
    const int blk = t / sub, s = t % sub;
    return (index(blk) * sub + s) * kRows;
  }
};

// The forward's walk in order: next_start() yields the tiles' first rows for t = 0, 1, ...;
// the index of the next mask block is read one block ahead, so its latency never stalls a
// prefetch.
template <int kN> struct KvTiles : BlockSchedule<kN, KvMajor> {
  using Base = BlockSchedule<kN, KvMajor>;
  int blk_next = 0, s_next = 0, idx_next = 0, idx_after = 0;

  __device__ __forceinline__ KvTiles(const FlexjitAttentionParams& p, int b, int h, int q_start)
      : Base(p, b, h, q_start) {
    if (this->n_tiles > 0) {
      idx_next = this->template index<true>(0);
      idx_after = this->template index<true>(1);
    }
  }
  // The first kv row of tile t; call for t = 0, 1, 2, ... < n_tiles in order.
  __device__ __forceinline__ int next_start(int t) {
    if (t > 0 && ++s_next == this->sub) {
      s_next = 0;
      ++blk_next;
      idx_next = idx_after;
      idx_after = this->template index<true>(blk_next + 1);
    }
    return (idx_next * this->sub + s_next) * kN;
  }
};

} // namespace flexjit::dev
