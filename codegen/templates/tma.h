// Hopper's asynchronous machinery, as the warp-specialized kernels use it (sm_90a):
// mbarriers (arrive / expect-tx / wait on a phase parity), bulk tensor copies (TMA)
// that complete on them, named barriers between warpgroups, and setmaxnreg.
//
// A tensor map (FlexjitTensorMap, encoded on the host by cuTensorMapEncodeTiled) is read
// in the kernel's parameter space: the kernel takes FlexjitTensorMaps by value and codegen
// marks that parameter grid_constant (codegen/Compiler.cpp), so its address is a param-space
// address the copy engine reads, never a local copy.
#pragma once

#include "codegen/templates/attention_common.h"

namespace flexjit::dev {

// ---- mbarrier (shared::cta) ---------------------------------------------------------
__device__ __forceinline__ void mbar_init(u32 bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Makes the initializations visible to the async proxy (the copy engine) and to the
// other threads after the CTA barrier that follows.
__device__ __forceinline__ void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// One arrival that also announces `bytes` of copies completing on the barrier's phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(u32 bar, u32 bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(u32 bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Waits until the phase of parity `parity` has completed (a fresh barrier is in phase 0:
// waiting for parity 1 returns at once).
__device__ __forceinline__ void mbar_wait(u32 bar, u32 parity) {
  asm volatile("{\n"
               ".reg .pred done;\n"
               "wait_%=:\n"
               "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
               "@!done bra wait_%=;\n"
               "}\n" ::"r"(bar),
               "r"(parity)
               : "memory");
}

// ---- Bulk tensor copies ------------------------------------------------------------
__device__ __forceinline__ void tma_prefetch_map(const void* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(map) : "memory");
}
// The box at coordinates (c0, c1, c2, c3) of a rank-4 tensor map into shared memory at
// dst, completing `bar`'s transaction count. Out-of-range elements are written as zeros.
__device__ __forceinline__ void tma_load_4d(u32 dst, const void* map, u32 bar, int c0, int c1,
                                            int c2, int c3) {
  asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
               " [%0], [%1, {%2, %3, %4, %5}], [%6];\n" ::"r"(dst),
               "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar)
               : "memory");
}

// The same for a rank-5 tensor map (the decode kernel's Q: query heads split into a kv head
// and the heads of its group, attention_decode_ws.cu).
__device__ __forceinline__ void tma_load_5d(u32 dst, const void* map, u32 bar, int c0, int c1,
                                            int c2, int c3, int c4) {
  asm volatile("cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
               " [%0], [%1, {%2, %3, %4, %5, %6}], [%7];\n" ::"r"(dst),
               "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4), "r"(bar)
               : "memory");
}

// ---- Named barriers (ids 1..15; 0 is the CTA barrier) -----------------------------
__device__ __forceinline__ void named_bar_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_bar_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// ---- Registers per thread of a warpgroup (every warp of it executes these) ---------
template <int kRegs> __device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs> __device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

} // namespace flexjit::dev
