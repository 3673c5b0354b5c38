// The tile schedulers of the forward (../shared/DESIGN.md's TileScheduler policy): which work
// tiles -- (q tile, query head, batch) -- a CTA computes, and in which order.
//   grid_work (one tile per CTA): the grid is (ceil(q_len / kM), Hq, B) and CTA (x, y, z)
//     takes q tile nctaid.x - 1 - x (the last q tile, the heaviest under a causal mask,
//     first), head y, batch z.
//   PersistentTiles: a grid of min(tiles, SMs) CTAs; CTA c takes work tiles c, c + nctaid.x,
//     c + 2 nctaid.x, ... of one order. The (b, h) planes go in sections of p.sched_planes
//     (whole GQA groups whose K and V fit in half the L2, chosen by the host); within a
//     section the heaviest q tile of every plane first, then the next, so each wave of the
//     grid starts the heaviest tiles left: p.q_tile_order (the block mask's kv blocks per q
//     block, blockmask/DeviceCopy.h) or, without one, the last q tile first. A work tile is a whole
//     kv walk today; a split-KV schedule would add the kv range to FwdWork.
#pragma once

#include "codegen/templates/attention_abi.h"
#include "codegen/templates/attention_common.h"
#include "codegen/templates/block_schedule.h"

namespace flexjit::dev {

struct FwdWork {
  int q_tile, h, b;
};

__device__ __forceinline__ FwdWork grid_work() {
  return {static_cast<int>(__nvvm_read_ptx_sreg_nctaid_x()) - 1 - block_x(), block_y(), block_z()};
}

template <int kM> struct PersistentTiles {
  // Nothing is held: the producer computes each work tile's coordinates from the params (its
  // registers are few: setmaxnreg, attention_fwd_ws.cu).
  static __device__ __forceinline__ int n_q_tiles(const FlexjitAttentionParams& p) {
    return (p.q_len + kM - 1) / kM;
  }
  static __device__ __forceinline__ int total(const FlexjitAttentionParams& p) {
    return n_q_tiles(p) * p.B * p.Hq;
  }

  // Work tile w < total of the order above.
  static __device__ __forceinline__ FwdWork work(const FlexjitAttentionParams& p, int w) {
    const int q_tiles = n_q_tiles(p), planes = p.B * p.Hq, section_planes = p.sched_planes;
    const int per_section = section_planes * q_tiles;
    const int section = w / per_section, r = w - section * per_section;
    const int first_plane = section * section_planes;
    const int here = min_i(section_planes, planes - first_plane); // the last may be short
    const int j = r / here, plane = first_plane + r - j * here;
    const int b = plane / p.Hq;
    return {p.q_tile_order ? p.q_tile_order[j] : q_tiles - 1 - j, plane - b * p.Hq, b};
  }
};

// How the producer of the warp-specialized forward tells the consumers their next work tile
// and its kv walk, in shared memory at `base` (16-byte aligned, kBytes; a one-tile kernel
// posts its one tile into record 0 and never posts live = 0):
//   two work records {q_tile, h, b, live, n_tiles, n_part_tiles, kv_len, ragged_last}, one
//   per parity of
//     Q's fill. The producer posts work tile n into record n & 1 after Q's empty barrier (so
//     every consumer is done with tile n - 2, the record's last user) and before it arms
//     Q's full barrier, whose completion makes the record visible; after its last tile it
//     posts live = 0 and arrives on Q's full barrier without copies;
//   a slot per ring stage with the first kv row of the tile in it, posted after the stage's
//     empty barrier and before its full barrier is armed (TmaRing::produce_k).
// The consumers read the fields with volatile loads (PostedTile), most where they use them:
// the kv walk's state and the work tile's arithmetic stay out of their registers during the
// kv loop (the producer's KvTiles is the only copy: session 14's posted walk took the
// composed pair's spills at Dv = 256 from 96 B to 0, bench/NOTES_fwd_kernel.md).
struct WorkRecords {
  static constexpr u32 kRecordBytes = 32;
  template <int kStages> static constexpr u32 kBytes = 2 * kRecordBytes + 4 * kStages;
  u32 base;

  __device__ __forceinline__ void post(u32 phase, FwdWork w, int n_tiles, int n_part) const {
    const u32 at = base + kRecordBytes * phase;
    asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};" ::"r"(at), "r"(w.q_tile), "r"(w.h),
                 "r"(w.b), "r"(1)
                 : "memory");
    asm volatile("st.shared.v2.u32 [%0], {%1, %2};" ::"r"(at + 16), "r"(n_tiles), "r"(n_part)
                 : "memory");
  }
  // The decode kernel's sequence kv length (field 6).
  __device__ __forceinline__ void post_kv_len(u32 phase, int kv_len) const {
    asm volatile("st.shared.u32 [%0], %1;" ::"r"(base + kRecordBytes * phase + 24), "r"(kv_len)
                 : "memory");
  }
  // The forward's: the sequence kv length (field 6) and whether the walk's last tile is a KV
  // cache's ragged one (field 7: kv_source.h's CacheOrder), which the consumers read after the
  // kv loop, when the tile's stage slot may hold the next work tile's row already.
  __device__ __forceinline__ void post_sequence(u32 phase, int kv_len, bool ragged_last) const {
    asm volatile("st.shared.v2.u32 [%0], {%1, %2};" ::"r"(base + kRecordBytes * phase + 24),
                 "r"(kv_len), "r"(ragged_last ? 1 : 0)
                 : "memory");
  }
  __device__ __forceinline__ void post_end(u32 phase) const {
    asm volatile("st.shared.u32 [%0], %1;" ::"r"(base + kRecordBytes * phase + 12), "r"(0)
                 : "memory");
  }
  __device__ __forceinline__ void post_kv(int stage, int kv0) const {
    asm volatile("st.shared.u32 [%0], %1;" ::"r"(base + 2 * kRecordBytes + 4 * stage), "r"(kv0)
                 : "memory");
  }
  __device__ __forceinline__ int load(u32 at) const {
    int v;
    asm volatile("ld.volatile.shared.u32 %0, [%1];" : "=r"(v) : "r"(at));
    return v;
  }
  __device__ __forceinline__ int field(u32 phase, int i) const {
    return load(base + kRecordBytes * phase + 4 * i);
  }
  __device__ __forceinline__ int kv_start(int stage) const {
    return load(base + 2 * kRecordBytes + 4 * stage);
  }
};

// A consumer's work tile and kv walk, read from the producer's records: h and b once per work
// tile (the mods' per-row values then stay out of the kv loop), the rest where it is used.
template <int kM> struct PostedTile {
  WorkRecords records;
  u32 phase;
  int h_ = records.field(phase, 1), b_ = records.field(phase, 2);
  __device__ __forceinline__ int q_start() const { return records.field(phase, 0) * kM; }
  __device__ __forceinline__ int h() const { return h_; }
  __device__ __forceinline__ int b() const { return b_; }
  __device__ __forceinline__ bool live() const { return records.field(phase, 3) != 0; }

  struct Walk {
    WorkRecords records;
    u32 phase;
    __device__ __forceinline__ int count() const { return records.field(phase, 4); }
    __device__ __forceinline__ bool partial(int i) const { return i < records.field(phase, 5); }
    __device__ __forceinline__ int kv_len() const { return records.field(phase, 6); }
    __device__ __forceinline__ bool ragged_last() const { return records.field(phase, 7) != 0; }
    // The first row of the kv tile in `stage`, once the stage's full barrier completed. Lane 0
    // reads the slot and passes it on, so lane 0's release of the stage orders the warp's read.
    __device__ __forceinline__ int start_at(int stage, int lane) const {
      return shfl_lane0(lane == 0 ? records.kv_start(stage) : 0);
    }
  };
  __device__ __forceinline__ Walk walk() const { return {records, phase}; }
};

} // namespace flexjit::dev
