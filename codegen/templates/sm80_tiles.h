// Shared-memory tiles for mma.sync (sm_80 and later) and the forward's two products on them:
// the Mma policy of the sm_80 forward (attention_fwd.cu), as sm90_tiles.h's issue_qk /
// issue_pv are the sm_90a kernels'.
//
// A tile of rows of kT 2-byte elements (kT a multiple of 64) keeps each row's 16-byte chunk c
// at chunk c ^ (row % 8): the XOR flips only the chunk's low three bits, so every 64-element
// column block keeps its chunks; conflict free for ldmatrix and cp.async.
#pragma once

#include "codegen/templates/attention_common.h"

namespace flexjit::dev {

template <int kT> struct Sm80Tile {
  static constexpr int kChunks = kT / 8;
  static constexpr u32 kRowBytes = kT * 2;
  static __device__ __forceinline__ u32 swz(int row, int chunk) {
    return static_cast<u32>(row * kRowBytes + ((chunk ^ (row & 7)) << 4));
  }
  // An ldmatrix address of chunk pair 0 (see lane_addr) moved to chunk pair kk (16 columns
  // on): the pair's position inside its 128-byte block is the XOR, the block an add (one
  // XOR when a row is a power of two of bytes, since the row offset then has no bits there).
  static __device__ __forceinline__ u32 pair(u32 addr, int kk) {
    if constexpr ((kRowBytes & (kRowBytes - 1)) == 0)
      return addr ^ (kk * 32);
    else
      return (addr ^ ((kk & 3) * 32)) + (kk >> 2) * 128;
  }
  // The address lane `lane` gives ldmatrix for the 16 x 16 block (row 0, chunks 0-1) of a
  // tile at `base` (1 KiB aligned) when its rows are (lane & 7) + 8 * row_bit and its chunk
  // is chunk_bit; chunk pair kk is pair() of it, row block n this address plus n * 16 rows.
  static __device__ __forceinline__ u32 lane_addr(u32 base, int row_bit, int chunk_bit, int lane) {
    return base + swz((lane & 7) + 8 * row_bit, chunk_bit);
  }
};

// S (kMT m16 tiles x kN columns) += Q K^T over the head dim's own kDqk / 16 k-steps (never a
// tile's padding). Q's A fragments come from registers (q_regs[mt][kk], kQInRegs) or from the
// Q tile through ldmatrix (q_addr: this lane's address for m-tile 0). K tile rows are B's
// columns: non-transposed ldmatrix gives col-major B fragments; k_lane is this lane's address
// for 16-row block 0 and chunk pair 0.
template <bool kBf16, class TQ, int kMT, int kN, int kDqk, bool kQInRegs, int kQM, int kQK>
__device__ __forceinline__ void sm80_qk(float (&s)[kMT][kN / 8][4],
                                        const u32 (&q_regs)[kQM][kQK][4], u32 q_addr, u32 k_lane) {
#pragma unroll
  for (int kk = 0; kk < kDqk / 16; ++kk) {
    u32 qf[kMT][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
      if constexpr (kQInRegs) {
#pragma unroll
        for (int e = 0; e < 4; ++e)
          qf[mt][e] = q_regs[mt][kk][e];
      } else {
        ldmatrix_x4(qf[mt], TQ::pair(q_addr + mt * 16 * TQ::kRowBytes, kk));
      }
    }
#pragma unroll
    for (int np = 0; np < kN / 16; ++np) {
      u32 bf[4];
      ldmatrix_x4(bf, TQ::pair(k_lane, kk) + np * 16 * TQ::kRowBytes);
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        mma_16816<kBf16>(s[mt][2 * np], qf[mt], bf[0], bf[1]);
        mma_16816<kBf16>(s[mt][2 * np + 1], qf[mt], bf[2], bf[3]);
      }
    }
  }
}

// O (kMT m16 tiles x kDv columns) += P V, P the softmax's probabilities in the S accumulator
// layout, which is the A-fragment layout of the next mma (packed per k-step); V rows are B's
// rows (k-major), so the transposing ldmatrix gives col-major B fragments; v_lane as k_lane.
template <bool kBf16, class TV, int kMT, int kN, int kDv, int kDB>
__device__ __forceinline__ void sm80_pv(float (&o)[kMT][kDB][4], const float (&p)[kMT][kN / 8][4],
                                        u32 v_lane) {
#pragma unroll
  for (int kk = 0; kk < kN / 16; ++kk) {
    u32 a[kMT][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
      pack_frag<kBf16>(p[mt][2 * kk], p[mt][2 * kk + 1], a[mt]);
#pragma unroll
    for (int dp = 0; dp < kDv / 16; ++dp) {
      u32 bf[4];
      ldmatrix_x4_trans(bf, TV::pair(v_lane, dp) + kk * 16 * TV::kRowBytes);
#pragma unroll
      for (int mt = 0; mt < kMT; ++mt) {
        mma_16816<kBf16>(o[mt][2 * dp], a[mt], bf[0], bf[1]);
        mma_16816<kBf16>(o[mt][2 * dp + 1], a[mt], bf[2], bf[3]);
      }
    }
  }
}

} // namespace flexjit::dev
