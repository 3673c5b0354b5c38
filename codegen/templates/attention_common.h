// Device helpers for the attention templates on top of prelude.h (keywords, thread
// indices, barriers, hooks): inline-PTX wrappers for cp.async, ldmatrix, mma.sync, ex2
// and dtype conversion. Requires sm_80 or later.
#pragma once

#include "codegen/templates/prelude.h"

namespace flexjit::dev {

using u32 = unsigned int;

constexpr float kInf = __builtin_huge_valf();
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// 32-bit shared-state-space address of a generic pointer into shared memory.
__device__ __forceinline__ u32 smem_addr(const void* p) {
  return static_cast<u32>(
      reinterpret_cast<unsigned long long>((__attribute__((address_space(3))) const void*)p));
}

// 16-byte global -> shared copy; zero-fills the destination when `valid` is false (the source
// is then not read, but must still be a mapped address).
__device__ __forceinline__ void cp_async_16(u32 dst, const void* src, bool valid) {
  int src_size = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_size)
               : "memory");
}
// 4-byte global -> shared copy (through L1), zero-filling when `valid` is false.
__device__ __forceinline__ void cp_async_4(u32 dst, const void* src, bool valid) {
  int src_size = valid ? 4 : 0;
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src), "r"(src_size)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(u32 (&r)[4], u32 addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a * b for one m16n8k16 tile; fp32 accumulators; a and b f16 (kBf16 false) or bf16.
template <bool kBf16>
__device__ __forceinline__ void mma_16816(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
  if constexpr (kBf16) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Packs two floats into a 16-bit pair, `lo` in the low half (round to nearest even).
template <bool kBf16> __device__ __forceinline__ u32 pack2(float lo, float hi) {
  u32 r;
  if constexpr (kBf16)
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  else
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// Packs an m16 x (8 kNB) fp32 accumulator tile into mma/wgmma A fragments (m16 x k16 each):
// the accumulator layout of n8 blocks 2 kk and 2 kk + 1 is the A-fragment layout of k-step
// kk (the forward's P, the backward's P^T and dS^T).
// One k-step: n8 blocks x0 and x1 (2 kk and 2 kk + 1) into the A fragment a.
template <bool kBf16>
__device__ __forceinline__ void pack_frag(const float (&x0)[4], const float (&x1)[4], u32 (&a)[4]) {
  a[0] = pack2<kBf16>(x0[0], x0[1]);
  a[1] = pack2<kBf16>(x0[2], x0[3]);
  a[2] = pack2<kBf16>(x1[0], x1[1]);
  a[3] = pack2<kBf16>(x1[2], x1[3]);
}
template <bool kBf16, int kNB>
__device__ __forceinline__ void pack_frags(const float (&x)[kNB][4], u32 (&a)[kNB / 2][4]) {
#pragma unroll
  for (int kk = 0; kk < kNB / 2; ++kk)
    pack_frag<kBf16>(x[2 * kk], x[2 * kk + 1], a[kk]);
}

__device__ __forceinline__ float ex2(float x) {
  return __nvvm_ex2_approx_ftz_f(x);
}
__device__ __forceinline__ float lg2(float x) {
  return __nvvm_lg2_approx_ftz_f(x);
}
__device__ __forceinline__ float rcp(float x) {
  return __nvvm_rcp_rn_f(x);
}
__device__ __forceinline__ float fmax(float a, float b) {
  return __nvvm_fmax_f(a, b);
}
// Unpacks a 16-bit pair (pack2's layout) into two floats.
template <bool kBf16> __device__ __forceinline__ void unpack2(u32 bits, float& lo, float& hi) {
  if constexpr (kBf16) {
    lo = __builtin_bit_cast(float, bits << 16);
    hi = __builtin_bit_cast(float, bits & 0xffff0000u);
  } else {
    asm("{\n.reg .f16 l, h;\nmov.b32 {l, h}, %2;\ncvt.f32.f16 %0, l;\ncvt.f32.f16 %1, h;\n}\n"
        : "=f"(lo), "=f"(hi)
        : "r"(bits));
  }
}

// Merging partial results (O_i, lse_i) of one row over disjoint key sets: O = sum_i w_i O_i /
// sum_i w_i with w_i = e^(lse_i - M), M the largest lse_i, and lse = M + ln(sum_i w_i). A row
// no part saw anything of (M = -inf) has every weight 0, O = 0 and lse = -inf. The decode
// kernel's combine and merge_attention both weigh by these two.
__device__ __forceinline__ float lse_weight(float lse, float mx) {
  return mx == -kInf ? 0.f : ex2((lse - mx) * kLog2e);
}
__device__ __forceinline__ float merged_lse(float mx, float sum) {
  return sum > 0.f ? mx + lg2(sum) * kLn2 : -kInf;
}

// Butterfly reductions over the 4 lanes of a quad (lanes 4g..4g+3 share an mma row).
__device__ __forceinline__ float quad_max(float x) {
  x = fmax(x, __nvvm_shfl_sync_bfly_f32(0xffffffffu, x, 1, 0x1f));
  return fmax(x, __nvvm_shfl_sync_bfly_f32(0xffffffffu, x, 2, 0x1f));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __nvvm_shfl_sync_bfly_f32(0xffffffffu, x, 1, 0x1f);
  return x + __nvvm_shfl_sync_bfly_f32(0xffffffffu, x, 2, 0x1f);
}

} // namespace flexjit::dev
