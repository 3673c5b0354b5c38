// The KV source policies (../shared/DESIGN.md: KvSource + Pipeline<N>): how K and V tiles
// reach shared memory, behind acquire (the tile landed) / release (its stage may be
// refilled) / produce (start a tile's copies):
//   CpAsyncKvRing (sm_80 forward): every thread copies with cp.async, one commit group per
//     tile, kStages - 1 tiles ahead; acquire waits for this thread's copies of the tile and
//     passes a CTA barrier, which is also every warp's release of the tile before.
//   TmaRing (sm_90a warp-specialized forward): one producer thread's TMA copies complete on
//     per-stage "full" mbarriers (produce_k / produce_v, then the copies); consumers wait for
//     a tile there (acquire_k / acquire_v) and release its stage on its "empty" mbarrier
//     (release_k / release_v).
// Strided K/V today (the tensors' own strides); a paged source is the next policy.
#pragma once

#include "codegen/templates/attention_common.h"
#include "codegen/templates/tma.h"

namespace flexjit::dev {

// kv_ring[k] is the first kv row of tile i + k (i: the tile being computed); one cp.async
// group per tile, empty past the last tile, so that wait_group<kStages - 2> at tile i means
// tile i has landed.
template <int kStages> struct CpAsyncKvRing {
  static_assert(kStages >= 2, "a tile in flight while one is computed");
  int load_stage = 0; // the stage the next produce() fills
  int kv_ring[kStages - 1];

  // Starts tile t's copies when t < tiles.n_tiles (load(kv0, stage) issues them) into ring
  // slot k, and commits a group either way.
  template <class Tiles, class Load>
  __device__ __forceinline__ void produce(int t, int k, Tiles& tiles, const Load& load) {
    if (t < tiles.n_tiles) {
      const int kv = tiles.next_start(t);
      kv_ring[k] = kv;
      load(kv, load_stage);
    }
    load_stage = load_stage == kStages - 1 ? 0 : load_stage + 1;
    cp_async_commit();
  }
  // The first kv row of the tile to compute now; the ring moves on by one.
  __device__ __forceinline__ int pop() {
    const int kv0 = kv_ring[0];
#pragma unroll
    for (int k = 0; k + 1 < kStages - 1; ++k)
      kv_ring[k] = kv_ring[k + 1];
    return kv0;
  }
  // The oldest tile in flight has landed, for every thread; every warp is past the tile
  // before it, whose stage produce() may refill.
  __device__ __forceinline__ void acquire() const {
    cp_async_wait<kStages - 2>();
    sync_threads();
  }
};

// A position in the ring: stage and phase parity, advanced tile by tile.
template <int kStages> struct RingPos {
  int stage = 0;
  u32 phase = 0;
  __device__ __forceinline__ void advance() {
    if (++stage == kStages) {
      stage = 0;
      phase ^= 1;
    }
  }
};

// The K/V source: kStages stages of one K and one V tile, each with a "full" barrier (the
// producer's expect-tx arrival plus the copies' bytes) and an "empty" one (one arrival per
// consumer warp: kConsumerWarps, two warpgroups' by default). Stage s of tile t is
// t % kStages, its phase parity (t / kStages) & 1.
// kPersistent: Q is refilled per work tile (Q has an empty barrier too), and the producer
// posts each work tile's coordinates in shared memory (WorkRecords, tile_scheduler.h), which
// every consumer lane reads: a warp syncs its lanes before lane 0's arrival releases Q, so
// the release orders every lane's reads of the records before the producer's next writes.
template <int kStages, bool kPersistent = false, int kConsumerWarps = 8> struct TmaRing {
  u32 bars; // Q's barrier, then full K, full V, empty K, empty V (kStages each), Q's empty
  static constexpr int kBarriers = 2 + 4 * kStages;

  __device__ __forceinline__ u32 q_full() const { return bars; }
  __device__ __forceinline__ u32 q_empty() const { return bars + 8 * (1 + 4 * kStages); }
  __device__ __forceinline__ u32 full_k(int s) const { return bars + 8 * (1 + s); }
  __device__ __forceinline__ u32 full_v(int s) const { return bars + 8 * (1 + kStages + s); }
  __device__ __forceinline__ u32 empty_k(int s) const { return bars + 8 * (1 + 2 * kStages + s); }
  __device__ __forceinline__ u32 empty_v(int s) const { return bars + 8 * (1 + 3 * kStages + s); }

  __device__ __forceinline__ void init() const {
    mbar_init(q_full(), 1);
    if constexpr (kPersistent)
      mbar_init(q_empty(), kConsumerWarps);
#pragma unroll
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full_k(s), 1);
      mbar_init(full_v(s), 1);
      mbar_init(empty_k(s), kConsumerWarps);
      mbar_init(empty_v(s), kConsumerWarps);
    }
    mbar_init_fence();
  }
  // A consumer warp is done reading a stage (after the wgmma that read it completed).
  __device__ __forceinline__ void release(u32 bar, int lane) const {
    if (lane == 0)
      mbar_arrive(bar);
  }

  // The pipeline, per stage of K and of V (pos: the tile's stage and phase):
  //   producer: produce_k / produce_v wait until the stage is empty and expect its bytes;
  //     the copies then complete on the barrier returned (full_k / full_v);
  //   consumers: acquire_k / acquire_v wait until the tile landed; release_k / release_v
  //     (each warp, once the products that read it completed) free the stage.
  // before_arm runs once the stage is empty and before its full barrier is armed (what the
  // consumers read with the tile after acquire_k: WorkRecords::post_kv).
  template <class BeforeArm>
  __device__ __forceinline__ u32 produce_k(const RingPos<kStages>& pos, u32 bytes,
                                           const BeforeArm& before_arm) const {
    mbar_wait(empty_k(pos.stage), pos.phase ^ 1);
    before_arm();
    mbar_arrive_expect_tx(full_k(pos.stage), bytes);
    return full_k(pos.stage);
  }
  __device__ __forceinline__ u32 produce_v(const RingPos<kStages>& pos, u32 bytes) const {
    mbar_wait(empty_v(pos.stage), pos.phase ^ 1);
    mbar_arrive_expect_tx(full_v(pos.stage), bytes);
    return full_v(pos.stage);
  }
  __device__ __forceinline__ void acquire_k(const RingPos<kStages>& pos) const {
    mbar_wait(full_k(pos.stage), pos.phase);
  }
  __device__ __forceinline__ void acquire_v(const RingPos<kStages>& pos) const {
    mbar_wait(full_v(pos.stage), pos.phase);
  }
  __device__ __forceinline__ void release_k(const RingPos<kStages>& pos, int lane) const {
    release(empty_k(pos.stage), lane);
  }
  __device__ __forceinline__ void release_v(const RingPos<kStages>& pos, int lane) const {
    release(empty_v(pos.stage), lane);
  }
  // Q, for a kernel that refills it (kPersistent): the producer waits until the consumers
  // are done with the last work tile's Q (q_phase: the work tile's parity; the first wait
  // passes), then arms q_full for the next; each consumer warp releases Q once its last
  // S = Q K^T of the work tile completed.
  __device__ __forceinline__ void wait_q_empty(u32 q_phase) const {
    mbar_wait(q_empty(), q_phase ^ 1);
  }
  __device__ __forceinline__ void release_q(int lane) const {
    sync_warp(); // every lane's reads of the work records (WorkRecords) before the arrival
    release(q_empty(), lane);
  }
};

} // namespace flexjit::dev
