// What the kernel templates need from CUDA, mapped to clang builtins and
// inline PTX: the templates are compiled with -nocudainc, so no CUDA header is
// read. Shared by every template (thread indices, CTA-wide votes, warp
// reductions) and the declarations of the two hooks codegen defines.
#pragma once

#include "codegen/templates/flexjit_abi.h"

#if !defined(__CUDA__) || !defined(__CUDA_ARCH__)
#error "prelude.h is for clang's CUDA device compilation (-x cuda --cuda-device-only)"
#endif

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __launch_bounds__(n) __attribute__((launch_bounds(n)))

// A variant build (cmake/EmbedTemplates.cmake, -DFLEXJIT_ONE_VARIANT) instantiates one
// kernel of a template: FLEXJIT_VARIANT_NAME (<dtype>_d<Dqk>[_v<Dv>]), FLEXJIT_VARIANT_BF16
// (true / false), FLEXJIT_VARIANT_DQK and FLEXJIT_VARIANT_DV. FLEXJIT_VARIANT_ENTRY(prefix)
// is its entry's name, prefix_<variant>: the name the variant table gives the row.
#define FLEXJIT_PASTE_(a, b) a##_##b
#define FLEXJIT_PASTE(a, b) FLEXJIT_PASTE_(a, b)
#define FLEXJIT_VARIANT_ENTRY(prefix) FLEXJIT_PASTE(prefix, FLEXJIT_VARIANT_NAME)

// The hooks (flexjit_abi.h); codegen links their definitions in and inlines them.
extern "C" __device__ bool flexjit_mask_mod(int b, int h, int q, int kv,
                                            const FlexjitModArgs* args);
extern "C" __device__ float flexjit_score_mod(float score, int b, int h, int q, int kv,
                                              const FlexjitModArgs* args);
// d(score_mod)/d(score) at the same arguments (the backward templates call it).
extern "C" __device__ float flexjit_score_grad(float score, int b, int h, int q, int kv,
                                               const FlexjitModArgs* args);

namespace flexjit::dev {

inline constexpr int kWarpSize = 32;
inline constexpr unsigned kFullWarp = 0xffffffffu;

// ---- Thread and block indices ---------------------------------------------------
__device__ __forceinline__ int thread_x() {
  return __nvvm_read_ptx_sreg_tid_x();
}
// The same, where LLVM may not hoist it or what follows from it out of a loop (a volatile
// read of %tid.x): a persistent kernel's per-tile code keeps no value derived from the
// thread index in registers across its inner loops.
__device__ __forceinline__ int thread_x_opaque() {
  int tid;
  asm volatile("mov.u32 %0, %%tid.x;" : "=r"(tid));
  return tid;
}
// 16 bytes of global memory (8 f16/bf16 elements, 16-byte aligned): one vector load / store.
struct Chunk16 {
  unsigned x[4];
};
__device__ __forceinline__ Chunk16 load_chunk16(const void* src) {
  Chunk16 c;
  asm volatile("ld.global.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(c.x[0]), "=r"(c.x[1]), "=r"(c.x[2]), "=r"(c.x[3])
               : "l"(src));
  return c;
}
__device__ __forceinline__ void store_chunk16(void* dst, const Chunk16& c) {
  asm volatile("st.global.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"l"(dst), "r"(c.x[0]), "r"(c.x[1]),
               "r"(c.x[2]), "r"(c.x[3])
               : "memory");
}
// Orders the warp's lanes: every lane's accesses before it happen before any lane's after.
__device__ __forceinline__ void sync_warp() {
  asm volatile("bar.warp.sync 0xffffffff;" ::: "memory");
}
__device__ __forceinline__ int block_x() {
  return __nvvm_read_ptx_sreg_ctaid_x();
}
__device__ __forceinline__ int block_y() {
  return __nvvm_read_ptx_sreg_ctaid_y();
}
__device__ __forceinline__ int block_z() {
  return __nvvm_read_ptx_sreg_ctaid_z();
}
__device__ __forceinline__ int block_dim_x() {
  return __nvvm_read_ptx_sreg_ntid_x();
}
__device__ __forceinline__ int grid_dim_x() {
  return __nvvm_read_ptx_sreg_nctaid_x();
}
__device__ __forceinline__ int lane_id() {
  return __nvvm_read_ptx_sreg_laneid();
}
__device__ __forceinline__ int warp_id() {
  return thread_x() / kWarpSize;
}
// The global linear thread index along x, in 64 bits.
__device__ __forceinline__ long long global_thread_x() {
  return static_cast<long long>(block_x()) * block_dim_x() + thread_x();
}

// ---- CTA-wide barriers and votes (bar.sync / bar.red) ---------------------------
// Every thread of the CTA must reach these; the results are the same in all of
// them, so a branch on one stays uniform.
__device__ __forceinline__ void sync_threads() {
  __syncthreads();
}
__device__ __forceinline__ bool block_any(bool p) {
  return __nvvm_bar0_or(p) != 0;
}
__device__ __forceinline__ bool block_all(bool p) {
  return __nvvm_bar0_and(p) != 0;
}
__device__ __forceinline__ int block_count(bool p) {
  return __nvvm_bar0_popc(p);
}

// ---- Warp votes and shuffles ----------------------------------------------------
__device__ __forceinline__ unsigned warp_ballot(bool p) {
  return __nvvm_vote_ballot_sync(kFullWarp, p);
}
__device__ __forceinline__ bool warp_any(bool p) {
  return __nvvm_vote_any_sync(kFullWarp, p);
}
__device__ __forceinline__ bool warp_all(bool p) {
  return __nvvm_vote_all_sync(kFullWarp, p);
}
__device__ __forceinline__ float shfl_xor(float v, int lane_mask) {
  return __nvvm_shfl_sync_bfly_f32(kFullWarp, v, lane_mask, 0x1f);
}
__device__ __forceinline__ int shfl_lane0(int v) {
  return __nvvm_shfl_sync_idx_i32(kFullWarp, v, 0, 0x1f);
}
__device__ __forceinline__ int shfl_xor(int v, int lane_mask) {
  return __nvvm_shfl_sync_bfly_i32(kFullWarp, v, lane_mask, 0x1f);
}
__device__ __forceinline__ float warp_max(float v) {
  for (int m = kWarpSize / 2; m > 0; m /= 2)
    v = __builtin_fmaxf(v, shfl_xor(v, m));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int m = kWarpSize / 2; m > 0; m /= 2)
    v += shfl_xor(v, m);
  return v;
}

// ---- Atomics (generic address space) --------------------------------------------
__device__ __forceinline__ int atomic_or(int* p, int v) {
  return __nvvm_atom_or_gen_i(p, v);
}
__device__ __forceinline__ int atomic_add(int* p, int v) {
  return __nvvm_atom_add_gen_i(p, v);
}
__device__ __forceinline__ float atomic_add(float* p, float v) {
  return __nvvm_atom_add_gen_f(p, v);
}
__device__ __forceinline__ unsigned long long atomic_add(unsigned long long* p,
                                                         unsigned long long v) {
  return static_cast<unsigned long long>(
      __nvvm_atom_add_gen_ll(reinterpret_cast<long long*>(p), static_cast<long long>(v)));
}

// ---- Small math -----------------------------------------------------------------
__device__ __forceinline__ int min_i(int a, int b) {
  return a < b ? a : b;
}
__device__ __forceinline__ int max_i(int a, int b) {
  return a > b ? a : b;
}

} // namespace flexjit::dev
