// Forward attention for sm_90a (Hopper): warpgroup MMA (wgmma) for both products.
//
// One CTA computes BLOCK_M = 128 query rows of one (batch, query head) with two
// warpgroups of 64 rows each; both read the same K/V tiles. Per kv tile of kN = 128
// rows: S = Q K^T by wgmma with both operands in shared memory, score_mod / mask_mod and
// the online softmax in registers (attention_tile.h; wgmma's accumulator layout per
// warp is mma.m16n8's), then O += P V by wgmma with P from registers and V (N-major)
// from shared memory. K/V tiles come through a 2-stage cp.async ring as in the sm_80
// kernel; the whole CTA syncs once per tile, so two CTAs per SM (kN = 64, at most 128
// registers) are what overlaps one CTA's softmax with the other's tensor-core work.
//
// Shared memory (dynamic), in the input dtype, every tile in sm90_tiles.h's layout:
//   Q [BLOCK_M][D]   K [STAGES][kN][D]   V [STAGES][kN][D]
#pragma once

#include "codegen/templates/attention_tile.h"
#include "codegen/templates/sm90_tiles.h"
#include "codegen/templates/wgmma.h"

// Variant builds (tools/fwd_smoke) may override the kv tile and the CTAs per SM; the
// shipped build uses attention_abi.h's values.
#ifndef FLEXJIT_FWD_V_SM90_N_D64
#define FLEXJIT_FWD_V_SM90_N_D64 FLEXJIT_FWD_SM90_BLOCK_N
#endif
#ifndef FLEXJIT_FWD_V_SM90_N_D128
#define FLEXJIT_FWD_V_SM90_N_D128 FLEXJIT_FWD_SM90_BLOCK_N
#endif
#ifndef FLEXJIT_FWD_V_SM90_MINB_D64
#define FLEXJIT_FWD_V_SM90_MINB_D64 2
#endif
#ifndef FLEXJIT_FWD_V_SM90_MINB_D128
#define FLEXJIT_FWD_V_SM90_MINB_D128 2
#endif
namespace flexjit::dev {

// Per-(Dqk, Dv) traits of this kernel: its kv tile and the CTAs per SM the register
// allocation must allow.
template <int kDqk, int kDv> struct FwdSm90Traits;
template <> struct FwdSm90Traits<64, 64> {
  static constexpr int kN = FLEXJIT_FWD_V_SM90_N_D64;
  static constexpr int kMinBlocks = FLEXJIT_FWD_V_SM90_MINB_D64;
  static constexpr bool kLazyRescale = lazy_rescale(64);
};
template <> struct FwdSm90Traits<128, 128> {
  static constexpr int kN = FLEXJIT_FWD_V_SM90_N_D128;
  static constexpr int kMinBlocks = FLEXJIT_FWD_V_SM90_MINB_D128;
  static constexpr bool kLazyRescale = lazy_rescale(128);
};

template <bool kBf16, int kD> struct AttentionFwdSm90 {
  using Tr = FwdSm90Traits<kD, kD>;
  static constexpr int kM = FLEXJIT_FWD_BLOCK_M; // two warpgroups x 64 rows
  static constexpr int kN = Tr::kN;
  static constexpr int kThreads = FLEXJIT_FWD_SM90_THREADS;
  static constexpr int kStages = FLEXJIT_FWD_SM90_STAGES;
  static constexpr bool kLazyRescale = Tr::kLazyRescale;
  static_assert(kM == 128 && kThreads == 256, "two warpgroups of 64 rows");
  static_assert(kStages == 2, "the ring below is written for two stages");
  static_assert(kN % 64 == 0 && kN <= 256 && kD % 64 == 0, "wgmma tile shapes");
#ifndef FLEXJIT_FWD_VARIANT
  static_assert(kN == FLEXJIT_FWD_SM90_BLOCK_N &&
                    FLEXJIT_FWD_SM90_SMEM_BYTES(kD) == (kM + 2 * kStages * kN) * kD * 2,
                "launch contract (attention_abi.h)");
#endif

  using Elem = unsigned short; // f16 or bf16 bits

  using T = Sm90Tiles<kD, kThreads>;

  static __device__ __forceinline__ void run(const FlexjitAttentionParams& p,
                                             const FlexjitModArgs* args) {
    const int tid = thread_x(), lane = tid & 31, wg = tid >> 7, warp = (tid >> 5) & 3;
    const FwdCta<kM, kN, kD, kD, kStages> cta(p, smem_addr(flexjit_fwd_smem));
    const int q_start = cta.q_start, h = cta.h, b = cta.b;
    const Elem *qg = cta.qg, *kg = cta.kg, *vg = cta.vg;
    const u32 sq = cta.sq, sk = cta.sk, sv = cta.sv;
    constexpr u32 kStageBytes = cta.kKStageBytes;

    KvTiles<kN> tiles(p, b, h, q_start);
    const int n_tiles = tiles.n_tiles;
    // Tile t + 1 loads while tile t computes; one cp.async group per tile (empty past the
    // last), so that wait_group 0 at tile t means it has landed.
    int load_stage = 0, kv_next = 0;
    auto issue = [&](int t) {
      if (t < n_tiles) {
        kv_next = tiles.next_start(t);
        const u32 at = load_stage * kStageBytes;
        T::template load<kN>(sk + at, kg, p.k_stride_s, kv_next, p.kv_len, tid);
        T::template load<kN>(sv + at, vg, p.v_stride_s, kv_next, p.kv_len, tid);
      }
      load_stage ^= 1;
      cp_async_commit();
    };

    T::template load<kM>(sq, qg, p.q_stride_s, 0, p.q_len - q_start, tid);
    issue(0); // the Q tile rides in tile 0's group

    float o[1][kD / 8][4], m[1][2], l[1][2];
#pragma unroll
    for (int d = 0; d < kD / 8; ++d)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        o[0][d][e] = 0.f;
    m[0][0] = m[0][1] = -kInf;
    l[0][0] = l[0][1] = 0.f;

    const int row0 = wg * 64 + warp * 16 + (lane >> 2); // this thread's rows: row0, row0 + 8
    const int q_hook[1][2] = {
        {min_i(q_start + row0, p.q_len - 1), min_i(q_start + row0 + 8, p.q_len - 1)}};
    const u32 q_base = sq + wg * 64 * 128; // this warpgroup's rows of every 64-column block
    u32 stage = 0;
    for (int i = 0; i < n_tiles; ++i) {
      const int kv0 = kv_next;
      // Tile i has landed once this thread's copies are done and every thread passed the
      // barrier (after a proxy fence: wgmma reads shared memory through the async proxy);
      // past it, both warpgroups have also finished tile i - 1, whose stage is reloaded.
      cp_async_wait<0>();
      fence_proxy_async();
      sync_threads();
      issue(i + 1);

      float s[1][kN / 8][4];
      issue_qk<kBf16, kM, kN, kD>(s[0], q_base, sk + stage);
      wgmma_wait<0>();

      apply_mods(s, i<tiles.n_part_tiles, kv0 + kN> p.kv_len, kv0, q_hook, lane, b, h, p, args);
      online_softmax<kLazyRescale>(s, m, l, o);

      // O += P V; the S accumulator layout is the register A-fragment layout.
      u32 a[kN / 16][4];
      pack_frags<kBf16>(s[0], a);
      issue_pv<kBf16, kN, kD>(o[0], a, sv + stage);
      wgmma_wait<0>();
      stage ^= kStageBytes;
    }
    cp_async_wait<0>();

    store_o_rows<kBf16, kD / 8>(p, o[0], m[0], l[0], q_start, row0, lane, b, h);
  }
};

} // namespace flexjit::dev
