// Forward attention, FlashAttention-2 style, for sm_80 and later: mma.sync tensor cores,
// ldmatrix, cp.async double buffering of K/V tiles, online softmax in fp32.
//
// One CTA computes BLOCK_M = 128 query rows of one (batch, query head) with 8 warps, 16
// rows per warp; Q fragments stay in registers for D=128 and are re-read from smem per tile
// for D=64 (so that D=64 fits 128 registers and runs two CTAs per SM). The kv sequence is
// walked in BLOCK_N = 64 row tiles: first the block mask's partial tiles (mask_mod per
// element), then its full tiles (no mask call); score_mod is applied to every element. See
// attention_abi.h for the launch contract; the hooks are flexjit_mask_mod / flexjit_score_mod
// (flexjit_abi.h).
//
// Shared memory (dynamic), in the input dtype, rows of D elements in 16-byte chunks whose
// index is XOR-swizzled with (row % 8) so that ldmatrix and cp.async are conflict free:
//   Q [BLOCK_M][D]  (reused to stage the output)   K [2][BLOCK_N][D]   V [2][BLOCK_N][D]
#include "codegen/templates/attention_abi.h"
#include "codegen/templates/attention_common.h"

// 1 KiB aligned: swizzled addresses are formed with XOR on address bits 4-7.
extern __shared__ __attribute__((aligned(1024))) unsigned char flexjit_fwd_smem[];

namespace flexjit_dev {

template <bool kBf16, int kD> struct AttentionFwd {
  static constexpr int kM = FLEXJIT_FWD_BLOCK_M;
  static constexpr int kN = FLEXJIT_FWD_BLOCK_N;
  static constexpr int kWarps = FLEXJIT_FWD_WARPS;
  static constexpr int kThreads = 32 * kWarps;
  static constexpr int kChunks = kD / 8; // 16-byte chunks per smem row
  // Q fragments live in registers for the whole kv loop, or are re-read from smem per tile
  // (frees kD / 4 registers; D=64 then fits 128 registers, two CTAs per SM).
  static constexpr bool kQInRegs = kD > 64;
  static_assert(kM == 16 * kWarps, "one warp per 16 query rows");
  static_assert(kD % 16 == 0 && kN % 16 == 0, "mma tiles are 16 wide");
  static_assert(kM * kChunks % kThreads == 0 && kN * kChunks % kThreads == 0,
                "tile loads split evenly over the threads");
  static_assert(FLEXJIT_FWD_SMEM_BYTES(kD) == (kM + 4 * kN) * kD * 2, "smem layout");

  using Elem = unsigned short; // f16 or bf16 bits

  // Byte offset of 16-byte chunk `chunk` of row `row` in a swizzled [rows][kD] tile.
  static __device__ __forceinline__ u32 swz(int row, int chunk) {
    return static_cast<u32>((row * kChunks + (chunk ^ (row & 7))) * 16);
  }

  // Copies rows [row0, row0 + kRows) of a [len][kD] global matrix (row stride `stride`)
  // into a swizzled smem tile; rows at or past `len` are zero-filled, never read (the copy
  // then points at row 0, which exists whenever len > 0).
  template <int kRows>
  static __device__ __forceinline__ void load_tile(u32 dst, const Elem* src, int64_t stride,
                                                   int row0, int len, int tid) {
    constexpr int kRowsPerPass = kThreads / kChunks;
    const int r = tid / kChunks, c = tid % kChunks;
    dst += swz(r, c);
    src += c * 8;
#pragma unroll
    for (int i = 0; i < kRows / kRowsPerPass; ++i) {
      const int row = row0 + r + i * kRowsPerPass;
      const bool valid = row < len;
      cp_async_16(dst + i * kRowsPerPass * kD * 2, src + (valid ? row : 0) * stride, valid);
    }
  }

  struct State {
    u32 q[kQInRegs ? kD / 16 : 1][4]; // A fragments of this warp's 16 x kD slice of Q
    u32 q_addr;                       // else: where this lane's ldmatrix reads them
    float o[kD / 8][4];               // output accumulator, 16 x kD
    float m[2]; // running row max (natural units, after score_mod), rows g and g+8
    float l[2]; // running row sum of exp (this thread's columns only)
  };

  // One kv tile: S = Q K^T, scale, score_mod, mask, online softmax, O += P V.
  // kMask: call mask_mod (partial tile). kCheck: the tile reaches past kv_len.
  template <bool kMask, bool kCheck>
  static __device__ __forceinline__ void
  step(State& st, u32 sk, u32 sv, int kv0, const int (&q_hook)[2], int lane, int b, int h,
       const FlexjitAttentionParams& p, const FlexjitModArgs* args) {
    float s[kN / 8][4];
#pragma unroll
    for (int j = 0; j < kN / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        s[j][e] = 0.f;

    // K tile rows are B's columns: non-transposed ldmatrix gives col-major B fragments.
    const int k_row = (lane & 7) + ((lane >> 4) & 1) * 8;
    const int k_chunk = (lane >> 3) & 1;
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      u32 qf[4];
      if constexpr (kQInRegs) {
#pragma unroll
        for (int e = 0; e < 4; ++e)
          qf[e] = st.q[kk][e];
      } else {
        ldmatrix_x4(qf, st.q_addr ^ (kk * 32));
      }
#pragma unroll
      for (int np = 0; np < kN / 16; ++np) {
        u32 bf[4];
        ldmatrix_x4(bf, sk + swz(np * 16 + k_row, kk * 2 + k_chunk));
        mma_16816<kBf16>(s[2 * np], qf, bf[0], bf[1]);
        mma_16816<kBf16>(s[2 * np + 1], qf, bf[2], bf[3]);
      }
    }

    // Accumulator element e of n-block j is (row q_row0 + 8*(e/2), col kv0 + 8j + 2t + e%2).
    // Hooks never see out-of-range indices (they may index captured buffers): rows past
    // q_len come in clamped (run() clamps q_hook; those rows are never stored) and columns
    // past kv_len, only in kCheck tiles, are clamped and then masked out.
    const int col0 = kv0 + (lane & 3) * 2;
    const int col_end = p.kv_len - col0; // column c of this thread is valid when c < col_end
#pragma unroll
    for (int j = 0; j < kN / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int q = q_hook[e >> 1];
        int kv = col0 + j * 8 + (e & 1);
        const bool in_range = !kCheck || j * 8 + (e & 1) < col_end;
        if constexpr (kCheck)
          kv = in_range ? kv : p.kv_len - 1;
        float x = flexjit_score_mod(s[j][e] * p.scale, b, h, q, kv, args);
        bool keep = in_range;
        if constexpr (kMask)
          keep = keep && flexjit_mask_mod(b, h, q, kv, args);
        s[j][e] = keep ? x : -kInf;
      }
    }

    // Online softmax; a row with nothing attended so far keeps m = -inf and uses 0 as the
    // subtraction base, so it produces p = 0 and never inf - inf.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -kInf;
#pragma unroll
      for (int j = 0; j < kN / 8; ++j)
        mx = fmax(mx, fmax(s[j][2 * r], s[j][2 * r + 1]));
      mx = quad_max(mx);
      const float m_new = fmax(st.m[r], mx);
      const float base = m_new == -kInf ? 0.f : m_new;
      const float alpha = ex2((st.m[r] - base) * kLog2e);
      st.m[r] = m_new;
      const float base_l2 = base * kLog2e;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < kN / 8; ++j) {
#pragma unroll
        for (int e = 2 * r; e < 2 * r + 2; ++e) {
          s[j][e] = ex2(__builtin_fmaf(s[j][e], kLog2e, -base_l2));
          sum += s[j][e];
        }
      }
      st.l[r] = st.l[r] * alpha + sum;
#pragma unroll
      for (int d = 0; d < kD / 8; ++d) {
        st.o[d][2 * r] *= alpha;
        st.o[d][2 * r + 1] *= alpha;
      }
    }

    // O += P V. The S accumulator layout is the A-fragment layout of the next mma; V rows
    // are B's rows (k-major), so the transposing ldmatrix gives col-major B fragments.
    const int v_row = (lane & 7) + ((lane >> 3) & 1) * 8;
    const int v_chunk = lane >> 4;
#pragma unroll
    for (int kk = 0; kk < kN / 16; ++kk) {
      const u32 a[4] = {pack2<kBf16>(s[2 * kk][0], s[2 * kk][1]),
                        pack2<kBf16>(s[2 * kk][2], s[2 * kk][3]),
                        pack2<kBf16>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                        pack2<kBf16>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < kD / 16; ++dp) {
        u32 bf[4];
        ldmatrix_x4_trans(bf, sv + swz(kk * 16 + v_row, dp * 2 + v_chunk));
        mma_16816<kBf16>(st.o[2 * dp], a, bf[0], bf[1]);
        mma_16816<kBf16>(st.o[2 * dp + 1], a, bf[2], bf[3]);
      }
    }
  }

  static __device__ __forceinline__ void run(const FlexjitAttentionParams& p,
                                             const FlexjitModArgs* args) {
    const int tid = thread_idx(), lane = tid & 31, warp = tid >> 5;
    const int q_start = block_idx_x() * kM, h = block_idx_y(), b = block_idx_z();
    const int h_kv = h / (p.Hq / p.Hkv);

    const Elem* qg = static_cast<const Elem*>(p.q) + b * p.q_stride_b + h * p.q_stride_h +
                     q_start * p.q_stride_s;
    const Elem* kg = static_cast<const Elem*>(p.k) + b * p.k_stride_b + h_kv * p.k_stride_h;
    const Elem* vg = static_cast<const Elem*>(p.v) + b * p.v_stride_b + h_kv * p.v_stride_h;

    const u32 sq = smem_addr(flexjit_fwd_smem);
    const u32 sk = sq + kM * kD * 2;
    const u32 sv = sk + 2 * kN * kD * 2;
    constexpr u32 kStageBytes = kN * kD * 2;

    // The kv tiles: `sub` kernel tiles per block-mask tile, partial blocks first. Tile
    // (blk, s) starts at kv row (index(blk) * sub + s) * kN. Few live registers: the index
    // lists are re-addressed from the kernel parameters (constant bank) on every use.
    int n_part = 0, n_full = 0, sub = 1;
    int64_t list = 0; // this q tile's row of kv_indices / full_kv_indices
    if (p.has_mask) {
      const int mb = p.mask_B == 1 ? 0 : b, mh = p.mask_H == 1 ? 0 : h;
      const int64_t row =
          (static_cast<int64_t>(mb) * p.mask_H + mh) * p.num_q_blocks + q_start / p.q_block_size;
      n_part = p.kv_num_blocks[row];
      n_full = p.full_kv_num_blocks ? p.full_kv_num_blocks[row] : 0;
      list = row * p.num_kv_blocks;
      sub = p.kv_block_size / kN;
    } else {
      n_full = (p.kv_len + kN - 1) / kN;
    }
    const int n_tiles = (n_part + n_full) * sub;
    const int n_part_tiles = n_part * sub;
    auto tile_start = [&](int blk, int s) {
      int idx = blk;
      if (blk < n_part)
        idx = p.kv_indices[list + blk];
      else if (p.has_mask)
        idx = p.full_kv_indices[list + blk - n_part];
      return (idx * sub + s) * kN;
    };

    load_tile<kM>(sq, qg, p.q_stride_s, 0, p.q_len - q_start, tid);
    int kv_next = 0, blk_next = 0, s_next = 0;
    if (n_tiles > 0) {
      kv_next = tile_start(0, 0);
      load_tile<kN>(sk, kg, p.k_stride_s, kv_next, p.kv_len, tid);
      load_tile<kN>(sv, vg, p.v_stride_s, kv_next, p.kv_len, tid);
    }
    cp_async_commit();
    cp_async_wait<0>();
    sync_threads();

    State st;
    {
      const int row = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
      st.q_addr = sq + swz(row, lane >> 4);
      if constexpr (kQInRegs) {
#pragma unroll
        for (int kk = 0; kk < kD / 16; ++kk)
          ldmatrix_x4(st.q[kk], st.q_addr ^ (kk * 32));
      }
    }
#pragma unroll
    for (int d = 0; d < kD / 8; ++d)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        st.o[d][e] = 0.f;
    st.m[0] = st.m[1] = -kInf;
    st.l[0] = st.l[1] = 0.f;

    const int q_row0 = q_start + warp * 16 + (lane >> 2);
    const int q_hook[2] = {min_i(q_row0, p.q_len - 1), min_i(q_row0 + 8, p.q_len - 1)};
    for (int i = 0; i < n_tiles; ++i) {
      const int kv0 = kv_next;
      const u32 stage = (i & 1) * kStageBytes;
      // Tile i has landed once this thread's copies are done and every thread passed the
      // barrier; past it, every warp has also finished tile i - 1, so its stage is free for
      // the prefetch of tile i + 1, which then overlaps this tile's math.
      cp_async_wait<0>();
      sync_threads();
      if (i + 1 < n_tiles) {
        if (++s_next == sub) {
          s_next = 0;
          ++blk_next;
        }
        kv_next = tile_start(blk_next, s_next);
        const u32 next = kStageBytes - stage;
        load_tile<kN>(sk + next, kg, p.k_stride_s, kv_next, p.kv_len, tid);
        load_tile<kN>(sv + next, vg, p.v_stride_s, kv_next, p.kv_len, tid);
        cp_async_commit();
      }
      const bool check = kv0 + kN > p.kv_len;
      if (i < n_part_tiles) {
        if (check)
          step<true, true>(st, sk + stage, sv + stage, kv0, q_hook, lane, b, h, p, args);
        else
          step<true, false>(st, sk + stage, sv + stage, kv0, q_hook, lane, b, h, p, args);
      } else {
        if (check)
          step<false, true>(st, sk + stage, sv + stage, kv0, q_hook, lane, b, h, p, args);
        else
          step<false, false>(st, sk + stage, sv + stage, kv0, q_hook, lane, b, h, p, args);
      }
    }

    // Epilogue: normalize, stage this warp's 16 rows in its own rows of the Q tile (no
    // other warp reads them after the Q fragments were loaded), then 16-byte stores.
    asm volatile("bar.warp.sync -1;\n" ::: "memory");
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float l = quad_sum(st.l[r]);
      const float inv = l > 0.f ? rcp(l) : 0.f;
      const int row = warp * 16 + (lane >> 2) + r * 8;
#pragma unroll
      for (int d = 0; d < kD / 8; ++d) {
        const u32 packed = pack2<kBf16>(st.o[d][2 * r] * inv, st.o[d][2 * r + 1] * inv);
        asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(sq + swz(row, d) + (lane & 3) * 4),
                     "r"(packed)
                     : "memory");
      }
      const int q = q_start + row;
      if (p.lse && (lane & 3) == 0 && q < p.q_len) {
        const float lse = l > 0.f ? st.m[r] + lg2(l) * kLn2 : -kInf;
        p.lse[b * p.lse_stride_b + h * p.lse_stride_h + q] = lse;
      }
    }
    asm volatile("bar.warp.sync -1;\n" ::: "memory");
    Elem* og = static_cast<Elem*>(p.out) + b * p.out_stride_b + h * p.out_stride_h;
#pragma unroll
    for (int i = 0; i < 16 * kChunks / 32; ++i) {
      const int idx = lane + i * 32;
      const int r = idx / kChunks, c = idx % kChunks;
      const int row = warp * 16 + r;
      const int q = q_start + row;
      if (q < p.q_len) {
        u32 x0, x1, x2, x3;
        asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(x0), "=r"(x1), "=r"(x2), "=r"(x3)
                     : "r"(sq + swz(row, c))
                     : "memory");
        Elem* dst = og + q * p.out_stride_s + c * 8;
        asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"l"(dst), "r"(x0), "r"(x1),
                     "r"(x2), "r"(x3)
                     : "memory");
      }
    }
  }
};

} // namespace flexjit_dev

// CTAs per SM the register allocation must allow: D=64 two (<= 128 registers; a heavy
// mask_mod, e.g. one loading captured buffers per element, may then spill a few bytes, and
// dropping the "minctasm" nvvm annotation after linking trades that for one CTA per SM),
// D=128 one (about 240 registers).
#define FLEXJIT_FWD_MIN_BLOCKS(d) ((d) == 64 ? 2 : 1)
#define FLEXJIT_FWD_ENTRY(name, bf16, d)                                                           \
  extern "C" __global__ void                                                                       \
      __attribute__((launch_bounds(FLEXJIT_FWD_THREADS, FLEXJIT_FWD_MIN_BLOCKS(d))))               \
      name(const FlexjitAttentionParams params, const FlexjitModArgs mod_args) {                   \
    flexjit_dev::AttentionFwd<bf16, d>::run(params, &mod_args);                                    \
  }

FLEXJIT_FWD_ENTRY(flexjit_attention_fwd_f16_d64, false, 64)
FLEXJIT_FWD_ENTRY(flexjit_attention_fwd_f16_d128, false, 128)
FLEXJIT_FWD_ENTRY(flexjit_attention_fwd_bf16_d64, true, 64)
FLEXJIT_FWD_ENTRY(flexjit_attention_fwd_bf16_d128, true, 128)
