// Attention backward, FlashAttention-2 style, mma.sync (sm_80 and later): per CTA one kv
// tile of BLOCK_N = 64 rows of one (batch, kv head), 4 warps of 16 kv rows each. The CTA
// walks the query heads of its kv head's group and, for each, the q tiles (BLOCK_M = 64
// rows) the block mask's q-major arrays list for its kv block: the partial ones (mask_mod
// per element), then the full ones. Per q tile it recomputes S^T = K Q^T, the modded
// scores and P^T = exp(score_mod(S) - lse) from the forward's logsumexp, then
//   dV += P^T dO,   dP^T = V dO^T,   dS^T = P^T (dP^T - delta) score_mod'(S),
//   dK += dS^T Q,   dQ += dS K (dS through shared memory; fp32 atomics into dq_acc).
// dK and dV stay in registers over every q tile and query head; dq_acc is a workspace
// the _pre kernel zeroed (with delta = rowsum(dO O)) and the _dq kernel converts.
// Atomics for dQ rather than a second pass over the q-major order: one pass reads K, V
// once and Q, dO once per (kv tile, q tile) pair, and the atomics are 64 x D fp32 adds per
// pair, spread over distinct addresses (L2 reductions).
//
// Shared memory (dynamic), 2-byte elements, rows of D elements in 16-byte chunks XOR-
// swizzled with row % 8 (as in attention_fwd.cu):
//   K [64][D]   V [64][D]   Q [2][64][D]   dO [2][64][D]   dS^T [64 kv][64 q]
#include "codegen/templates/attention_abi.h"
#include "codegen/templates/attention_common.h"
#include "codegen/templates/block_schedule.h"

extern __shared__ __attribute__((aligned(1024))) unsigned char flexjit_bwd_smem[];

namespace flexjit::dev {

__device__ __forceinline__ void atomic_add_f32(float* p, float v) {
  asm volatile("red.global.add.f32 [%0], %1;\n" ::"l"(p), "f"(v) : "memory");
}

// The q tiles (kM rows each) kv block `kv_block` visits for query head h (block_schedule.h).
template <int kM> using QTiles = BlockSchedule<kM, QMajor>;

// dK (times scale: S = scale Q K^T) and dV of this thread's two kv rows, kv_row0 and
// kv_row0 + 8, from accumulators in the mma.m16n8 layout over the head dim.
template <bool kBf16, int kD>
__device__ __forceinline__ void store_dk_dv(const FlexjitAttentionBwdParams& p,
                                            const float (&dk)[kD / 8][4],
                                            const float (&dv)[kD / 8][4], int b, int h_kv,
                                            int kv_row0, const bool (&kv_ok)[2], int lane) {
  using Elem = unsigned short;
  Elem* dkg = static_cast<Elem*>(p.dk) + b * p.dk_stride_b + h_kv * p.dk_stride_h;
  Elem* dvg = static_cast<Elem*>(p.dv) + b * p.dv_stride_b + h_kv * p.dv_stride_h;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (!kv_ok[r])
      continue;
    const int64_t kv = kv_row0 + r * 8;
#pragma unroll
    for (int d = 0; d < kD / 8; ++d) {
      const int col = d * 8 + (lane & 3) * 2;
      const u32 kbits = pack2<kBf16>(dk[d][2 * r] * p.scale, dk[d][2 * r + 1] * p.scale);
      const u32 vbits = pack2<kBf16>(dv[d][2 * r], dv[d][2 * r + 1]);
      asm volatile("st.global.b32 [%0], %1;\n" ::"l"(dkg + kv * p.dk_stride_s + col), "r"(kbits)
                   : "memory");
      asm volatile("st.global.b32 [%0], %1;\n" ::"l"(dvg + kv * p.dv_stride_s + col), "r"(vbits)
                   : "memory");
    }
  }
}

template <bool kBf16, int kD> struct AttentionBwd {
  static constexpr int kN = FLEXJIT_BWD_BLOCK_N; // kv rows per CTA
  static constexpr int kM = FLEXJIT_BWD_BLOCK_M; // q rows per step
  static constexpr int kThreads = FLEXJIT_BWD_THREADS;
  static constexpr int kChunks = kD / 8;
  static_assert(kN == 64 && kM == 64 && kThreads == 128, "4 warps x 16 kv rows; 64 q columns");
  static_assert(FLEXJIT_BWD_SMEM_BYTES(kD) == (2 * kN + 4 * kM) * kD * 2 + kN * kM * 2,
                "smem layout");
  using Elem = unsigned short;

  static __device__ __forceinline__ u32 swz(int row, int chunk) {
    return static_cast<u32>((row * kChunks + (chunk ^ (row & 7))) * 16);
  }
  // The dS^T tile: 64 rows of 64 elements (8 chunks).
  static __device__ __forceinline__ u32 swz_ds(int row, int chunk) {
    return static_cast<u32>((row * 8 + (chunk ^ (row & 7))) * 16);
  }
  static __device__ __forceinline__ u32 lane_addr(u32 base, int row_bit, int chunk_bit, int lane) {
    return base + swz((lane & 7) + 8 * row_bit, chunk_bit);
  }

  // Rows [row0, row0 + 64) of a [len][kD] global matrix into a swizzled tile; rows at or
  // past len are zero-filled.
  static __device__ __forceinline__ void load_tile(u32 dst, const Elem* src, int64_t stride,
                                                   int row0, int len, int tid) {
    constexpr int kRowsPerPass = kThreads / kChunks;
    const int r = tid / kChunks, c = tid % kChunks;
#pragma unroll
    for (int i = 0; i < 64 / kRowsPerPass; ++i) {
      const int row = r + i * kRowsPerPass;
      const bool valid = row0 + row < len;
      const Elem* ptr = src + static_cast<int64_t>(valid ? row0 + row : 0) * stride + c * 8;
      cp_async_16(dst + swz(row, c), ptr, valid);
    }
  }

  // acc[j] += A (16 x 16k, from `a_addr`, rows of this warp) B^T over kD, B rows from
  // `b_lane` (64 rows): S^T = K Q^T and dP^T = V dO^T.
  static __device__ __forceinline__ void rows_times_rows(float (&acc)[8][4], u32 a_addr,
                                                         u32 b_lane) {
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        acc[j][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      u32 a[4];
      ldmatrix_x4(a, a_addr ^ (kk * 32));
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        u32 bf[4];
        ldmatrix_x4(bf, (b_lane ^ (kk * 32)) + np * 16 * kD * 2);
        mma_16816<kBf16>(acc[2 * np], a, bf[0], bf[1]);
        mma_16816<kBf16>(acc[2 * np + 1], a, bf[2], bf[3]);
      }
    }
  }

  // acc (16 x kD) += A (16 x 64, packed fragments) B, B = 64 rows of kD from `b_lane_t`
  // (transposing ldmatrix): dV += P^T dO, dK += dS^T Q.
  static __device__ __forceinline__ void frags_times_tile(float (&acc)[kD / 8][4],
                                                          const u32 (&a)[4][4], u32 b_lane_t) {
#pragma unroll
    for (int kk = 0; kk < 4; ++kk)
#pragma unroll
      for (int dp = 0; dp < kD / 16; ++dp) {
        u32 bf[4];
        ldmatrix_x4_trans(bf, (b_lane_t ^ (dp * 32)) + kk * 16 * kD * 2);
        mma_16816<kBf16>(acc[2 * dp], a[kk], bf[0], bf[1]);
        mma_16816<kBf16>(acc[2 * dp + 1], a[kk], bf[2], bf[3]);
      }
  }

  static __device__ __forceinline__ void run(const FlexjitAttentionBwdParams& p,
                                             const FlexjitModArgs* args) {
    const int tid = thread_x(), lane = tid & 31, warp = tid >> 5;
    const int kv0 = block_x() * kN, h_kv = block_y(), b = block_z();
    const int group = p.Hq / p.Hkv;

    const u32 sk = smem_addr(flexjit_bwd_smem);
    const u32 sv = sk + kN * kD * 2;
    const u32 sq = sv + kN * kD * 2;       // 2 stages
    const u32 sdo = sq + 2 * kM * kD * 2;  // 2 stages
    const u32 sds = sdo + 2 * kM * kD * 2; // [64 kv][64 q]
    constexpr u32 kStageBytes = kM * kD * 2;

    const Elem* kg = static_cast<const Elem*>(p.k) + b * p.k_stride_b + h_kv * p.k_stride_h;
    const Elem* vg = static_cast<const Elem*>(p.v) + b * p.v_stride_b + h_kv * p.v_stride_h;
    load_tile(sk, kg, p.k_stride_s, kv0, p.kv_len, tid);
    load_tile(sv, vg, p.v_stride_s, kv0, p.kv_len, tid);
    cp_async_commit();

    float dk[kD / 8][4], dv[kD / 8][4];
#pragma unroll
    for (int d = 0; d < kD / 8; ++d)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        dk[d][e] = dv[d][e] = 0.f;

    // This thread's kv rows (accumulator rows) and, for the hooks, clamped.
    const int kv_row0 = kv0 + warp * 16 + (lane >> 2);
    const int kv_hook[2] = {min_i(kv_row0, p.kv_len - 1), min_i(kv_row0 + 8, p.kv_len - 1)};
    const bool kv_ok[2] = {kv_row0 < p.kv_len, kv_row0 + 8 < p.kv_len};
    // ldmatrix addresses: A fragments of this warp's 16 K / V rows; B (non-transposed, 64
    // rows of Q / dO); B transposed (Q / dO for dV, dK; K for dQ); A of dS from dS^T.
    const int a_row = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
    const u32 k_a = sk + swz(a_row, lane >> 4), v_a = sv + swz(a_row, lane >> 4);
    const u32 b_off = lane_addr(0, (lane >> 4) & 1, (lane >> 3) & 1, lane);
    const u32 bt_off = lane_addr(0, (lane >> 3) & 1, lane >> 4, lane);
    const u32 k_t = sk + bt_off;

    const int kv_block = kv0 / p.kv_block_size;
    for (int h = h_kv * group; h < (h_kv + 1) * group; ++h) {
      const QTiles<kM> tiles(p, b, h, kv_block);
      const int n_tiles = tiles.n_tiles;
      const Elem* qg = static_cast<const Elem*>(p.q) + b * p.q_stride_b + h * p.q_stride_h;
      const Elem* dog =
          static_cast<const Elem*>(p.d_out) + b * p.dout_stride_b + h * p.dout_stride_h;
      const float* lse = p.lse + b * p.lse_stride_b + h * p.lse_stride_h;
      const float* delta = p.delta + (static_cast<int64_t>(b) * p.Hq + h) * p.q_len;
      float* dq_acc = p.dq_acc + (static_cast<int64_t>(b) * p.Hq + h) * p.q_len * kD;

      int q_next = n_tiles > 0 ? tiles.start(0) : 0;
      if (n_tiles > 0) {
        load_tile(sq, qg, p.q_stride_s, q_next, p.q_len, tid);
        load_tile(sdo, dog, p.dout_stride_s, q_next, p.q_len, tid);
      }
      cp_async_commit();
      for (int t = 0; t < n_tiles; ++t) {
        const int q0 = q_next;
        const u32 stage = (t & 1) * kStageBytes;
        cp_async_wait<0>();
        sync_threads(); // tile t landed; every warp is done with tile t - 1's stage and dS
        if (t + 1 < n_tiles) {
          q_next = tiles.start(t + 1);
          const u32 other = ((t + 1) & 1) * kStageBytes;
          load_tile(sq + other, qg, p.q_stride_s, q_next, p.q_len, tid);
          load_tile(sdo + other, dog, p.dout_stride_s, q_next, p.q_len, tid);
        }
        cp_async_commit();

        // dP^T = V dO^T and S^T = K Q^T for this warp's 16 kv rows x 64 q columns.
        float dp[8][4], s[8][4];
        rows_times_rows(dp, v_a, sdo + stage + b_off);
        rows_times_rows(s, k_a, sq + stage + b_off);

        // P^T and dS^T, element (kv row kv_row0 + 8 (e / 2), q column q0 + 8 j + 2 t + e % 2).
        const bool mask = t < tiles.n_part_tiles;
        u32 pa[4][4];
        {
          float pt[8][4];
#pragma unroll
          for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int c = 0; c < 2; ++c) {
              const int q = q0 + j * 8 + (lane & 3) * 2 + c;
              const bool q_ok = q < p.q_len;
              const int qh = min_i(q, p.q_len - 1);
              const float l = lse[qh], dl = delta[qh];
#pragma unroll
              for (int r = 0; r < 2; ++r) {
                const int e = 2 * r + c;
                const float raw = s[j][e] * p.scale;
                const float mod = flexjit_score_mod(raw, b, h, qh, kv_hook[r], args);
                bool keep = q_ok && kv_ok[r] && l != -kInf;
                if (mask)
                  keep = keep && flexjit_mask_mod(b, h, qh, kv_hook[r], args);
                const float pv = keep ? ex2((mod - l) * kLog2e) : 0.f;
                pt[j][e] = pv;
                const float grad = flexjit_score_grad(raw, b, h, qh, kv_hook[r], args);
                s[j][e] = keep ? pv * (dp[j][e] - dl) * grad : 0.f; // dS^T (d/d raw score)
              }
            }
          pack_frags<kBf16>(pt, pa);
        }
        frags_times_tile(dv, pa, sdo + stage + bt_off);
        u32 dsa[4][4];
        pack_frags<kBf16>(s, dsa);
        frags_times_tile(dk, dsa, sq + stage + bt_off);

        // dS^T to shared memory for dQ = dS K.
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            const int row = warp * 16 + (lane >> 2) + r * 8;
            asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(sds + swz_ds(row, j) + (lane & 3) * 4),
                         "r"(dsa[j >> 1][(j & 1) * 2 + r])
                         : "memory");
          }
        sync_threads();

        // dQ rows q0 + 16 warp .. + 15: A = dS (q x kv) read transposed from dS^T.
        float dq[kD / 8][4];
#pragma unroll
        for (int d = 0; d < kD / 8; ++d)
#pragma unroll
          for (int e = 0; e < 4; ++e)
            dq[d][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
          u32 a[4];
          const int row = kk * 16 + (lane & 7) + ((lane >> 4) & 1) * 8;
          ldmatrix_x4_trans(a, sds + swz_ds(row, 2 * warp + ((lane >> 3) & 1)));
#pragma unroll
          for (int dp2 = 0; dp2 < kD / 16; ++dp2) {
            u32 bf[4];
            ldmatrix_x4_trans(bf, (k_t ^ (dp2 * 32)) + kk * 16 * kD * 2);
            mma_16816<kBf16>(dq[2 * dp2], a, bf[0], bf[1]);
            mma_16816<kBf16>(dq[2 * dp2 + 1], a, bf[2], bf[3]);
          }
        }
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int q = q0 + warp * 16 + (lane >> 2) + r * 8;
          if (q >= p.q_len)
            continue;
          float* row = dq_acc + static_cast<int64_t>(q) * kD + (lane & 3) * 2;
#pragma unroll
          for (int d = 0; d < kD / 8; ++d) {
            atomic_add_f32(row + d * 8, dq[d][2 * r]);
            atomic_add_f32(row + d * 8 + 1, dq[d][2 * r + 1]);
          }
        }
      }
      cp_async_wait<0>();
      sync_threads(); // the next head reloads both stages
    }

    store_dk_dv<kBf16, kD>(p, dk, dv, b, h_kv, kv_row0, kv_ok, lane);
  }

  // delta = rowsum(dO O) and dq_acc = 0, a warp per row.
  static __device__ __forceinline__ void pre(const FlexjitAttentionBwdParams& p) {
    const int lane = lane_id(), q = block_x() * 8 + warp_id(), h = block_y(), b = block_z();
    if (q >= p.q_len)
      return;
    const Elem* o = static_cast<const Elem*>(p.out) + b * p.out_stride_b + h * p.out_stride_h +
                    q * p.out_stride_s;
    const Elem* dout = static_cast<const Elem*>(p.d_out) + b * p.dout_stride_b +
                       h * p.dout_stride_h + q * p.dout_stride_s;
    float sum = 0.f;
#pragma unroll
    for (int d = lane * 2; d < kD; d += 64) {
      float o0, o1, g0, g1;
      unpack2<kBf16>(*reinterpret_cast<const u32*>(o + d), o0, o1);
      unpack2<kBf16>(*reinterpret_cast<const u32*>(dout + d), g0, g1);
      sum += o0 * g0 + o1 * g1;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
      sum += __nvvm_shfl_sync_bfly_f32(0xffffffffu, sum, off, 0x1f);
    const int64_t row = (static_cast<int64_t>(b) * p.Hq + h) * p.q_len + q;
    if (lane == 0)
      p.delta[row] = sum;
#pragma unroll
    for (int d = lane; d < kD; d += 32)
      p.dq_acc[row * kD + d] = 0.f;
  }

  // dq = scale dq_acc (S = scale Q K^T; the main kernels add dS K) in the input dtype, a
  // warp per row.
  static __device__ __forceinline__ void dq(const FlexjitAttentionBwdParams& p) {
    const int lane = lane_id(), q = block_x() * 8 + warp_id(), h = block_y(), b = block_z();
    if (q >= p.q_len)
      return;
    const int64_t row = (static_cast<int64_t>(b) * p.Hq + h) * p.q_len + q;
    Elem* out =
        static_cast<Elem*>(p.dq) + b * p.dq_stride_b + h * p.dq_stride_h + q * p.dq_stride_s;
#pragma unroll
    for (int d = lane * 2; d < kD; d += 64)
      *reinterpret_cast<u32*>(out + d) =
          pack2<kBf16>(p.dq_acc[row * kD + d] * p.scale, p.dq_acc[row * kD + d + 1] * p.scale);
  }
};

} // namespace flexjit::dev

#if __CUDA_ARCH__ >= 900
#include "codegen/templates/attention_bwd_sm90.h"
// Hopper: the wgmma kernel (attention_bwd_sm90.h), one CTA of two warpgroups per SM.
#define FLEXJIT_BWD_MAIN(name, bf16, d)                                                            \
  extern "C" __global__ void __attribute__((launch_bounds(FLEXJIT_BWD_SM90_THREADS, 1)))           \
  name(const FlexjitAttentionBwdParams params, const FlexjitModArgs mod_args) {                    \
    flexjit::dev::AttentionBwdSm90<bf16, d>::run(params, &mod_args);                               \
  }
#else
#define FLEXJIT_BWD_MAIN(name, bf16, d)                                                            \
  extern "C" __global__ void __launch_bounds__(FLEXJIT_BWD_THREADS)                                \
      name(const FlexjitAttentionBwdParams params, const FlexjitModArgs mod_args) {                \
    flexjit::dev::AttentionBwd<bf16, d>::run(params, &mod_args);                                   \
  }
#endif

#define FLEXJIT_BWD_ENTRY(name, bf16, d)                                                           \
  FLEXJIT_BWD_MAIN(name, bf16, d)                                                                  \
  extern "C" __global__ void __launch_bounds__(FLEXJIT_BWD_ROW_THREADS)                            \
      FLEXJIT_PASTE(name, pre)(const FlexjitAttentionBwdParams params, const FlexjitModArgs) {     \
    flexjit::dev::AttentionBwd<bf16, d>::pre(params);                                              \
  }                                                                                                \
  extern "C" __global__ void __launch_bounds__(FLEXJIT_BWD_ROW_THREADS)                            \
      FLEXJIT_PASTE(name, dq)(const FlexjitAttentionBwdParams params, const FlexjitModArgs) {      \
    flexjit::dev::AttentionBwd<bf16, d>::dq(params);                                               \
  }

// The build compiles one bitcode per (dtype, head dim) (cmake/EmbedTemplates.cmake).
#ifndef FLEXJIT_ONE_VARIANT
#error "attention_bwd.cu is built one variant at a time (-DFLEXJIT_ONE_VARIANT ...)"
#endif
static_assert(FLEXJIT_VARIANT_DQK == FLEXJIT_VARIANT_DV, "the backward has one head dim");
FLEXJIT_BWD_ENTRY(FLEXJIT_VARIANT_ENTRY(flexjit_attention_bwd), FLEXJIT_VARIANT_BF16,
                  FLEXJIT_VARIANT_DQK)
