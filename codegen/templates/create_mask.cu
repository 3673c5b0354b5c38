// The dense mask: out[b, h, q, kv] = mask_mod(b, h, q, kv) as 0 or 1, for a
// contiguous [B, H, q_len, kv_len] byte tensor. A grid-stride loop in 64-bit
// indices, so any grid covers any size.
#include "codegen/templates/prelude.h"

using namespace flexjit::dev;

extern "C" __global__ void flexjit_create_mask(FlexjitModArgs args, int B, int H, int q_len,
                                               int kv_len, unsigned char* out) {
  const long long total = static_cast<long long>(B) * H * q_len * kv_len;
  const long long stride = static_cast<long long>(grid_dim_x()) * block_dim_x();
  for (long long i = global_thread_x(); i < total; i += stride) {
    const long long row = i / kv_len; // (b * H + h) * q_len + q
    const long long bh = row / q_len;
    const int kv = static_cast<int>(i - row * kv_len);
    const int q = static_cast<int>(row - bh * q_len);
    const int h = static_cast<int>(bh % H);
    const int b = static_cast<int>(bh / H);
    out[i] = flexjit_mask_mod(b, h, q, kv, &args) ? 1 : 0;
  }
}
