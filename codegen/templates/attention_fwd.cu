// Forward attention, FlashAttention-2 style, for sm_80 and later: mma.sync tensor cores,
// ldmatrix, cp.async multi-stage buffering of K/V tiles, online softmax in fp32.
//
// One CTA computes BLOCK_M = 128 query rows of one (batch, query head) with 4 warps, 32
// rows per warp (two m16 tiles, so every K/V fragment read from shared memory feeds two
// mma); two CTAs per SM. The kv sequence is walked in BLOCK_N row tiles (D=64: 64 with Q
// fragments in registers, D=128: 32 with Q re-read from shared memory per tile; see
// attention_abi.h) through a STAGES-deep cp.async ring: first the block mask's partial
// tiles (mask_mod per element), then its full tiles (no mask call); score_mod is applied to
// every element. CTAs run the q tiles last to first, so that under causal-like masks the
// longest rows start first. See attention_abi.h for the launch contract; the hooks are
// flexjit_mask_mod / flexjit_score_mod (flexjit_abi.h).
//
// Policies (../shared/DESIGN.md): the tile schedule is the grid's (FwdCta: the last q tile
// first), the kv walk KvTiles (block_schedule.h), the KV source CpAsyncKvRing (kv_source.h),
// the products sm80_qk / sm80_pv (sm80_tiles.h), the score tile apply_mods, the softmax
// online_softmax (attention_tile.h); the epilogue stages O in shared memory.
//
// Shared memory (dynamic), in the input dtype, rows of D elements in 16-byte chunks whose
// index is XOR-swizzled with (row % 8) so that ldmatrix and cp.async are conflict free:
//   Q [BLOCK_M][D]  (reused to stage the output)   K [STAGES][BLOCK_N][D]   V [STAGES][BLOCK_N][D]
//
// Variant builds (tools/fwd_smoke) may override the tile configuration with -D
// FLEXJIT_FWD_VARIANT and the FLEXJIT_FWD_V_* macros below; the shipped build uses the
// defaults, which must match attention_abi.h.
#include "codegen/templates/attention_abi.h"
#include "codegen/templates/attention_common.h"
#include "codegen/templates/attention_tile.h"
#include "codegen/templates/kv_source.h"
#include "codegen/templates/sm80_tiles.h"

// 1 KiB aligned: swizzled addresses are formed with XOR on address bits 4-7.
extern __shared__ __attribute__((aligned(1024))) unsigned char flexjit_fwd_smem[];

#if __CUDA_ARCH__ >= 900
#include "codegen/templates/attention_fwd_sm90.h"
#endif

namespace flexjit::dev {

// Per-(Dqk, Dv) traits of the sm_80 (mma.sync) forward, from the launch rule every user of
// the kernel shares (flexjit_fwd_sm80_shape, attention_abi.h). kTQ / kTV: the q/k and the
// v/out head dims' widths in shared memory (padded to whole swizzle atoms).
template <int kDqk, int kDv> struct FwdSm80Traits {
  static constexpr FlexjitFwdShape kShape = flexjit_fwd_sm80_shape(kDqk, kDv);
  static constexpr int kTQ = flexjit_tile_dim(kDqk), kTV = flexjit_tile_dim(kDv);
  static constexpr int kWarps = kShape.threads / 32;
  static constexpr int kN = kShape.block_n;
  static constexpr int kStages = kShape.stages;
  // Q's A fragments stay in registers where the tile is narrow (64); wider, Q is re-read
  // from shared memory per kv tile.
  static constexpr bool kQInRegs = kTQ == 64;
  static constexpr bool kLazyRescale = lazy_rescale(kTV);
  static constexpr int kMinBlocks = kWarps == 4 ? 2 : 1; // CTAs per SM the registers allow
  static_assert(kStages >= 2, "head dims no kernel can have (flexjit_fwd_sm80_shape)");
};

template <bool kBf16, int kDqk, int kDv> struct AttentionFwd {
  using Cfg = FwdSm80Traits<kDqk, kDv>;
  static constexpr int kM = FLEXJIT_FWD_BLOCK_M;
  static constexpr int kN = Cfg::kN;
  static constexpr int kWarps = Cfg::kWarps;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kMT = kM / (16 * kWarps); // m16 tiles per warp
  static constexpr int kRows = 16 * kMT;         // query rows per warp
  static constexpr bool kQInRegs = Cfg::kQInRegs;
  static constexpr int kStages = Cfg::kStages; // K/V tiles in flight (cp.async ring)
  static constexpr bool kLazyRescale = Cfg::kLazyRescale;
  using TQ = Sm80Tile<Cfg::kTQ>; // Q and K tiles
  using TV = Sm80Tile<Cfg::kTV>; // V tiles, and O staged for the store
  static_assert(kStages >= 2 && kStages <= 4, "pipeline depth");
  static_assert(kM == 16 * kMT * kWarps, "warps x m-tiles cover BLOCK_M");
  static_assert(kDqk % 16 == 0 && kDv % 16 == 0 && kN % 16 == 0, "mma tiles are 16 wide");
  static_assert(Cfg::kTV <= Cfg::kTQ, "O is staged in the Q tile");
  static_assert(kRows * (kDv / 8) % 32 == 0, "the output store splits evenly over a warp");
  static_assert(FLEXJIT_FWD_BLOCK_N % kN == 0, "block-mask tiles hold whole kernel tiles");
  static_assert(Cfg::kShape.smem_bytes ==
                    (kM * Cfg::kTQ + kStages * kN * (Cfg::kTQ + Cfg::kTV)) * 2,
                "smem layout (attention_abi.h)");

  using Elem = unsigned short; // f16 or bf16 bits

  // Copies rows [row0, row0 + kTileRows) x the first kReal columns of a global matrix (row
  // stride `stride`) into a swizzled tile of T; rows at or past `len` are zero-filled, never
  // read (the copy then points at row 0, which exists whenever len > 0); the columns past
  // kReal (a padded head dim) are neither copied nor ever read. A pass covers whole rows when the
  // threads split into them (kLoadChunks = the row's chunks), else 64-column blocks. The source
  // address advances by an opaque add per pass, so that the compiler does not keep one 64-bit
  // offset per pass live across the kv loop.
  template <class T, int kTileRows, int kReal>
  static __device__ __forceinline__ void load_tile(u32 dst, const Elem* src, int64_t stride,
                                                   int row0, int len, int tid) {
    constexpr int kLoadChunks = kThreads % T::kChunks == 0 ? T::kChunks : 8;
    constexpr int kRowsPerPass = kThreads / kLoadChunks;
    static_assert(kThreads % kLoadChunks == 0 && kTileRows % kRowsPerPass == 0 &&
                      kRowsPerPass % 8 == 0,
                  "tile loads split evenly over the threads");
    const int r = tid / kLoadChunks, c = tid % kLoadChunks;
    dst += T::swz(r, c);
    src += c * 8;
    const Elem* ptr = src + (row0 + r) * stride;
    const int64_t step = kRowsPerPass * stride * 2; // bytes
#pragma unroll
    for (int i = 0; i < kTileRows / kRowsPerPass; ++i) {
      const int row = row0 + r + i * kRowsPerPass;
      const bool valid = row < len;
#pragma unroll
      for (int j = 0; j < T::kChunks / kLoadChunks; ++j)
        if (kReal == T::kChunks * 8 || c + j * kLoadChunks < kReal / 8)
          cp_async_16(dst + i * kRowsPerPass * T::kRowBytes + j * 128, valid ? ptr + j * 64 : src,
                      valid);
      if (i + 1 < kTileRows / kRowsPerPass)
        asm("add.s64 %0, %0, %1;\n" : "+l"(ptr) : "l"(step));
    }
  }

  struct State {
    u32 q[kQInRegs ? kMT : 1][kQInRegs ? kDqk / 16 : 1][4]; // A fragments of this warp's Q rows
    u32 q_addr;               // else: where this lane's ldmatrix reads them (m-tile 0)
    float o[kMT][kDv / 8][4]; // output accumulator, kRows x kDv
    float m[kMT][2];          // running row max (natural units, after score_mod), rows g and g+8
    float l[kMT][2];          // running row sum of exp (this thread's columns only)
  };

  // One kv tile: S = Q K^T, scale, score_mod, mask, online softmax, O += P V.
  // mask: call mask_mod (partial tile). check: the tile reaches past kv_len.
  static __device__ __forceinline__ void step(State& st, u32 k_lane, u32 v_lane, int kv0, bool mask,
                                              bool check, const int (&q_hook)[kMT][2], int lane,
                                              int b, int h, const FlexjitAttentionParams& p,
                                              const FlexjitModArgs* args) {
    float s[kMT][kN / 8][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int j = 0; j < kN / 8; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          s[mt][j][e] = 0.f;

    sm80_qk<kBf16, TQ, kMT, kN, kDqk, kQInRegs>(s, st.q, st.q_addr, k_lane);
    apply_mods(s, mask, check, kv0, q_hook, lane, b, h, p, args);
    online_softmax<kLazyRescale>(s, st.m, st.l, st.o);

    sm80_pv<kBf16, TV, kMT, kN, kDv>(st.o, s, v_lane);
  }

  static __device__ __forceinline__ void run(const FlexjitAttentionParams& p,
                                             const FlexjitModArgs* args) {
    const int tid = thread_x(), lane = tid & 31, warp = tid >> 5;
    const FwdCta<kM, kN, Cfg::kTQ, Cfg::kTV, kStages> cta(p, smem_addr(flexjit_fwd_smem));
    const int q_start = cta.q_start, h = cta.h, b = cta.b;
    const Elem *qg = cta.qg, *kg = cta.kg, *vg = cta.vg;
    const u32 sq = cta.sq, sk = cta.sk, sv = cta.sv;

    KvTiles<kN> tiles(p, b, h, q_start);
    const int n_tiles = tiles.n_tiles;

    // The load side runs kStages - 1 tiles ahead of the compute side (kv_source.h).
    CpAsyncKvRing<kStages> ring;
    auto load = [&](int kv, int stage) {
      load_tile<TQ, kN, kDqk>(sk + stage * cta.kKStageBytes, kg, p.k_stride_s, kv, p.kv_len, tid);
      load_tile<TV, kN, kDv>(sv + stage * cta.kVStageBytes, vg, p.v_stride_s, kv, p.kv_len, tid);
    };

    load_tile<TQ, kM, kDqk>(sq, qg, p.q_stride_s, 0, p.q_len - q_start, tid);
#pragma unroll
    for (int k = 0; k < kStages - 1; ++k)
      ring.produce(k, k, tiles, load); // the Q tile rides in tile 0's group
    ring.acquire();

    State st;
    {
      const int row = warp * kRows + (lane & 7) + ((lane >> 3) & 1) * 8;
      st.q_addr = sq + TQ::swz(row, lane >> 4);
      if constexpr (kQInRegs) {
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
          for (int kk = 0; kk < kDqk / 16; ++kk)
            ldmatrix_x4(st.q[mt][kk], TQ::pair(st.q_addr + mt * 16 * TQ::kRowBytes, kk));
      }
    }
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
      for (int d = 0; d < kDv / 8; ++d)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          st.o[mt][d][e] = 0.f;
      st.m[mt][0] = st.m[mt][1] = -kInf;
      st.l[mt][0] = st.l[mt][1] = 0.f;
    }

    const int q_row0 = q_start + warp * kRows + (lane >> 2);
    int q_hook[kMT][2];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
      q_hook[mt][0] = min_i(q_row0 + mt * 16, p.q_len - 1);
      q_hook[mt][1] = min_i(q_row0 + mt * 16 + 8, p.q_len - 1);
    }
    // K: row bit = lane bit 4, chunk bit = lane bit 3 (B fragments of two n8 blocks);
    // V (transposed): row bit = lane bit 3, chunk bit = lane bit 4.
    const u32 k_lane = TQ::lane_addr(sk, (lane >> 4) & 1, (lane >> 3) & 1, lane);
    const u32 v_lane = TV::lane_addr(sv, (lane >> 3) & 1, lane >> 4, lane);
    int stage = 0;
    for (int i = 0; i < n_tiles; ++i) {
      const int kv0 = ring.pop();
      // Tile i: waited above for i == 0; the stage of tile i - 1 is refilled with tile
      // i + kStages - 1.
      if (i > 0)
        ring.acquire();
      ring.produce(i + kStages - 1, kStages - 2, tiles, load);
      step(st, k_lane + stage * cta.kKStageBytes, v_lane + stage * cta.kVStageBytes, kv0,
           i<tiles.n_part_tiles, kv0 + kN> p.kv_len, q_hook, lane, b, h, p, args);
      stage = stage == kStages - 1 ? 0 : stage + 1;
    }
    cp_async_wait<0>(); // no copy may still target the Q tile's smem neighbours

    // Epilogue: normalize, stage this warp's rows (in V's layout) in the bytes of its own
    // rows of the Q tile (no other warp reads them), then 16-byte stores.
    const u32 so = sq + warp * kRows * TQ::kRowBytes;
    asm volatile("bar.warp.sync -1;\n" ::: "memory");
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float l = quad_sum(st.l[mt][r]);
        const float inv = row_inv_sum(l);
        const int row = mt * 16 + (lane >> 2) + r * 8; // of this warp's rows
#pragma unroll
        for (int d = 0; d < kDv / 8; ++d) {
          const u32 packed = pack2<kBf16>(st.o[mt][d][2 * r] * inv, st.o[mt][d][2 * r + 1] * inv);
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(so + TV::swz(row, d) + (lane & 3) * 4),
                       "r"(packed)
                       : "memory");
        }
        const int q = q_start + warp * kRows + row;
        if (p.lse && (lane & 3) == 0 && q < p.q_len)
          p.lse[b * p.lse_stride_b + h * p.lse_stride_h + q] = row_lse(st.m[mt][r], l);
      }
    asm volatile("bar.warp.sync -1;\n" ::: "memory");
    Elem* og = static_cast<Elem*>(p.out) + b * p.out_stride_b + h * p.out_stride_h;
    constexpr int kOutChunks = kDv / 8;
#pragma unroll
    for (int i = 0; i < kRows * kOutChunks / 32; ++i) {
      const int idx = lane + i * 32;
      const int r = idx / kOutChunks, c = idx % kOutChunks;
      const int q = q_start + warp * kRows + r;
      if (q < p.q_len) {
        u32 x0, x1, x2, x3;
        asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(x0), "=r"(x1), "=r"(x2), "=r"(x3)
                     : "r"(so + TV::swz(r, c))
                     : "memory");
        Elem* dst = og + q * p.out_stride_s + c * 8;
        asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"l"(dst), "r"(x0), "r"(x1),
                     "r"(x2), "r"(x3)
                     : "memory");
      }
    }
  }
};

} // namespace flexjit::dev

#if __CUDA_ARCH__ >= 900
// Hopper: the wgmma kernel (attention_fwd_sm90.h), one CTA of two warpgroups per SM.
#define FLEXJIT_FWD_ENTRY(name, bf16, dqk, dv)                                                     \
  static_assert(dqk == dv, "the v2 sm_90a kernel has one head dim");                               \
  extern "C" __global__ void __attribute__((                                                       \
      launch_bounds(FLEXJIT_FWD_SM90_THREADS, flexjit::dev::FwdSm90Traits<dqk, dv>::kMinBlocks)))  \
  name(const FlexjitAttentionParams params, const FlexjitModArgs mod_args) {                       \
    flexjit::dev::AttentionFwdSm90<bf16, dqk>::run(params, &mod_args);                             \
  }
#else
#define FLEXJIT_FWD_ENTRY(name, bf16, dqk, dv)                                                     \
  extern "C" __global__ void                                                                       \
      __attribute__((launch_bounds(flexjit::dev::AttentionFwd<bf16, dqk, dv>::kThreads,            \
                                   flexjit::dev::FwdSm80Traits<dqk, dv>::kMinBlocks)))             \
      name(const FlexjitAttentionParams params, const FlexjitModArgs mod_args) {                   \
    flexjit::dev::AttentionFwd<bf16, dqk, dv>::run(params, &mod_args);                             \
  }
#endif

// The build compiles one bitcode per kernel (cmake/EmbedTemplates.cmake); without
// FLEXJIT_ONE_VARIANT (tools/fwd_smoke) the head dims 64 and 128.
#ifdef FLEXJIT_ONE_VARIANT
FLEXJIT_FWD_ENTRY(FLEXJIT_VARIANT_ENTRY(flexjit_attention_fwd), FLEXJIT_VARIANT_BF16,
                  FLEXJIT_VARIANT_DQK, FLEXJIT_VARIANT_DV)
#else
FLEXJIT_FWD_ENTRY(flexjit_attention_fwd_f16_d64, false, 64, 64)
FLEXJIT_FWD_ENTRY(flexjit_attention_fwd_f16_d128, false, 128, 128)
FLEXJIT_FWD_ENTRY(flexjit_attention_fwd_bf16_d64, true, 64, 64)
FLEXJIT_FWD_ENTRY(flexjit_attention_fwd_bf16_d128, true, 128, 128)
#endif
