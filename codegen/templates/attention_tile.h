// What both forward kernels (attention_fwd.cu: mma.sync for sm_80, wgmma for sm_90a)
// do alike: walk the kv tiles of one q tile through the block mask, apply score_mod /
// mask_mod / the kv_len bound to a tile of scores, and the online softmax.
//
// A score tile is s[kMT][kNB][4] in the mma.m16n8 accumulator layout (which is also
// wgmma's, per warp): m16 tile mt, n8 block j, element e is row 8 (e / 2) + lane / 4 of
// the m-tile and column 8 j + 2 (lane % 4) + e % 2 of the kv tile.
#pragma once

#include "codegen/templates/attention_abi.h"
#include "codegen/templates/attention_common.h"
#include "codegen/templates/block_schedule.h"
#include "codegen/templates/tile_scheduler.h"

namespace flexjit::dev {

// The query head of accumulator row (mt, r): one head for the whole tile (an int), or one per
// row (RowHeads: the decode kernel packs the query heads of a kv head into one tile).
template <int kMT> struct RowHeads {
  int h[kMT][2];
};
__device__ __forceinline__ int head_of(int h, int, int) {
  return h;
}
template <int kMT> __device__ __forceinline__ int head_of(const RowHeads<kMT>& h, int mt, int r) {
  return h.h[mt][r];
}

// score_mod on every element, mask_mod on every element of a partial tile (`mask`) and
// -inf past kv_len (`check`: the tile reaches past it). Hooks never see out-of-range
// indices (they may index captured buffers): q_hook holds rows clamped to q_len - 1
// (rows past it are never stored) and columns past kv_len are clamped, then masked out.
// `mask` and `check` are uniform over the CTA: one branch per tile around each loop, so
// one copy of this code serves every kind of tile. `h`: the query heads (head_of); kv_len:
// the row's keys (p.kv_len, or a sequence's own length in a KV cache).
template <int kMT, int kNB, class Heads>
__device__ __forceinline__ void apply_mods(float (&s)[kMT][kNB][4], bool mask, bool check, int kv0,
                                           int kv_len, const int (&q_hook)[kMT][2], int lane, int b,
                                           const Heads& h, const FlexjitAttentionParams& p,
                                           const FlexjitModArgs* args) {
  const int col0 = kv0 + (lane & 3) * 2;
  const int kv_last = kv_len - 1;
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int j = 0; j < kNB; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        s[mt][j][e] =
            flexjit_score_mod(s[mt][j][e] * p.scale, b, head_of(h, mt, e >> 1), q_hook[mt][e >> 1],
                              min_i(col0 + j * 8 + (e & 1), kv_last), args);
  if (mask) {
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int j = 0; j < kNB; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (!flexjit_mask_mod(b, head_of(h, mt, e >> 1), q_hook[mt][e >> 1],
                                min_i(col0 + j * 8 + (e & 1), kv_last), args))
            s[mt][j][e] = -kInf;
  }
  if (check) {
    const int col_end = kv_len - col0; // column c of this thread is valid when c < col_end
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int j = 0; j < kNB; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (j * 8 + (e & 1) >= col_end)
            s[mt][j][e] = -kInf;
  }
}

template <int kMT, int kNB, class Heads>
__device__ __forceinline__ void apply_mods(float (&s)[kMT][kNB][4], bool mask, bool check, int kv0,
                                           const int (&q_hook)[kMT][2], int lane, int b,
                                           const Heads& h, const FlexjitAttentionParams& p,
                                           const FlexjitModArgs* args) {
  apply_mods(s, mask, check, kv0, p.kv_len, q_hook, lane, b, h, p, args);
}

// Online softmax of one score tile, in two halves so that a kernel can run the first
// while an asynchronous product still accumulates into O:
//   softmax_update: s becomes P (unnormalized, exp2 based), the running row max m and this
//     thread's part of the row sum l are updated, and alphas[mt][r] = exp(m_old - m_new),
//     the factor O's rows must be scaled by;
//   rescale_o: O (o[kMT][kDB][4], the same layout over the head dim) *= alphas, eagerly or,
//     with kLazyRescale, only when some row of the warp raised its max (a warp vote; rare
//     after the first tiles).
// A row with nothing attended so far keeps m = -inf and uses 0 as the subtraction base, so
// it produces p = 0 and never inf - inf.
template <int kMT, int kNB>
__device__ __forceinline__ void softmax_update(float (&s)[kMT][kNB][4], float (&m)[kMT][2],
                                               float (&l)[kMT][2], float (&alphas)[kMT][2]) {
#pragma unroll
  for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      // The row max as a tree (log depth: the scheduler always has independent work).
      float part[kNB];
#pragma unroll
      for (int j = 0; j < kNB; ++j)
        part[j] = fmax(s[mt][j][2 * r], s[mt][j][2 * r + 1]);
#pragma unroll
      for (int w = 1; w < kNB; w *= 2)
#pragma unroll
        for (int j = 0; j + w < kNB; j += 2 * w)
          part[j] = fmax(part[j], part[j + w]);
      const float mx = quad_max(part[0]);
      const float m_new = fmax(m[mt][r], mx);
      const float base = m_new == -kInf ? 0.f : m_new;
      const float alpha = ex2((m[mt][r] - base) * kLog2e);
      m[mt][r] = m_new;
      const float base_l2 = base * kLog2e;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < kNB; ++j) {
#pragma unroll
        for (int e = 2 * r; e < 2 * r + 2; ++e) {
          s[mt][j][e] = ex2(__builtin_fmaf(s[mt][j][e], kLog2e, -base_l2));
          sum += s[mt][j][e];
        }
      }
      l[mt][r] = l[mt][r] * alpha + sum;
      alphas[mt][r] = alpha;
    }
}

// The rescale rule of every forward kernel's traits: lazy (a warp vote first) for a v tile
// of 128 columns or more, where O is 64+ registers per thread; eager at 64, where the vote
// costs more than it saves (measured on both, bench/NOTES_fwd_kernel.md).
constexpr bool lazy_rescale(int v_tile_dim) {
  return v_tile_dim >= 128;
}

template <bool kLazyRescale, int kMT, int kDB>
__device__ __forceinline__ void rescale_o(float (&o)[kMT][kDB][4], const float (&alphas)[kMT][2]) {
  bool any = true;
  if constexpr (kLazyRescale) {
    bool grew = false;
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
      grew = grew || alphas[mt][0] != 1.f || alphas[mt][1] != 1.f;
    any = __nvvm_vote_any_sync(0xffffffffu, grew);
  }
  if (any) {
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
      for (int r = 0; r < 2; ++r)
#pragma unroll
        for (int d = 0; d < kDB; ++d) {
          o[mt][d][2 * r] *= alphas[mt][r];
          o[mt][d][2 * r + 1] *= alphas[mt][r];
        }
  }
}

template <bool kLazyRescale, int kMT, int kNB, int kDB>
__device__ __forceinline__ void online_softmax(float (&s)[kMT][kNB][4], float (&m)[kMT][2],
                                               float (&l)[kMT][2], float (&o)[kMT][kDB][4]) {
  float alphas[kMT][2];
  softmax_update(s, m, l, alphas);
  rescale_o<kLazyRescale>(o, alphas);
}

// A row's logsumexp (natural log) from its running max m and its whole sum lsum (exp2
// based, softmax_update); -inf for a row nothing attends, whose O is 0.
__device__ __forceinline__ float row_lse(float m, float lsum) {
  return lsum > 0.f ? m + lg2(lsum) * kLn2 : -kInf;
}
// 1 / a row's sum, 0 for a row nothing attends (its O stays 0).
__device__ __forceinline__ float row_inv_sum(float lsum) {
  return lsum > 0.f ? rcp(lsum) : 0.f;
}

// One accumulator row r (0: row0, 1: row0 + 8) of this thread's O, normalized by inv, into
// dst (the row's first column plus this thread's, (lane % 4) * 2): kStoreDB n8 blocks of
// the head dim (a padded O has more), 4-byte stores in the input dtype (a quad writes 16
// contiguous bytes of a row per n8 block).
template <bool kBf16, int kStoreDB, int kDB>
__device__ __forceinline__ void store_o_row(unsigned short* dst, const float (&o)[kDB][4], int r,
                                            float inv) {
  static_assert(kStoreDB <= kDB, "O holds the stored columns");
#pragma unroll
  for (int d = 0; d < kStoreDB; ++d) {
    const u32 packed = pack2<kBf16>(o[d][2 * r] * inv, o[d][2 * r + 1] * inv);
    asm volatile("st.global.b32 [%0], %1;\n" ::"l"(dst + d * 8), "r"(packed) : "memory");
  }
}

// The forward's final epilogue straight from registers, for one m16 tile per warp (the
// wgmma kernels): this thread's rows q_start + row0 and + 8 of O (store_o_row) and the lse.
template <bool kBf16, int kStoreDB, int kDB>
__device__ __forceinline__ void
store_o_rows(const FlexjitAttentionParams& p, const float (&o)[kDB][4], const float (&m)[2],
             const float (&l)[2], int q_start, int row0, int lane, int b, int h) {
  using Elem = unsigned short;
  Elem* og = static_cast<Elem*>(p.out) + b * p.out_stride_b + h * p.out_stride_h;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float lsum = quad_sum(l[r]);
    const int q = q_start + row0 + r * 8;
    if (q >= p.q_len)
      continue;
    store_o_row<kBf16, kStoreDB>(og + q * p.out_stride_s + (lane & 3) * 2, o, r, row_inv_sum(lsum));
    if (p.lse && (lane & 3) == 0)
      p.lse[b * p.lse_stride_b + h * p.lse_stride_h + q] = row_lse(m[r], lsum);
  }
}

// What one forward CTA works on: its work tile (tile_scheduler.h: q tile, query head h,
// batch b) and kv head (GQA), the global Q / K / V at that tile and heads, and its shared
// memory: Q [kM][kTQ], then kStages K tiles [kN][kTQ] and kStages V tiles [kN][kTV], all
// 2-byte elements (kTQ, kTV: the q/k and v head dims' tile widths, flexjit_tile_dim).
template <int kM, int kN, int kTQ, int kTV, int kStages> struct FwdCta {
  using Elem = unsigned short; // f16 or bf16 bits
  static constexpr u32 kKStageBytes = kN * kTQ * 2, kVStageBytes = kN * kTV * 2;
  int q_start, h, b, h_kv;
  const Elem *qg, *kg, *vg;
  u32 sq, sk, sv;

  // The grid's work tile: one per CTA.
  __device__ __forceinline__ FwdCta(const FlexjitAttentionParams& p, u32 smem)
      : FwdCta(p, smem, grid_work()) {}
  __device__ __forceinline__ FwdCta(const FlexjitAttentionParams& p, u32 smem, FwdWork w) {
    q_start = w.q_tile * kM;
    h = w.h;
    b = w.b;
    h_kv = h / (p.Hq / p.Hkv);
    qg = static_cast<const Elem*>(p.q) + b * p.q_stride_b + h * p.q_stride_h +
         q_start * p.q_stride_s;
    kg = static_cast<const Elem*>(p.k) + b * p.k_stride_b + h_kv * p.k_stride_h;
    vg = static_cast<const Elem*>(p.v) + b * p.v_stride_b + h_kv * p.v_stride_h;
    sq = smem;
    sk = sq + kM * kTQ * 2;
    sv = sk + kStages * kKStageBytes;
  }
};

} // namespace flexjit::dev
