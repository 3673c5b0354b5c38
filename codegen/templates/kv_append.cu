// Appending new tokens' K and V to a KV cache (attention_abi.h, FlexjitKvAppendParams):
// flexjit_kv_append copies, flexjit_kv_advance then moves each sequence's length on. Both are
// grid-stride loops (any grid covers any size) and read nothing but device data, so a CUDA
// graph can replay them step after step. The mods are not called (the module is built with
// the noop ones).
#include "codegen/templates/attention_abi.h"
#include "codegen/templates/prelude.h"

using namespace flexjit::dev;

namespace {

constexpr int kThreads = 256; // the variant table's elements() shape

// Whether sequence b's n_new tokens fit (its length in [0, capacity - n_new]).
__device__ __forceinline__ bool fits(const FlexjitKvAppendParams& p, int len) {
  return len >= 0 && len <= p.capacity - p.n_new;
}

// The pool page of position pos of sequence b, or -1 when its block-table entry is outside
// the pool.
__device__ __forceinline__ int page_of(const FlexjitKvAppendParams& p, int b, int pos) {
  const int page = p.block_table[static_cast<int64_t>(b) * p.max_pages + (pos >> p.page_shift)];
  return page >= 0 && page < p.num_pages ? page : -1;
}

__device__ __forceinline__ void flag(const FlexjitKvAppendParams& p, unsigned bit) {
  atomic_or(reinterpret_cast<int*>(p.device_error), static_cast<int>(bit));
}

} // namespace

extern "C" __global__ void __launch_bounds__(kThreads)
    flexjit_kv_append(const FlexjitKvAppendParams p, const FlexjitModArgs) {
  using Elem = unsigned short;
  // Work items: (b, h, t, 16-byte chunk) of K, then of V.
  const int k_chunks = p.dk / 8, v_chunks = p.dv / 8;
  const long long rows = static_cast<long long>(p.B) * p.Hkv * p.n_new;
  const long long total = rows * (k_chunks + v_chunks);
  const long long stride = static_cast<long long>(grid_dim_x()) * block_dim_x();
  for (long long i = global_thread_x(); i < total; i += stride) {
    const bool is_k = i < rows * k_chunks;
    const long long j = is_k ? i : i - rows * k_chunks;
    const int chunks = is_k ? k_chunks : v_chunks;
    const int c = static_cast<int>(j % chunks);
    const long long row = j / chunks;
    const int t = static_cast<int>(row % p.n_new);
    const int h = static_cast<int>(row / p.n_new % p.Hkv);
    const int b = static_cast<int>(row / p.n_new / p.Hkv);
    const int len = p.kv_lens[b];
    if (!fits(p, len)) {
      if (c == 0 && h == 0 && t == 0 && is_k)
        flag(p, FLEXJIT_DEVICE_ERROR_KV_LEN);
      continue;
    }
    const int pos = len + t;
    int64_t dst;
    const int64_t s0 = is_k ? p.kc_stride_0 : p.vc_stride_0,
                  s1 = is_k ? p.kc_stride_1 : p.vc_stride_1,
                  s2 = is_k ? p.kc_stride_2 : p.vc_stride_2;
    if (p.block_table) {
      const int page = page_of(p, b, pos);
      if (page < 0) {
        if (c == 0)
          flag(p, FLEXJIT_DEVICE_ERROR_PAGE);
        continue;
      }
      dst = page * s0 + (pos & ((1 << p.page_shift) - 1)) * s1 + h * s2;
    } else {
      dst = b * s0 + h * s1 + pos * s2;
    }
    const Elem* src = static_cast<const Elem*>(is_k ? p.k_new : p.v_new) +
                      b * (is_k ? p.kn_stride_b : p.vn_stride_b) +
                      h * (is_k ? p.kn_stride_h : p.vn_stride_h) +
                      t * (is_k ? p.kn_stride_s : p.vn_stride_s) + c * 8;
    Elem* out = static_cast<Elem*>(is_k ? p.k_cache : p.v_cache) + dst + c * 8;
    store_chunk16(out, load_chunk16(src));
  }
}

extern "C" __global__ void __launch_bounds__(kThreads)
    flexjit_kv_advance(const FlexjitKvAppendParams p, const FlexjitModArgs) {
  const long long stride = static_cast<long long>(grid_dim_x()) * block_dim_x();
  for (long long b = global_thread_x(); b < p.B; b += stride) {
    const int len = p.kv_lens[b];
    bool ok = fits(p, len);
    // Every page the new tokens went to (flexjit_kv_append skipped a bad one and flagged it).
    if (ok && p.block_table)
      for (int pos = len; pos < len + p.n_new; pos = ((pos >> p.page_shift) + 1) << p.page_shift)
        ok = ok && page_of(p, static_cast<int>(b), pos) >= 0;
    if (ok)
      p.kv_lens[b] = len + p.n_new;
  }
}
