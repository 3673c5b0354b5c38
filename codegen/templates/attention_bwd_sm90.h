// Attention backward for sm_90a (Hopper): warpgroup MMA (wgmma) for all five products.
//
// One CTA owns kN = 128 kv rows of one (batch, kv head): two warpgroups of 64 kv rows each
// share every Q / dO tile. It walks the query heads of the group and, for each, the q tiles
// (kM = 64 rows) the block mask's q-major lists give for its kv block (QTiles). Per q tile,
// each warpgroup for its 64 kv rows:
//   S^T  = K Q^T          wgmma, both operands in shared memory (K-major)
//   dP^T = V dO^T         likewise, issued before S^T is waited for
//   P^T  = exp(score_mod(S^T) - lse)  (masked: mask_mod on partial tiles, kv_len, empty rows)
//   dV  += P^T dO         P^T from registers, dO N-major
//   dS^T = P^T (dP^T - delta) score_mod'(S^T)
//   dK  += dS^T Q         dS^T from registers, Q N-major
// then dS^T goes to shared memory and dQ = dS K is split between the warpgroups (D = 128:
// each takes 64 head-dim columns over all 128 kv rows; D = 64: each its own 64 kv rows), an
// M-major A and N-major B wgmma, added to the fp32 dq_acc with vector reductions. dK and dV
// stay in registers over every q tile and query head. The products are issued
// asynchronously so that the elementwise work of one overlaps the tensor cores' next.
//
// Shared memory (dynamic), every tile in sm90_tiles.h's layout, 1 KiB aligned:
//   K [kN][D]  V [kN][D]  Q [2][kM][D]  dO [2][kM][D]  dS^T [kN][kM]  lse, delta [2][2][kM] f32
#pragma once

#include "codegen/templates/sm90_tiles.h"
#include "codegen/templates/wgmma.h"

namespace flexjit::dev {

__device__ __forceinline__ void red_add_v2(float* p, float a, float b) {
  asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" ::"l"(p), "f"(a), "f"(b) : "memory");
}

template <bool kBf16, int kD> struct AttentionBwdSm90 {
  static constexpr int kN = FLEXJIT_BWD_SM90_BLOCK_N; // kv rows per CTA
  static constexpr int kM = FLEXJIT_BWD_BLOCK_M;      // q rows per step
  static constexpr int kThreads = FLEXJIT_BWD_SM90_THREADS;
  static_assert(kN == 128 && kM == 64 && kThreads == 256, "two warpgroups x 64 kv rows");
  static constexpr u32 kTileBytes = kM * kD * 2; // one Q or dO stage
  static constexpr u32 kStatBytes = 2 * kM * 4;  // lse and delta of one stage
  static_assert(FLEXJIT_BWD_SM90_SMEM_BYTES(kD) ==
                    2 * kN * kD * 2 + 4 * kTileBytes + kN * kM * 2 + 2 * kStatBytes,
                "launch contract (attention_abi.h)");
  using Elem = unsigned short;
  using T = Sm90Tiles<kD, kThreads>;

  static __device__ __forceinline__ void run(const FlexjitAttentionBwdParams& p,
                                             const FlexjitModArgs* args) {
    const int tid = thread_x(), lane = tid & 31, wg = tid >> 7, warp = (tid >> 5) & 3;
    const int kv0 = block_x() * kN, h_kv = block_y(), b = block_z();
    const int group = p.Hq / p.Hkv;

    const u32 sk = smem_addr(flexjit_bwd_smem);
    const u32 sv = sk + kN * kD * 2;
    const u32 sq = sv + kN * kD * 2;     // 2 stages
    const u32 sdo = sq + 2 * kTileBytes; // 2 stages
    const u32 sds = sdo + 2 * kTileBytes;
    const u32 sstat = sds + kN * kM * 2; // 2 stages of lse [kM], delta [kM]

    const Elem* kg = static_cast<const Elem*>(p.k) + b * p.k_stride_b + h_kv * p.k_stride_h;
    const Elem* vg = static_cast<const Elem*>(p.v) + b * p.v_stride_b + h_kv * p.v_stride_h;
    T::template load<kN>(sk, kg, p.k_stride_s, kv0, p.kv_len, tid);
    T::template load<kN>(sv, vg, p.v_stride_s, kv0, p.kv_len, tid);
    cp_async_commit();

    float dk[kD / 8][4], dv[kD / 8][4];
#pragma unroll
    for (int d = 0; d < kD / 8; ++d)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        dk[d][e] = dv[d][e] = 0.f;

    // This thread's kv rows (accumulator rows) and, for the hooks, clamped.
    const int kv_row0 = kv0 + wg * 64 + warp * 16 + (lane >> 2);
    const int kv_hook[2] = {min_i(kv_row0, p.kv_len - 1), min_i(kv_row0 + 8, p.kv_len - 1)};
    const bool kv_ok[2] = {kv_row0 < p.kv_len, kv_row0 + 8 < p.kv_len};
    const u32 k_wg = sk + wg * 64 * 128, v_wg = sv + wg * 64 * 128; // this warpgroup's rows
    // dQ: D = 128, head-dim columns [64 wg, + 64) over all kN kv rows; D = 64, every column
    // over this warpgroup's kv rows.
    constexpr int kDqSteps = kD == 128 ? kN / 16 : 64 / 16;
    const int dq_step0 = kD == 128 ? 0 : wg * kDqSteps;
    const u32 dq_b = kD == 128 ? sk + wg * kN * 128 : sk;
    const int dq_col0 = (kD == 128 ? wg * 64 : 0) + (lane & 3) * 2;

    const int kv_block = kv0 / p.kv_block_size;
    for (int h = h_kv * group; h < (h_kv + 1) * group; ++h) {
      const QTiles<kM> tiles(p, b, h, kv_block);
      const int n_tiles = tiles.n_tiles;
      const Elem* qg = static_cast<const Elem*>(p.q) + b * p.q_stride_b + h * p.q_stride_h;
      const Elem* dog =
          static_cast<const Elem*>(p.d_out) + b * p.dout_stride_b + h * p.dout_stride_h;
      const float* lse = p.lse + b * p.lse_stride_b + h * p.lse_stride_h;
      const int64_t row_base = (static_cast<int64_t>(b) * p.Hq + h) * p.q_len;
      const float* delta = p.delta + row_base;
      float* dq_acc = p.dq_acc + row_base * kD;

      // Tile t's Q, dO, lse and delta into stage t % 2, one cp.async group per tile.
      auto issue = [&](int t, int q) {
        const u32 st = (t & 1) * kTileBytes;
        T::template load<kM>(sq + st, qg, p.q_stride_s, q, p.q_len, tid);
        T::template load<kM>(sdo + st, dog, p.dout_stride_s, q, p.q_len, tid);
        if (tid < 2 * kM) { // lse, then delta: 4-byte copies (rows need not be aligned)
          const int i = tid % kM, row = q + i;
          const bool valid = row < p.q_len;
          const float* src = tid < kM ? lse : delta;
          cp_async_4(sstat + (t & 1) * kStatBytes + tid * 4, valid ? src + row : src, valid);
        }
        cp_async_commit();
      };
      int q_next = 0;
      if (n_tiles > 0) {
        q_next = tiles.start(0);
        issue(0, q_next);
      }
      for (int t = 0; t < n_tiles; ++t) {
        const int q0 = q_next;
        const u32 st = (t & 1) * kTileBytes;
        // Tile t landed (this thread's copies, then everyone's, fenced for the async
        // proxy); every warpgroup is past tile t - 1, whose stage and dS^T are reused.
        cp_async_wait<0>();
        fence_proxy_async();
        sync_threads();
        if (t + 1 < n_tiles) {
          q_next = tiles.start(t + 1);
          issue(t + 1, q_next);
        }

        float s[8][4], dp[8][4];
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kD / 16; ++kk)
          wgmma_ss<kBf16, 64>(s, T::template desc_k_major<kN>(k_wg, kk),
                              T::template desc_k_major<kM>(sq + st, kk), kk > 0);
        wgmma_commit();
#pragma unroll
        for (int kk = 0; kk < kD / 16; ++kk)
          wgmma_ss<kBf16, 64>(dp, T::template desc_k_major<kN>(v_wg, kk),
                              T::template desc_k_major<kM>(sdo + st, kk), kk > 0);
        wgmma_commit();

        // P^T, element (kv row kv_row0 + 8 (e / 2), q column q0 + 8 j + 2 (lane % 4) + e % 2),
        // packed for dV += P^T dO; s keeps P^T score_mod'(S^T) (zero where P is: an infinite
        // derivative at a masked or padded element never makes a NaN). lse comes in log2
        // units, +inf where nothing is attended (past q_len, an empty row): there P = 0.
        const bool mask = t < tiles.n_part_tiles;
        const u32 stat = sstat + (t & 1) * kStatBytes + (lane & 3) * 8;
        const int qc0 = q0 + (lane & 3) * 2;
        u32 pa[4][4];
        wgmma_wait<1>();
        fence_operand(s);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          float lse2[2];
          asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];\n"
                       : "=f"(lse2[0]), "=f"(lse2[1])
                       : "r"(stat + j * 32));
          float pr[4];
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int r = e >> 1, c = e & 1, q = qc0 + j * 8 + c, qh = min_i(q, p.q_len - 1);
            const float l2 = q < p.q_len && lse2[c] != -kInf ? lse2[c] * kLog2e : kInf;
            const float raw = s[j][e] * p.scale;
            float mod = flexjit_score_mod(raw, b, h, qh, kv_hook[r], args);
            if (mask && !flexjit_mask_mod(b, h, qh, kv_hook[r], args))
              mod = -kInf;
            if (!kv_ok[r])
              mod = -kInf;
            pr[e] = ex2(__builtin_fmaf(mod, kLog2e, -l2));
            const float grad = flexjit_score_grad(raw, b, h, qh, kv_hook[r], args);
            s[j][e] = pr[e] != 0.f ? pr[e] * grad : 0.f;
          }
          pa[j >> 1][(j & 1) * 2] = pack2<kBf16>(pr[0], pr[1]);
          pa[j >> 1][(j & 1) * 2 + 1] = pack2<kBf16>(pr[2], pr[3]);
        }
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
          wgmma_rs_tn<kBf16, kD>(dv, pa[kk], T::template desc_mn_major<kM>(sdo + st, kk));
        wgmma_commit();

        // dS^T = P^T score_mod' (dP^T - delta), d / d raw score.
        wgmma_wait<1>();
        fence_operand(dp);
        u32 dsa[4][4];
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          float dl[2];
          asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];\n"
                       : "=f"(dl[0]), "=f"(dl[1])
                       : "r"(stat + kM * 4 + j * 32));
          float ds[4];
#pragma unroll
          for (int e = 0; e < 4; ++e)
            ds[e] = s[j][e] * (dp[j][e] - dl[e & 1]);
          dsa[j >> 1][(j & 1) * 2] = pack2<kBf16>(ds[0], ds[1]);
          dsa[j >> 1][(j & 1) * 2 + 1] = pack2<kBf16>(ds[2], ds[3]);
        }
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < 4; ++kk)
          wgmma_rs_tn<kBf16, kD>(dk, dsa[kk], T::template desc_mn_major<kM>(sq + st, kk));
        wgmma_commit();

        // dS^T to shared memory ([kN kv][kM q]), then dQ = dS K.
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int row = wg * 64 + warp * 16 + (lane >> 2) + r * 8;
            asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(sds + T::template off<kN>(row, j) +
                                                           (lane & 3) * 4),
                         "r"(dsa[j >> 1][(j & 1) * 2 + r])
                         : "memory");
          }
        fence_proxy_async();
        if constexpr (kD == 128)
          sync_threads(); // dQ reads both warpgroups' dS^T
        else              // only this warpgroup's: the warpgroups need not wait for each other
          asm volatile("bar.sync %0, 128;\n" ::"r"(1 + wg) : "memory");
        float dq[8][4];
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kDqSteps; ++kk)
          wgmma_ss_tt<kBf16, 64>(dq, T::template desc_mn_major<kN>(sds, dq_step0 + kk),
                                 T::template desc_mn_major<kN>(dq_b, dq_step0 + kk), kk > 0);
        wgmma_commit();
        wgmma_wait<0>();
        fence_operand(dq);
        fence_operand(dk);
        fence_operand(dv);
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int q = q0 + warp * 16 + (lane >> 2) + r * 8;
          if (q >= p.q_len)
            continue;
          float* row = dq_acc + static_cast<int64_t>(q) * kD + dq_col0;
#pragma unroll
          for (int j = 0; j < 8; ++j)
            red_add_v2(row + j * 8, dq[j][2 * r], dq[j][2 * r + 1]); // scaled by _dq
        }
      }
      cp_async_wait<0>();
      sync_threads(); // the next head reloads both stages
    }
    store_dk_dv<kBf16, kD>(p, dk, dv, b, h_kv, kv_row0, kv_ok, lane);
  }
};

} // namespace flexjit::dev
