// merge_attention's kernel (attention_abi.h, FlexjitMergeParams): two partial attention
// results of the same queries over disjoint key sets -- what a context-parallel loop holds
// after each step -- into one, as the decode kernel's combine merges its splits. A warp per
// row; a part of weight 0 (lse -inf) is not read, so whatever its O holds does not matter.
// The mods are not called (the module is built with the noop ones).
#include "codegen/templates/attention_abi.h"
#include "codegen/templates/attention_common.h"

using namespace flexjit::dev;

namespace {

constexpr int kThreads = 256; // the variant table's elements() shape

template <bool kBf16> __device__ __forceinline__ void merge_rows(const FlexjitMergeParams& p) {
  using Elem = unsigned short;
  const int64_t rows = static_cast<int64_t>(p.B) * p.H * p.S;
  const int lane = thread_x() & 31;
  const int64_t warps = static_cast<int64_t>(grid_dim_x()) * (kThreads / 32);
  for (int64_t row = global_thread_x() / 32; row < rows; row += warps) {
    const int s = static_cast<int>(row % p.S);
    const int64_t bh = row / p.S;
    const int h = static_cast<int>(bh % p.H), b = static_cast<int>(bh / p.H);
    const float la = p.lse_a[b * p.la_stride_b + h * p.la_stride_h + s];
    const float lb = p.lse_b[b * p.lb_stride_b + h * p.lb_stride_h + s];
    const float mx = fmax(la, lb);
    const float wa = lse_weight(la, mx), wb = lse_weight(lb, mx), sum = wa + wb;
    const float inv = sum > 0.f ? rcp(sum) : 0.f;
    if (lane * 8 < p.D) {
      const int d = lane * 8;
      Chunk16 a{}, c{}, r;
      if (wa > 0.f)
        a = load_chunk16(static_cast<const Elem*>(p.out_a) + b * p.oa_stride_b + h * p.oa_stride_h +
                         s * p.oa_stride_s + d);
      if (wb > 0.f)
        c = load_chunk16(static_cast<const Elem*>(p.out_b) + b * p.ob_stride_b + h * p.ob_stride_h +
                         s * p.ob_stride_s + d);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float a0, a1, b0, b1;
        unpack2<kBf16>(a.x[e], a0, a1);
        unpack2<kBf16>(c.x[e], b0, b1);
        r.x[e] = pack2<kBf16>((wa * a0 + wb * b0) * inv, (wa * a1 + wb * b1) * inv);
      }
      store_chunk16(static_cast<Elem*>(p.out) + b * p.o_stride_b + h * p.o_stride_h +
                        s * p.o_stride_s + d,
                    r);
    }
    sync_warp(); // every lane read la and lb before lse (maybe one of them) is written
    if (lane == 0)
      p.lse[b * p.l_stride_b + h * p.l_stride_h + s] = merged_lse(mx, sum);
  }
}

} // namespace

extern "C" __global__ void __launch_bounds__(kThreads)
    flexjit_merge_attention(const FlexjitMergeParams p, const FlexjitModArgs) {
  if (p.bf16)
    merge_rows<true>(p);
  else
    merge_rows<false>(p);
}
