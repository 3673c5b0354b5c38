// Device tensors for the [gpu] attention tests: random f16/bf16 [B, H, S, D] tensors in
// BHSD or BSHD layout with their rounded values kept for the float64 reference, and the
// skip without a device.
#pragma once

#include <array>
#include <random>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/testing/HalfFloat.h"

#define SKIP_WITHOUT_CUDA()                                                                        \
  do {                                                                                             \
    if (!cuda_available()) {                                                                       \
      SUCCEED("skipped: no CUDA device");                                                          \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

namespace flexjit::testing {

// Element strides of a logical [B, H, S, D] tensor stored BHSD or BSHD.
inline std::array<int64_t, 4> strides_of(int H, int S, int D, bool bshd) {
  if (bshd)
    return {int64_t{S} * H * D, D, int64_t{H} * D, 1};
  return {int64_t{H} * S * D, int64_t{S} * D, D, 1};
}

struct DeviceTensor {
  DeviceBuffer buffer;
  TensorView view;
  std::vector<float> logical; // rounded values, [B, H, S, D] contiguous
};

inline DeviceTensor make_tensor(int B, int H, int S, int D, DType dtype, bool bshd,
                                std::mt19937& rng, bool random) {
  DeviceTensor t;
  const size_t n = static_cast<size_t>(B) * H * S * D;
  const auto st = strides_of(H, S, D, bshd);
  std::vector<uint16_t> stored(n, 0xffff); // NaN in f16 and bf16: the poison
  t.logical.assign(n, 0.0f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  if (random)
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < H; ++h)
        for (int s = 0; s < S; ++s)
          for (int d = 0; d < D; ++d) {
            const uint16_t bits = to_half_bits(normal(rng), dtype);
            t.logical[((static_cast<size_t>(b) * H + h) * S + s) * D + d] =
                from_half_bits(bits, dtype);
            stored[b * st[0] + h * st[1] + s * st[2] + d] = bits;
          }
  t.buffer = DeviceBuffer(n * 2);
  t.buffer.upload(stored.data(), n * 2);
  t.view = t.buffer.view(dtype, {B, H, S, D}, {st[0], st[1], st[2], st[3]});
  return t;
}

// t's stored f16 / bf16 bits, in its own layout (a synchronous copy).
inline std::vector<uint16_t> download_bits(const DeviceTensor& t) {
  std::vector<uint16_t> bits(t.logical.size());
  t.buffer.download(bits.data(), bits.size() * 2);
  return bits;
}

// q, k and v (random) and out (poisoned) of one attention problem, in one layout.
struct AttentionTensors {
  DeviceTensor q, k, v, out;
};
inline AttentionTensors make_attention_tensors(int B, int Hq, int Hkv, int q_len, int kv_len,
                                               int dqk, int dv, DType dtype, bool bshd,
                                               std::mt19937& rng) {
  AttentionTensors t;
  t.q = make_tensor(B, Hq, q_len, dqk, dtype, bshd, rng, true);
  t.k = make_tensor(B, Hkv, kv_len, dqk, dtype, bshd, rng, true);
  t.v = make_tensor(B, Hkv, kv_len, dv, dtype, bshd, rng, true);
  t.out = make_tensor(B, Hq, q_len, dv, dtype, bshd, rng, false);
  return t;
}

} // namespace flexjit::testing
