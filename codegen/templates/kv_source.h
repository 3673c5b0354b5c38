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
//   KvCache (sm_90a warp-specialized forward and split-KV decode, over TmaRing): a KV cache
//     (FlexjitAttentionParams' kv_lens / block_table): each sequence's own length, its kv
//     walk in the cache's order (CacheOrder: tiles at or past the length left out, the ragged
//     tile last), a tile's TMA boxes through the block table (tile_rows / load_tile), and the
//     zeros in V's rows of the ragged tile (zero_v_rows).
// Without a KV cache K and V are read in the tensors' own strides.
#pragma once

#include "codegen/templates/attention_abi.h"
#include "codegen/templates/attention_common.h"
#include "codegen/templates/tma.h"
#include "codegen/templates/wgmma.h"

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

// The KV cache of FlexjitAttentionParams (kv_lens, block_table: attention_abi.h) for a kernel
// of kN-row kv tiles whose K and V tensor maps have dims (D, S, H, B) unpaged, (D, page slots,
// Hkv, num_pages) paged, with boxes of min(kN, page size) rows. Both the forward (one tile per
// CTA and persistent) and the decode kernel read K and V through it.
template <int kN> struct KvCache {
  // Whether the launch reads a KV cache (uniform over the grid).
  static __device__ __forceinline__ bool on(const FlexjitAttentionParams& p) {
    return p.kv_lens || p.block_table;
  }
  static __device__ __forceinline__ void flag(const FlexjitAttentionParams& p, u32 bit) {
    atomic_or(reinterpret_cast<int*>(p.device_error), static_cast<int>(bit));
  }

  // The sequence's kv rows: kv_lens[b] when given (a length outside [0, kv_len] is flagged
  // and read as kv_len: the cache's capacity, whose pages the table has), else kv_len.
  static __device__ __forceinline__ int sequence_kv_len(const FlexjitAttentionParams& p, int b) {
    if (!p.kv_lens)
      return p.kv_len;
    const int n = p.kv_lens[b];
    if (n >= 0 && n <= p.kv_len)
      return n;
    flag(p, FLEXJIT_DEVICE_ERROR_KV_LEN);
    return p.kv_len;
  }

  // Where kv tile kv0's rows lie: box j of `boxes` (box rows each) at (slot, page[j - first])
  // of the K / V maps, for boxes first .. first + kHeld - 1 (a kernel short of registers holds
  // the pages of kHeld boxes at a time: load_tile_rounds). Unpaged: one box, slot kv0 of "page"
  // b (the maps' dims are (D, S, H, B)). Paged: a box per page the tile spans (page_size < kN:
  // each starts its page, slot 0) or one (slot kv0 % page_size); rows past the sequence read
  // the page of its last row (masked out, and their V zeroed by the consumer); a table entry
  // outside the pool is flagged and read as page 0. The table reads are issued together.
  static constexpr int kMaxBoxes = kN / FLEXJIT_PAGE_SIZE_MIN;
  template <int kHeld = kMaxBoxes> struct TileRows {
    int boxes = 1, box_rows = kN, slot, first = 0;
    int page[kHeld];
  };
  template <int kHeld = kMaxBoxes>
  static __device__ __forceinline__ TileRows<kHeld>
  tile_rows(const FlexjitAttentionParams& p, int b, int kv0, int kv_len, int first = 0) {
    TileRows<kHeld> t;
    t.first = first;
    if (!p.block_table) {
      t.slot = kv0;
      t.page[0] = b;
      return t;
    }
    const int page_rows = 1 << p.page_shift;
    t.box_rows = min_i(kN, page_rows);
    t.boxes = kN / t.box_rows;
    t.slot = kv0 & (page_rows - 1); // kv0 is a multiple of kN: 0 when pages are smaller
    const int32_t* table = p.block_table + static_cast<int64_t>(b) * p.max_pages;
#pragma unroll
    for (int j = 0; j < kHeld; ++j)
      if (first + j < t.boxes)
        t.page[j] = table[min_i(kv0 + (first + j) * t.box_rows, kv_len - 1) >> p.page_shift];
#pragma unroll
    for (int j = 0; j < kHeld; ++j)
      if (first + j < t.boxes && (t.page[j] < 0 || t.page[j] >= p.num_pages)) {
        flag(p, FLEXJIT_DEVICE_ERROR_PAGE);
        t.page[j] = 0;
      }
    return t;
  }
  // The tile's copies of the boxes `t` holds (kTD / 64 boxes of 64 columns per row box) into
  // dst, in sm90_tiles.h's layout ([kTD / 64][kN][64]), completing on bar.
  template <int kTD, int kHeld>
  static __device__ __forceinline__ void load_tile(u32 dst, const FlexjitTensorMap* map, u32 bar,
                                                   const TileRows<kHeld>& t, int h_kv) {
#pragma unroll
    for (int j = 0; j < kHeld; ++j)
      if (t.first + j < t.boxes)
#pragma unroll
        for (int cb = 0; cb < kTD / 64; ++cb)
          tma_load_4d(dst + cb * kN * 128 + (t.first + j) * t.box_rows * 128, map, bar, cb * 64,
                      t.slot, h_kv, t.page[j]);
  }
  // Tile kv0's copies with the pages of kHeld boxes in registers at a time (the table read
  // per round of boxes; a producer of few registers: the persistent forward's).
  template <int kTD, int kHeld>
  static __device__ __forceinline__ void load_tile_rounds(u32 dst, const FlexjitTensorMap* map,
                                                          u32 bar, const FlexjitAttentionParams& p,
                                                          int b, int kv0, int kv_len, int h_kv) {
    for (int first = 0; first < kMaxBoxes; first += kHeld) {
      const TileRows<kHeld> t = tile_rows<kHeld>(p, b, kv0, kv_len, first);
      if (first >= t.boxes)
        break;
      load_tile<kTD>(dst, map, bar, t, h_kv);
    }
  }

  // In a KV cache the rows of a tile past the sequence's length hold whatever the pool has
  // there (maybe NaN): P is 0 on them, but 0 x NaN is NaN, so V's rows from first_row on (of
  // a tile kTV wide) become zeros before a product reads them: the stores of the kThreads
  // consumer threads that read the tile (tid: this one's index among them), fenced for the
  // async proxy, then their named barrier `bar`.
  template <int kTV, int kThreads>
  static __device__ __forceinline__ void zero_v_rows(u32 v_tile, int first_row, int tid, int bar) {
    const int rows = kN - first_row, chunks = rows * (kTV / 64) * 8;
    for (int i = tid; i < chunks; i += kThreads) {
      const int rb = i >> 3, cb = rb / rows, r = first_row + rb - cb * rows;
      asm volatile("st.shared.v4.u32 [%0], {%1, %1, %1, %1};\n" ::"r"(v_tile + cb * kN * 128 +
                                                                      r * 128 + (i & 7) * 16),
                   "r"(0)
                   : "memory");
    }
    fence_proxy_async();
    named_bar_sync(bar, kThreads);
  }
  // The first row of the ragged tile (the one of row kv_len - 1: tiles start at multiples of
  // kN) past the sequence's length.
  static __device__ __forceinline__ int ragged_rows_from(int kv_len) {
    return ((kv_len - 1) & (kN - 1)) + 1;
  }
};

// Tiles [t0, t1) of a kv walk (BlockSchedule: start(t) is tile t's first row) in a KV cache's
// order: the tiles at or past the sequence's length are left out (a block mask built for the
// cache's capacity has them), and the ragged tile (rows past the length, whose V the consumers
// zero) comes last, counted with the full tiles (the consumers apply the mask_mod on a ragged
// tile anyway), so that zeroing runs only before a consumer's first product or its last, never
// in the kv loop. Counted first: the consumers need the counts (n, n_part) at once.
// cache == false: every tile below the length in the walk's order (the ragged one is last
// anyway without a block mask).
template <int kN> struct CacheOrder {
  int n = 0, n_part = 0, ragged = -1;

  template <class Walk>
  __device__ __forceinline__ CacheOrder(const Walk& walk, int t0, int t1, int kv_len, bool cache) {
    for (int t = t0; t < t1; ++t) {
      const int kv0 = walk.start(t);
      if (kv0 >= kv_len)
        continue;
      ++n;
      if (cache && kv0 + kN > kv_len)
        ragged = t;
      else
        n_part += t < walk.n_part_tiles;
    }
  }
  // f(kv0) for each tile in this order.
  template <class Walk, class F>
  __device__ __forceinline__ void for_each(const Walk& walk, int t0, int t1, int kv_len,
                                           const F& f) const {
    for (int j = t0; j <= t1; ++j) {
      const int t = j < t1 ? j : ragged; // the ragged tile after the others
      if (t < 0 || (j < t1 && t == ragged))
        continue;
      const int kv0 = walk.start(t);
      if (kv0 >= kv_len)
        continue;
      f(kv0);
    }
  }
};

} // namespace flexjit::dev
