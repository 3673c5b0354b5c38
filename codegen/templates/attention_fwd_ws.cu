// Forward attention for sm_90a, warp-specialized as FlashAttention-3 is: one CTA of three
// warpgroups computes BLOCK_M = 128 query rows of one (batch, query head).
//
//   producer (warpgroup 0, setmaxnreg down to kProducerRegs; one thread works): copies Q
//     (once per work tile) and every kv tile's K and V with TMA (tensor maps, attention_abi.h)
//     into a ring of kStages stages; each copy completes on its stage's "full" mbarrier, and a
//     stage is refilled once both consumers released it on its "empty" mbarrier.
//   consumers (warpgroups 1 and 2, setmaxnreg up to kConsumerRegs; 64 query rows each):
//     per kv tile, S = Q K^T (wgmma, both operands in shared memory), the mods and the mask
//     (attention_tile.h: full tiles skip the mask), the online softmax, O += P V (wgmma,
//     P from registers). Within a warpgroup tile i's S = Q K^T and tile i-1's P V are
//     issued together and only S is awaited before tile i's mods and softmax (ptxas moves
//     the wait for P V up to the softmax's start today: bench/NOTES_fwd_kernel.md); O is
//     rescaled at the next iteration's start. Between the two warpgroups a pair of named
//     barriers passes the turn to issue products (ping-pong): one warpgroup's mods and
//     softmax run under the other's wgmma.
//
// Policies (../shared/DESIGN.md): the tile scheduler (tile_scheduler.h) one work tile per CTA
// (grid_work: the last q tile first) or, kPersistent (attention_fwd_ws_persistent.cu), a
// persistent grid (PersistentTiles: the producer refills Q and the ring runs on across work
// tiles, so the next tile's copies overlap this one's last products and epilogue), the kv
// walk KvTiles (block_schedule.h: partial tiles, then full ones), the KV source
// TmaRing (kv_source.h) and, with a KV cache (options.kv_cache: per-sequence lengths, a block
// table over page pools), kv_source.h's KvCache and CacheOrder (the decode kernel's too), the products wgmma.h, the score tile apply_mods, the softmax
// softmax_update / rescale_o, the epilogue store_o_rows.
//
// Shared memory (dynamic, 1 KiB aligned), every tile in sm90_tiles.h's layout, which is
// what TMA's 128-byte swizzle writes for boxes of 64 head-dim elements (kTQ, kTV: the head
// dims rounded up to whole boxes; TMA fills what lies past a head dim with zeros):
//   Q [BLOCK_M][kTQ]   K [kStages][kN][kTQ]   V [kStages][kN][kTV]   mbarriers
//   then the work records (WorkRecords): the producer alone walks the schedule and the block
//   mask; the consumers read the work tile and its kv walk from these records.
#include "codegen/templates/attention_abi.h"
#include "codegen/templates/attention_tile.h"
#include "codegen/templates/kv_source.h"
#include "codegen/templates/sm90_tiles.h"
#include "codegen/templates/tile_scheduler.h"
#include "codegen/templates/tma.h"
#include "codegen/templates/wgmma.h"

#if __CUDA_ARCH__ < 900
#error "attention_fwd_ws.cu is for sm_90a"
#endif

extern __shared__ __attribute__((aligned(1024))) unsigned char flexjit_fwd_ws_smem[];

namespace flexjit::dev {

// Per-(Dqk, Dv) traits of the warp-specialized forward: q and k have kDqk head-dim
// elements, v and out kDv; in shared memory each is kTQ / kTV wide (whole 64-element
// swizzle atoms). S = Q K^T takes kDqk / 16 k-steps (never the padding); P V is kTV wide
// (TMA zero-fills V's padding; those columns of O are not stored).
template <int kDqk, int kDv> struct FwdWsTraits {
  static constexpr FlexjitFwdShape kShape = flexjit_fwd_ws_shape(kDqk, kDv);
  static constexpr int kTQ = flexjit_tile_dim(kDqk), kTV = flexjit_tile_dim(kDv);
  static constexpr int kM = FLEXJIT_FWD_BLOCK_M; // two consumer warpgroups x 64 rows
  static constexpr int kN = kShape.block_n;      // kv rows per tile
  static constexpr int kStages = kShape.stages;
  static constexpr int kThreads = kShape.threads;
  static constexpr bool kLazyRescale = lazy_rescale(kTV);
  // setmaxnreg moves registers between the warpgroups of the CTA's launch allocation only,
  // kLaunchRegs per thread (65536 / 384 in units of 8: 168), so the three warpgroups' counts
  // may sum to 3 x 168 = 504 at most; past that setmaxnreg.inc waits forever (a persistent
  // variant at 32 + 2 x 240 hung: bench/NOTES_fwd_kernel.md).
  static constexpr int kLaunchRegs = 65536 / kShape.threads / 8 * 8;
  static constexpr int kProducerRegs = 24, kConsumerRegs = 240;
  static_assert(kProducerRegs + 2 * kConsumerRegs <= 3 * kLaunchRegs,
                "setmaxnreg asks for more registers than the CTA holds");
  static_assert(kStages >= 2, "head dims no kernel can have (flexjit_fwd_ws_shape)");
  static_assert(kThreads == 384 && kM == 128, "a producer and two consumer warpgroups");
  static_assert(kDqk % 16 == 0 && kTV <= 256 && kN % 64 == 0 && kN <= 256,
                "wgmma and TMA box shapes");
  static_assert(kShape.smem_bytes ==
                    (kM * kTQ + kStages * kN * (kTQ + kTV)) * 2 + FLEXJIT_FWD_WS_BARRIER_BYTES,
                "launch contract (attention_abi.h)");
  static_assert(8 * TmaRing<kStages>::kBarriers <= FLEXJIT_FWD_WS_BARRIER_BYTES, "barrier space");
};

template <bool kBf16, int kDqk, int kDv, bool kPersistent> struct AttentionFwdWs {
  using Tr = FwdWsTraits<kDqk, kDv>;
  static constexpr int kM = Tr::kM, kN = Tr::kN, kStages = Tr::kStages;
  static constexpr int kTQ = Tr::kTQ, kTV = Tr::kTV;
  using Cta = FwdCta<kM, kN, kTQ, kTV, kStages>; // the q tile and heads; sq, sk, sv
  static constexpr u32 kKTileBytes = Cta::kKStageBytes, kVTileBytes = Cta::kVStageBytes;
  using Ring = TmaRing<kStages, kPersistent>;
  using Pos = RingPos<kStages>;
  using Work = PersistentTiles<kM>;
  static constexpr u32 kQBytes = kM * kTQ * 2; // boxes count whole, padding too
  // The work records (WorkRecords) follow the ring's barriers.
  static constexpr u32 kRecordOffset = (8 * Ring::kBarriers + 15) / 16 * 16;
  static_assert(kRecordOffset + WorkRecords::kBytes<kStages> <= FLEXJIT_FWD_WS_BARRIER_BYTES,
                "work records' space");
  // Named barriers: consumer c may issue its products once bar kTurn + c completes (its
  // 128 threads' sync plus the other consumer's 128 arrivals).
  static constexpr int kTurn = 1;
  // Named barrier of both consumers' zeroing of a ragged V tile (after kTurn + 1).
  static constexpr int kZeroBar = kTurn + 2;

  using Kv = KvCache<kN>; // a KV cache's lengths, pages and ragged tile (kv_source.h)

  // One work tile's copies into the ring from pos on: Q (its barrier armed by the caller),
  // then its kv tiles in the walk's order. The producer posts each kv tile's first row into
  // its stage's slot (WorkRecords) before arming the stage, for the consumers.
  static __device__ __forceinline__ void load_q(const FlexjitTensorMaps& maps, const Cta& cta,
                                                const Ring& ring) {
#pragma unroll
    for (int cb = 0; cb < kTQ / 64; ++cb)
      tma_load_4d(cta.sq + cb * kM * 128, &maps.q, ring.q_full(), cb * 64, cta.q_start, cta.h,
                  cta.b);
  }
  // Kv tile kv0's K and V into the stage at pos (the slot posted first): in a KV cache through
  // its boxes (Kv::tile_rows; the persistent producer, short of registers, reads the table in
  // rounds of kPagesHeld boxes for each of K and V: Kv::load_tile_rounds), else one box of the
  // tensors' own maps.
  static constexpr int kPagesHeld = kPersistent ? 2 : Kv::kMaxBoxes;
  template <bool kCache>
  static __device__ __forceinline__ void
  load_kv_tile(const FlexjitAttentionParams& p, const FlexjitTensorMaps& maps, const Cta& cta,
               const Ring& ring, Pos& pos, const WorkRecords& records, int kv0, int kv_len) {
    const u32 sk = cta.sk + pos.stage * kKTileBytes, sv = cta.sv + pos.stage * kVTileBytes;
    auto post = [&]() __attribute__((always_inline)) { records.post_kv(pos.stage, kv0); };
    if constexpr (!kCache) {
      const u32 full_k = ring.produce_k(pos, kKTileBytes, post);
#pragma unroll
      for (int cb = 0; cb < kTQ / 64; ++cb)
        tma_load_4d(sk + cb * kN * 128, &maps.k, full_k, cb * 64, kv0, cta.h_kv, cta.b);
      const u32 full_v = ring.produce_v(pos, kVTileBytes);
#pragma unroll
      for (int cb = 0; cb < kTV / 64; ++cb)
        tma_load_4d(sv + cb * kN * 128, &maps.v, full_v, cb * 64, kv0, cta.h_kv, cta.b);
    } else if constexpr (kPagesHeld == Kv::kMaxBoxes) {
      const auto rows = Kv::tile_rows(p, cta.b, kv0, kv_len);
      Kv::template load_tile<kTQ>(sk, &maps.k, ring.produce_k(pos, kKTileBytes, post), rows,
                                  cta.h_kv);
      Kv::template load_tile<kTV>(sv, &maps.v, ring.produce_v(pos, kVTileBytes), rows, cta.h_kv);
    } else {
      Kv::template load_tile_rounds<kTQ, kPagesHeld>(
          sk, &maps.k, ring.produce_k(pos, kKTileBytes, post), p, cta.b, kv0, kv_len, cta.h_kv);
      Kv::template load_tile_rounds<kTV, kPagesHeld>(sv, &maps.v, ring.produce_v(pos, kVTileBytes),
                                                     p, cta.b, kv0, kv_len, cta.h_kv);
    }
    pos.advance();
  }
  // One work tile: its record (posted into record `phase` with the walk's counts and the
  // sequence's kv length), Q, then its kv tiles. Without a KV cache the walk runs in order
  // (KvTiles: the mask's next block read one ahead); in one (Kv::on), in the cache's order
  // (CacheOrder: tiles past the sequence's length left out, the ragged one last) through the
  // block table.
  static __device__ __forceinline__ void load_work(const FlexjitAttentionParams& p,
                                                   const FlexjitTensorMaps& maps, const Cta& cta,
                                                   const Ring& ring, Pos& pos,
                                                   const WorkRecords& records, u32 phase) {
    const FwdWork work{cta.q_start / kM, cta.h, cta.b};
    if (Kv::on(p)) {
      const int kv_len = Kv::sequence_kv_len(p, cta.b);
      const BlockSchedule<kN, KvMajor> walk(p, cta.b, cta.h, cta.q_start, kv_len);
      const CacheOrder<kN> order(walk, 0, walk.n_tiles, kv_len, true);
      records.post(phase, work, order.n, order.n_part);
      records.post_sequence(phase, kv_len, order.ragged >= 0);
      mbar_arrive_expect_tx(ring.q_full(), kQBytes);
      load_q(maps, cta, ring);
      order.for_each(walk, 0, walk.n_tiles, kv_len, [&](int kv0) __attribute__((always_inline)) {
        load_kv_tile<true>(p, maps, cta, ring, pos, records, kv0, kv_len);
      });
    } else {
      KvTiles<kN> tiles(p, cta.b, cta.h, cta.q_start);
      records.post(phase, work, tiles.n_tiles, tiles.n_part_tiles);
      records.post_sequence(phase, p.kv_len, false);
      mbar_arrive_expect_tx(ring.q_full(), kQBytes);
      load_q(maps, cta, ring);
      for (int t = 0; t < tiles.n_tiles; ++t)
        load_kv_tile<false>(p, maps, cta, ring, pos, records, tiles.next_start(t), p.kv_len);
    }
  }

  static __device__ __forceinline__ void producer(const FlexjitAttentionParams& p,
                                                  const FlexjitTensorMaps& maps, const Cta& cta,
                                                  const Ring& ring) {
    tma_prefetch_map(&maps.q);
    tma_prefetch_map(&maps.k);
    tma_prefetch_map(&maps.v);
    Pos pos;
    const WorkRecords records{ring.bars + kRecordOffset};
    if constexpr (kPersistent) {
      u32 q_phase = 0;
      for (int w = block_x(); w < Work::total(p); w += grid_dim_x()) {
        const Cta here(p, cta.sq, Work::work(p, w));
        ring.wait_q_empty(q_phase);
        load_work(p, maps, here, ring, pos, records, q_phase);
        q_phase ^= 1;
      }
      ring.wait_q_empty(q_phase);
      records.post_end(q_phase);
      mbar_arrive(ring.q_full());
    } else {
      load_work(p, maps, cta, ring, pos, records, 0);
    }
  }

  // Consumer c's 64 rows of work tile t, whose record the producer posted (Q's full barrier,
  // which the caller waited for, made it visible). pos: the ring position of its first kv
  // tile, advanced past its last.
  static __device__ __forceinline__ void consume_tile(const FlexjitAttentionParams& p,
                                                      const FlexjitModArgs* args,
                                                      const PostedTile<kM>& t, const Cta& cta,
                                                      const Ring& ring, int c, int ctid, Pos& pos) {
    const int lane = ctid & 31, warp = ctid >> 5;
    const int row0 = c * 64 + warp * 16 + (lane >> 2); // this thread's rows: row0, row0 + 8
    const int q_hook[1][2] = {
        {min_i(t.q_start() + row0, p.q_len - 1), min_i(t.q_start() + row0 + 8, p.q_len - 1)}};
    const u32 q_base = cta.sq + c * 64 * 128; // this warpgroup's rows of every 64-column block
    auto turn_sync = [&]() __attribute__((always_inline)) { named_bar_sync(kTurn + c, 256); };
    auto turn_pass = [&]()
                         __attribute__((always_inline)) { named_bar_arrive(kTurn + (c ^ 1), 256); };

    float o[1][kTV / 8][4], m[1][2] = {{-kInf, -kInf}}, l[1][2] = {{0.f, 0.f}};
#pragma unroll
    for (int d = 0; d < kTV / 8; ++d)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        o[0][d][e] = 0.f;

    const auto tiles = t.walk();
    const int n_tiles = tiles.count();
    // The sequence's kv length (posted by the producer: kv_len, or a KV cache's own; read
    // where used) and whether tile kv0 reaches past it. In a KV cache (Kv::on) such a tile
    // (the ragged one, which the producer puts last and posts: ragged_last) has pool data
    // past the length in V, which both consumers zero, each half of the rows
    // (Kv::zero_v_rows, named barrier kZeroBar), while no product of theirs is in flight:
    // before the first product (a walk of one tile) or the last (after the loop), never in
    // the kv loop; and it takes the mask_mod whatever the block mask calls it.
    auto kv_len = [&]() __attribute__((always_inline)) { return tiles.kv_len(); };
    auto ragged = [&](int kv0) __attribute__((always_inline)) { return kv0 + kN > kv_len(); };
    auto zero_v = [&](const Pos& at) __attribute__((always_inline)) {
      ring.acquire_v(at);
      Kv::template zero_v_rows<kTV, 256>(cta.sv + at.stage * kVTileBytes,
                                         Kv::ragged_rows_from(kv_len()), thread_x_opaque() - 128,
                                         kZeroBar);
    };
    if (n_tiles > 0) {
      float s[1][kN / 8][4];
      u32 a[kN / 16][4];
      float alphas[1][2];
      // Iteration i issues S of tile i and P V of tile i - 1 in one turn. Tile 0 goes the
      // same way with a product of P = 0 and tile 0's V (finite: P V adds exact zeros), so
      // the loop holds one copy of the mods and every wgmma wait is unconditional, which
      // lets ptxas keep the products asynchronous. O is rescaled to tile i - 1's row maxima
      // before P V of tile i - 1 accumulates into it, outside the turn (under the other
      // consumer's products; inside it, ptxas would wait for S before touching O).
#pragma unroll
      for (int kk = 0; kk < kN / 16; ++kk)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          a[kk][e] = 0u;
      alphas[0][0] = alphas[0][1] = 1.f;
      Pos prev = pos; // the stage of the V the product reads (pos: tile i's)
      if (n_tiles == 1 && tiles.ragged_last()) // read by the first product (P = 0)
        zero_v(pos);
      for (int i = 0; i < n_tiles; ++i) {
        rescale_o<Tr::kLazyRescale>(o, alphas);
        ring.acquire_k(pos);
        const int kv0 = tiles.start_at(pos.stage, lane); // posted before the stage was armed
        turn_sync();
        issue_qk<kBf16, kM, kN, kDqk>(s[0], q_base, cta.sk + pos.stage * kKTileBytes);
        ring.acquire_v(prev);
        issue_pv<kBf16, kN, kTV>(o[0], a, cta.sv + prev.stage * kVTileBytes);
        turn_pass();
        wgmma_wait<1>(); // S of tile i; P V still runs
        fence_operand(s[0]);
        ring.release_k(pos, lane);
        const bool ragged_tile = ragged(kv0);
        apply_mods(s, tiles.partial(i) || (Kv::on(p) && ragged_tile), ragged_tile, kv0, kv_len(),
                   q_hook, lane, t.b(), t.h(), p, args);
        softmax_update(s, m, l, alphas);
        fence_operand(s[0]);
        wgmma_wait<0>(); // P V of tile i - 1
        fence_operand(o[0]);
        if (i > 0)
          ring.release_v(prev, lane);
        pack_frags<kBf16>(s[0], a);
        prev = pos;
        pos.advance();
      }
      if constexpr (kPersistent)
        ring.release_q(lane); // every S = Q K^T of the work tile completed
      rescale_o<Tr::kLazyRescale>(o, alphas);
      if (n_tiles > 1 && tiles.ragged_last())
        zero_v(prev);
      ring.acquire_v(prev);
      issue_pv<kBf16, kN, kTV>(o[0], a, cta.sv + prev.stage * kVTileBytes);
      wgmma_wait<0>();
      fence_operand(o[0]);
      ring.release_v(prev, lane);
    } else if constexpr (kPersistent) {
      ring.release_q(lane);
    }
    store_o_rows<kBf16, kDv / 8>(p, o[0], m[0], l[0], t.q_start(), row0, lane, t.b(), t.h());
  }

  // The turn runs on across work tiles: both consumers walk the same kv tiles of each.
  static __device__ __forceinline__ void consumer(const FlexjitAttentionParams& p,
                                                  const FlexjitModArgs* args, const Cta& cta,
                                                  const Ring& ring, int c, int ctid) {
    Pos pos;
    if (c == 1)
      named_bar_arrive(kTurn, 256); // consumer 0 issues first
    const WorkRecords records{ring.bars + kRecordOffset};
    if constexpr (kPersistent) {
      for (u32 q_phase = 0;; q_phase ^= 1) {
        mbar_wait(ring.q_full(), q_phase); // always: no copy may outlive the CTA
        const PostedTile<kM> t{records, q_phase};
        if (!t.live())
          break;
        // The thread's index read afresh per work tile: nothing derived from it is kept in
        // registers across the tile loop (LLVM would hoist it; ptxas re-reads it for free).
        const int tid = thread_x_opaque();
        consume_tile(p, args, t, cta, ring, (tid >> 7) - 1, tid & 127, pos);
      }
    } else {
      mbar_wait(ring.q_full(), 0); // always: no copy may outlive the CTA
      consume_tile(p, args, PostedTile<kM>{records, 0}, cta, ring, c, ctid, pos);
    }
    if (c == 0)
      named_bar_sync(kTurn, 256); // consumer 1's last pass, so no arrival outlives the CTA
  }

  static __device__ __forceinline__ void
  run(const FlexjitAttentionParams& p, const FlexjitModArgs* args, const FlexjitTensorMaps& maps) {
    const int tid = thread_x(), wg = tid >> 7;
    const Cta cta(p, smem_addr(flexjit_fwd_ws_smem));
    const Ring ring{cta.sv + kStages * kVTileBytes}; // the barriers follow V's stages
    if (tid == 0)
      ring.init();
    sync_threads();
    if (wg == 0) {
      setmaxnreg_dec<Tr::kProducerRegs>();
      if (tid == 0)
        producer(p, maps, cta, ring);
    } else {
      setmaxnreg_inc<Tr::kConsumerRegs>();
      consumer(p, args, cta, ring, wg - 1, tid & 127);
    }
  }
};

} // namespace flexjit::dev

#define FLEXJIT_FWD_WS_ENTRY(name, bf16, dqk, dv, persistent)                                      \
  extern "C" __global__ void __attribute__((launch_bounds(FLEXJIT_FWD_WS_THREADS, 1))) name(       \
      const FlexjitAttentionParams params, const FlexjitModArgs mod_args,                          \
      const FlexjitTensorMaps maps) {                                                              \
    flexjit::dev::AttentionFwdWs<bf16, dqk, dv, persistent>::run(params, &mod_args, maps);         \
  }

// The build compiles one bitcode per kernel (cmake/EmbedTemplates.cmake).
#ifndef FLEXJIT_ONE_VARIANT
#error "attention_fwd_ws.cu is built one variant at a time (-DFLEXJIT_ONE_VARIANT ...)"
#endif
// attention_fwd_ws_persistent.cu includes this file with FLEXJIT_FWD_WS_PERSISTENT defined.
#ifdef FLEXJIT_FWD_WS_PERSISTENT
FLEXJIT_FWD_WS_ENTRY(FLEXJIT_VARIANT_ENTRY(flexjit_attention_fwd_ws_persistent),
                     FLEXJIT_VARIANT_BF16, FLEXJIT_VARIANT_DQK, FLEXJIT_VARIANT_DV, true)
#else
FLEXJIT_FWD_WS_ENTRY(FLEXJIT_VARIANT_ENTRY(flexjit_attention_fwd_ws), FLEXJIT_VARIANT_BF16,
                     FLEXJIT_VARIANT_DQK, FLEXJIT_VARIANT_DV, false)
#endif
