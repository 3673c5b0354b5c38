// Shared-memory tiles for Hopper's wgmma, as both sm_90a attention kernels use them.
//
// A tile of kRows rows of kD 2-byte elements is stored as [kD / 64][kRows][64]: 128-byte
// rows in 1 KiB atoms of 8 rows, the 16-byte chunk index XOR row % 8 -- the layout of
// wgmma's 128-byte swizzle. Tiles are 1 KiB aligned. The same tile serves as a K-major
// operand (its rows are M or N, the head dim is K: Q K^T) and as an MN-major one (its rows
// are K, the head dim or the 64 columns are M / N: P V, or dS^T read as dS).
#pragma once

#include "codegen/templates/attention_common.h"
#include "codegen/templates/wgmma.h"

namespace flexjit::dev {

using u64 = unsigned long long;

template <int kD, int kThreads> struct Sm90Tiles {
  using Elem = unsigned short;           // f16 or bf16 bits
  static constexpr int kChunks = kD / 8; // 16-byte chunks per row

  // Byte offset of 16-byte chunk c of row r in a [kD / 64][kRows][64] tile.
  template <int kRows> static __device__ __forceinline__ u32 off(int r, int c) {
    return static_cast<u32>((c >> 3) * kRows * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4));
  }

  // Rows [row0, row0 + kRows) of a [len][kD] global matrix (row stride `stride`) into a
  // tile at dst, with cp.async; rows at or past `len` are zero-filled, never read.
  template <int kRows>
  static __device__ __forceinline__ void load(u32 dst, const Elem* src, int64_t stride, int row0,
                                              int len, int tid) {
    constexpr int kRowsPerPass = kThreads / kChunks; // the swizzle repeats every 8 rows
    static_assert(kRowsPerPass % 8 == 0 && kRows % kRowsPerPass == 0, "whole passes");
    const int r = tid / kChunks, c = tid % kChunks;
    dst += off<kRows>(r, c);
    src += c * 8;
    const Elem* ptr = src + (row0 + r) * stride;
    const int64_t step = kRowsPerPass * stride * 2; // bytes
#pragma unroll
    for (int i = 0; i < kRows / kRowsPerPass; ++i) {
      const int row = row0 + r + i * kRowsPerPass;
      const bool valid = row < len;
      cp_async_16(dst + i * kRowsPerPass * 128, valid ? ptr : src, valid);
      // An opaque add: the compiler keeps one pointer live, not one offset per pass.
      if (i + 1 < kRows / kRowsPerPass)
        asm("add.s64 %0, %0, %1;\n" : "+l"(ptr) : "l"(step));
    }
  }

  // A wgmma shared-memory matrix descriptor with the 128-byte swizzle: start address,
  // leading and stride byte offsets (PTX ISA, "Matrix Descriptor Format").
  static __device__ __forceinline__ u64 desc(u32 addr, u32 lbo, u32 sbo) {
    return static_cast<u64>((addr & 0x3FFFF) >> 4) | (static_cast<u64>(lbo >> 4) << 16) |
           (static_cast<u64>(sbo >> 4) << 32) | (1ull << 62);
  }
  // K-major operand at `base` (a tile of kRows rows, or 64 rows into one), k-step kk of 16
  // head-dim elements (32 bytes inside a 128-byte row); 8-row groups 1 KiB apart.
  template <int kRows> static __device__ __forceinline__ u64 desc_k_major(u32 base, int kk) {
    return desc(base + (kk >> 2) * kRows * 128 + (kk & 3) * 32, 16, 1024);
  }
  // MN-major operand at `base` (rows are K), k-step kk of 16 rows: 64-column blocks
  // kRows * 128 bytes apart (leading byte offset), 8-row groups 1 KiB apart (stride).
  template <int kRows> static __device__ __forceinline__ u64 desc_mn_major(u32 base, int kk) {
    return desc(base + kk * 16 * 128, kRows * 128, 1024);
  }
};

// The forward's two products on sm90_tiles.h tiles (the Mma policy of both sm_90a forward
// kernels), each issued and committed as one wgmma group, not awaited:
//   S = Q K^T: Q rows at q_base (64 of a tile of kQRows rows), K a tile of kN rows at
//     k_tile, kDqk deep;
//   O += P V: P from registers (kN / 16 k-steps of A fragments), V a tile of kN rows at
//     v_tile, kDv wide.
template <bool kBf16, int kQRows, int kN, int kDqk>
__device__ __forceinline__ void issue_qk(float (&s)[kN / 8][4], u32 q_base, u32 k_tile) {
  using T = Sm90Tiles<kDqk, 128>;
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < kDqk / 16; ++kk)
    wgmma_ss<kBf16, kN>(s, T::template desc_k_major<kQRows>(q_base, kk),
                        T::template desc_k_major<kN>(k_tile, kk), kk > 0);
  wgmma_commit();
}
template <bool kBf16, int kN, int kDv>
__device__ __forceinline__ void issue_pv(float (&o)[kDv / 8][4], const u32 (&a)[kN / 16][4],
                                         u32 v_tile) {
  using T = Sm90Tiles<kDv, 128>;
  wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < kN / 16; ++kk)
    wgmma_rs_tn<kBf16, kDv>(o, a[kk], T::template desc_mn_major<kN>(v_tile, kk));
  wgmma_commit();
}

} // namespace flexjit::dev
