// Split-KV decoding for sm_90a (FlashDecoding's split, packed as FlashInfer packs GQA): the
// forward for short query rows (q_len <= FLEXJIT_DECODE_MAX_Q_LEN), where attention reads K
// and V once and is bound by memory bandwidth, not by the tensor cores.
//
//   work tile (DecodeWork): CTA (x, y, z) takes split x of the kv walk of batch z and kv
//     head y / chunks, whose query heads go in chunks of decode_heads: the q_len rows of
//     each of chunk y % chunks's heads are one packed tile of FLEXJIT_DECODE_ROWS rows
//     (row = q * decode_heads + head), so K and V are read once per kv head and split, not
//     once per query head. The split covers tiles [t0, t1) of the walk (block_schedule.h:
//     partial tiles, then full ones), an equal share.
//   producer (warpgroup 0; one thread works): Q through a rank-5 tensor map (the packed
//     rows in one box), then the split's K and V tiles through TMA into a ring of kStages
//     stages on mbarriers (kv_source.h's TmaRing), posting the walk (WorkRecords) as the
//     forward's producer does.
//   consumer (warpgroup 1): per kv tile S = Q K^T (wgmma, M = 64), the mods (each row's own
//     query head: RowHeads) and the mask, the online softmax, O += P V; tile i's S is issued
//     with tile i-1's P V as in the forward. The ring is deep enough that one warpgroup keeps
//     up with the copies (a tile's products take about half of its bytes' time at full
//     bandwidth), so there is no second consumer and no setmaxnreg (256 threads have 255
//     registers each).
//   epilogue: one split writes out and lse; more write partial O (f32, normalized) and lse
//     per split, and the combine kernel below merges them (the lse-weighted sum).
// Rows a split sees nothing of get lse = -inf and O = 0, which the combine weighs by zero.
#include "codegen/templates/attention_abi.h"
#include "codegen/templates/attention_tile.h"
#include "codegen/templates/kv_source.h"
#include "codegen/templates/sm90_tiles.h"
#include "codegen/templates/tile_scheduler.h"
#include "codegen/templates/tma.h"
#include "codegen/templates/wgmma.h"

#if __CUDA_ARCH__ < 900
#error "attention_decode_ws.cu is for sm_90a"
#endif

extern __shared__ __attribute__((aligned(1024))) unsigned char flexjit_decode_ws_smem[];

namespace flexjit::dev {

template <int kDqk, int kDv> struct DecodeWsTraits {
  static constexpr FlexjitFwdShape kShape = flexjit_decode_ws_shape(kDqk, kDv);
  static constexpr int kTQ = flexjit_tile_dim(kDqk), kTV = flexjit_tile_dim(kDv);
  static constexpr int kM = FLEXJIT_DECODE_ROWS; // one consumer warpgroup
  static constexpr int kN = kShape.block_n;
  static constexpr int kStages = kShape.stages;
  static constexpr bool kLazyRescale = lazy_rescale(kTV);
  static_assert(kStages >= 2, "head dims no kernel can have (flexjit_decode_ws_shape)");
  static_assert(kShape.threads == 256 && kM == 64, "a producer and one consumer warpgroup");
  static_assert(kShape.smem_bytes ==
                    (kM * kTQ + kStages * kN * (kTQ + kTV)) * 2 + FLEXJIT_FWD_WS_BARRIER_BYTES,
                "launch contract (attention_abi.h)");
};

// A decode CTA's work: batch, kv head, its first query head and how many, the split.
struct DecodeWork {
  int b, h_kv, h0, heads, split, splits;
  __device__ __forceinline__ static DecodeWork of_grid(const FlexjitAttentionParams& p) {
    const int group = p.Hq / p.Hkv, chunks = group / p.decode_heads;
    const int y = block_y(), h_kv = y / chunks;
    return {block_z(),      h_kv,      h_kv * group + (y - h_kv * chunks) * p.decode_heads,
            p.decode_heads, block_x(), static_cast<int>(__nvvm_read_ptx_sreg_nctaid_x())};
  }
};

template <bool kBf16, int kDqk, int kDv> struct AttentionDecodeWs {
  using Tr = DecodeWsTraits<kDqk, kDv>;
  static constexpr int kM = Tr::kM, kN = Tr::kN, kStages = Tr::kStages;
  static constexpr int kTQ = Tr::kTQ, kTV = Tr::kTV;
  static constexpr u32 kQBytes = kM * kTQ * 2;
  static constexpr u32 kKTileBytes = kN * kTQ * 2, kVTileBytes = kN * kTV * 2;
  using Ring = TmaRing<kStages, false, 4>;
  using Pos = RingPos<kStages>;
  static constexpr u32 kRecordOffset = (8 * Ring::kBarriers + 15) / 16 * 16;
  static_assert(kRecordOffset + WorkRecords::kBytes<kStages> <= FLEXJIT_FWD_WS_BARRIER_BYTES,
                "work records' space");

  struct Smem {
    u32 sq, sk, sv;
    __device__ __forceinline__ explicit Smem(u32 base)
        : sq(base), sk(base + kQBytes), sv(base + kQBytes + kStages * kKTileBytes) {}
  };

  using Kv = KvCache<kN>; // sequence lengths, pages, the ragged tile (kv_source.h)

  static __device__ __forceinline__ void producer(const FlexjitAttentionParams& p,
                                                  const FlexjitTensorMaps& maps, const Smem& sm,
                                                  const Ring& ring, const DecodeWork& w) {
    tma_prefetch_map(&maps.q);
    tma_prefetch_map(&maps.k);
    tma_prefetch_map(&maps.v);
    const int kv_len = Kv::sequence_kv_len(p, w.b);
    // The walk of the first query head's row of q block 0 (the host packs heads only under
    // a mask without per-head rows, and checks that q_len fits in one q block).
    const BlockSchedule<kN, KvMajor> walk(p, w.b, w.h0, 0, kv_len);
    const int t0 = static_cast<int>(static_cast<int64_t>(walk.n_tiles) * w.split / w.splits);
    const int t1 = static_cast<int>(static_cast<int64_t>(walk.n_tiles) * (w.split + 1) / w.splits);
    // The split's tiles in the cache's order (CacheOrder): its ragged tile last.
    const CacheOrder<kN> order(walk, t0, t1, kv_len, Kv::on(p));
    const WorkRecords records{ring.bars + kRecordOffset};
    records.post(0, FwdWork{0, w.h0, w.b}, order.n, order.n_part);
    records.post_kv_len(0, kv_len);
    const u32 q_bytes = static_cast<u32>(w.heads * p.q_len) * 128u * (kTQ / 64);
    mbar_arrive_expect_tx(ring.q_full(), q_bytes);
    const int group_head = w.h0 - w.h_kv * (p.Hq / p.Hkv);
#pragma unroll
    for (int cb = 0; cb < kTQ / 64; ++cb)
      tma_load_5d(sm.sq + cb * kM * 128, &maps.q, ring.q_full(), cb * 64, group_head, 0, w.h_kv,
                  w.b);
    Pos pos;
    order.for_each(walk, t0, t1, kv_len, [&](int kv0) __attribute__((always_inline)) {
      const auto rows = Kv::tile_rows(p, w.b, kv0, kv_len);
      const u32 full_k = ring.produce_k(pos, kKTileBytes, [&]() __attribute__((always_inline)) {
        records.post_kv(pos.stage, kv0);
      });
      Kv::template load_tile<kTQ>(sm.sk + pos.stage * kKTileBytes, &maps.k, full_k, rows, w.h_kv);
      const u32 full_v = ring.produce_v(pos, kVTileBytes);
      Kv::template load_tile<kTV>(sm.sv + pos.stage * kVTileBytes, &maps.v, full_v, rows, w.h_kv);
      pos.advance();
    });
  }

  static __device__ __forceinline__ void consumer(const FlexjitAttentionParams& p,
                                                  const FlexjitModArgs* args, const Smem& sm,
                                                  const Ring& ring, const DecodeWork& w, int ctid) {
    const int lane = ctid & 31, warp = ctid >> 5;
    const int row0 = warp * 16 + (lane >> 2); // this thread's packed rows: row0, row0 + 8
    const int rows = w.heads * p.q_len;
    int q_hook[1][2];
    RowHeads<1> heads;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = min_i(row0 + r * 8, rows - 1); // rows past the tile's are never stored
      const int q = row / w.heads;
      q_hook[0][r] = q;
      heads.h[0][r] = w.h0 + row - q * w.heads;
    }
    float o[1][kTV / 8][4], m[1][2] = {{-kInf, -kInf}}, l[1][2] = {{0.f, 0.f}};
#pragma unroll
    for (int d = 0; d < kTV / 8; ++d)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        o[0][d][e] = 0.f;

    mbar_wait(ring.q_full(), 0); // always: no copy may outlive the CTA
    const auto tiles = PostedTile<kM>{WorkRecords{ring.bars + kRecordOffset}, 0}.walk();
    const int n_tiles = tiles.count();
    auto cache = [&]() __attribute__((always_inline)) { return Kv::on(p); };
    // The sequence's length (read where used: one register less in the kv loop) and whether
    // tile kv0 has rows past it, which in a KV cache need zeros in V (zero_v_rows).
    auto kv_len = [&]() __attribute__((always_inline)) { return tiles.kv_len(); };
    auto ragged = [&](int kv0) __attribute__((always_inline)) { return kv0 + kN > kv_len(); };
    // The ragged tile is the one of row kv_len - 1 (the producer leaves out those at or past
    // kv_len). Zeroing runs while no product is in flight (before the next QK^T: S's registers
    // are free); the warpgroup's thread is read there (no register is held for it through the
    // kv loop).
    auto zero_v = [&](const Pos& at) __attribute__((always_inline)) {
      ring.acquire_v(at);
      Kv::template zero_v_rows<kTV, 128>(sm.sv + at.stage * kVTileBytes,
                                         Kv::ragged_rows_from(kv_len()), thread_x_opaque() & 127,
                                         1);
    };
    Pos pos;
    if (n_tiles > 0) {
      float s[1][kN / 8][4];
      u32 a[kN / 16][4];
      float alphas[1][2] = {{1.f, 1.f}};
      // As the forward's consumer: tile 0's P V is a product of P = 0 with tile 0's V.
#pragma unroll
      for (int kk = 0; kk < kN / 16; ++kk)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          a[kk][e] = 0u;
      Pos prev = pos;
      // Tile 0's V is read by the first product (with P = 0), and a ragged tile is the last.
      if (cache()) {
        ring.acquire_k(pos);
        if (ragged(tiles.start_at(pos.stage, lane)))
          zero_v(pos);
      }
      for (int i = 0; i < n_tiles; ++i) {
        rescale_o<Tr::kLazyRescale>(o, alphas);
        ring.acquire_k(pos);
        const int kv0 = tiles.start_at(pos.stage, lane);
        issue_qk<kBf16, kM, kN, kDqk>(s[0], sm.sq, sm.sk + pos.stage * kKTileBytes);
        ring.acquire_v(prev);
        issue_pv<kBf16, kN, kTV>(o[0], a, sm.sv + prev.stage * kVTileBytes);
        wgmma_wait<1>(); // S of tile i; P V still runs
        fence_operand(s[0]);
        ring.release_k(pos, lane);
        const bool ragged_tile = ragged(kv0);
        apply_mods(s, tiles.partial(i) || (cache() && ragged_tile), ragged_tile, kv0, kv_len(),
                   q_hook, lane, w.b, heads, p, args);
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
      rescale_o<Tr::kLazyRescale>(o, alphas);
      if (cache() && n_tiles > 1 && ragged(tiles.start_at(prev.stage, lane)))
        zero_v(prev);
      ring.acquire_v(prev);
      issue_pv<kBf16, kN, kTV>(o[0], a, sm.sv + prev.stage * kVTileBytes);
      wgmma_wait<0>();
      fence_operand(o[0]);
      ring.release_v(prev, lane);
    }
    store(p, o[0], m[0], l[0], w, row0, rows, lane);
  }

  // One split: out and lse as the forward's epilogue does, row by row (each packed row has
  // its own head and q); more: this split's O (f32, normalized) and lse (row_lse).
  static __device__ __forceinline__ void store(const FlexjitAttentionParams& p,
                                               const float (&o)[kTV / 8][4], const float (&m)[2],
                                               const float (&l)[2], const DecodeWork& w, int row0,
                                               int rows, int lane) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = row0 + r * 8;
      if (row >= rows)
        continue;
      const float lsum = quad_sum(l[r]);
      const int q = row / w.heads, h = w.h0 + row - q * w.heads;
      const int col = (lane & 3) * 2;
      if (w.splits == 1) {
        unsigned short* dst = static_cast<unsigned short*>(p.out) + w.b * p.out_stride_b +
                              h * p.out_stride_h + q * p.out_stride_s + col;
        store_o_row<kBf16, kDv / 8>(dst, o, r, row_inv_sum(lsum));
        if (p.lse && (lane & 3) == 0)
          p.lse[w.b * p.lse_stride_b + h * p.lse_stride_h + q] = row_lse(m[r], lsum);
        continue;
      }
      const int64_t prow = ((static_cast<int64_t>(w.split) * p.B + w.b) * p.Hq + h) * p.q_len + q;
      float* dst = p.o_part + prow * kDv + col;
      const float inv = row_inv_sum(lsum);
#pragma unroll
      for (int d = 0; d < kDv / 8; ++d)
        asm volatile("st.global.v2.f32 [%0], {%1, %2};\n" ::"l"(dst + d * 8),
                     "f"(o[d][2 * r] * inv), "f"(o[d][2 * r + 1] * inv)
                     : "memory");
      if ((lane & 3) == 0)
        p.lse_part[prow] = row_lse(m[r], lsum);
    }
  }

  static __device__ __forceinline__ void
  run(const FlexjitAttentionParams& p, const FlexjitModArgs* args, const FlexjitTensorMaps& maps) {
    const int tid = thread_x();
    const Smem sm(smem_addr(flexjit_decode_ws_smem));
    const Ring ring{sm.sv + kStages * kVTileBytes}; // the barriers follow V's stages
    const DecodeWork w = DecodeWork::of_grid(p);
    // Q's rows past the packed ones are zeros (TMA writes only the box): the products of
    // rows nobody stores stay finite. Written before the CTA barrier, fenced for the async
    // proxy (TMA, wgmma).
    for (u32 i = tid; i < kQBytes / 16; i += FLEXJIT_DECODE_THREADS)
      asm volatile("st.shared.v4.u32 [%0], {%1, %1, %1, %1};\n" ::"r"(sm.sq + i * 16), "r"(0)
                   : "memory");
    fence_proxy_async();
    if (tid == 0)
      ring.init();
    sync_threads();
    if (tid == 0)
      producer(p, maps, sm, ring, w);
    else if (tid >= 128)
      consumer(p, args, sm, ring, w, tid - 128);
  }
};

// The combine: row (b, h, q) of out and lse from the splits' partial O and lse, a warp per
// row (lanes over the head dim, two columns each), weighed as attention_common.h's
// lse_weight / merged_lse say (a row no split saw anything of gets O = 0, lse = -inf).
template <bool kBf16, int kDv>
__device__ __forceinline__ void decode_combine(const FlexjitAttentionParams& p) {
  const int64_t rows = static_cast<int64_t>(p.B) * p.Hq * p.q_len;
  const int lane = thread_x() & 31;
  const int64_t warps = static_cast<int64_t>(grid_dim_x()) * (FLEXJIT_DECODE_COMBINE_THREADS / 32);
  for (int64_t row = global_thread_x() / 32; row < rows; row += warps) {
    float mx = -kInf;
    for (int s = 0; s < p.decode_splits; ++s)
      mx = fmax(mx, p.lse_part[s * rows + row]);
    const int q = static_cast<int>(row % p.q_len);
    const int64_t bh = row / p.q_len;
    const int h = static_cast<int>(bh % p.Hq), b = static_cast<int>(bh / p.Hq);
    float acc[(kDv + 63) / 64][2] = {};
    float sum = 0.f;
    if (mx != -kInf) {
      for (int s = 0; s < p.decode_splits; ++s) {
        const float wgt = lse_weight(p.lse_part[s * rows + row], mx);
        sum += wgt;
        const float* src = p.o_part + (s * rows + row) * kDv;
#pragma unroll
        for (int c = 0; c < (kDv + 63) / 64; ++c) {
          const int d = c * 64 + lane * 2;
          if (d < kDv) {
            acc[c][0] += wgt * src[d];
            acc[c][1] += wgt * src[d + 1];
          }
        }
      }
    }
    const float inv = sum > 0.f ? rcp(sum) : 0.f;
    unsigned short* dst = static_cast<unsigned short*>(p.out) + b * p.out_stride_b +
                          h * p.out_stride_h + q * p.out_stride_s;
#pragma unroll
    for (int c = 0; c < (kDv + 63) / 64; ++c) {
      const int d = c * 64 + lane * 2;
      if (d < kDv)
        asm volatile("st.global.b32 [%0], %1;\n" ::"l"(dst + d),
                     "r"(pack2<kBf16>(acc[c][0] * inv, acc[c][1] * inv))
                     : "memory");
    }
    if (p.lse && lane == 0)
      p.lse[b * p.lse_stride_b + h * p.lse_stride_h + q] = merged_lse(mx, sum);
  }
}

} // namespace flexjit::dev

#define FLEXJIT_DECODE_WS_ENTRIES(name, combine, bf16, dqk, dv)                                    \
  extern "C" __global__ void __attribute__((launch_bounds(FLEXJIT_DECODE_THREADS, 1))) name(       \
      const FlexjitAttentionParams params, const FlexjitModArgs mod_args,                          \
      const FlexjitTensorMaps maps) {                                                              \
    flexjit::dev::AttentionDecodeWs<bf16, dqk, dv>::run(params, &mod_args, maps);                  \
  }                                                                                                \
  extern "C" __global__ void __attribute__((launch_bounds(FLEXJIT_DECODE_COMBINE_THREADS)))        \
  combine(const FlexjitAttentionParams params, const FlexjitModArgs) {                             \
    flexjit::dev::decode_combine<bf16, dv>(params);                                                \
  }

// The build compiles one bitcode per kernel (cmake/EmbedTemplates.cmake).
#ifndef FLEXJIT_ONE_VARIANT
#error "attention_decode_ws.cu is built one variant at a time (-DFLEXJIT_ONE_VARIANT ...)"
#endif
FLEXJIT_DECODE_WS_ENTRIES(FLEXJIT_VARIANT_ENTRY(flexjit_attention_decode_ws),
                          FLEXJIT_VARIANT_ENTRY(flexjit_attention_decode_combine),
                          FLEXJIT_VARIANT_BF16, FLEXJIT_VARIANT_DQK, FLEXJIT_VARIANT_DV)
