// Varlen (issue 13 item 7's varlen row): 16 causal sequences of fixed random lengths, 32768 tokens
// in all, Hq = Hkv = 16, D = 128, bf16. Three timings, medians of --reps:
//   varlen call  attention_forward_varlen end to end (host clock: cu_seqlens read, the block mask
//                built on the GPU, the kernel, the closing synchronization)
//   kernel       flex_attention under the equivalent document-causal block mask built once
//                (CUDA events), what torch's figure (bench/torch_varlen.py, mask built once) is
//   mask build   create_block_mask of that document mask on the GPU, its arrays kept there
//                (host_arrays false, as the varlen call's), host clock
// TF/s = 4 density H S^2 D / t with density from the block mask's tiles' exact pairs (the causal
// pairs within documents). Output poisoned first; rows checked against float64 per sequence.
//   flexjit_varlen_bench [--json FILE] [--reps N]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/HalfFloat.h"

using namespace flexjit;

namespace {

// The same list as bench/torch_varlen.py.
const std::vector<int> kLengths = {517,  3001, 1200, 64,  2900, 4096, 1,    1800,
                                   3333, 700,  2222, 999, 4500, 1377, 2555, 3503};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double host_ms(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

int main(int argc, char** argv) {
  std::string json_path;
  int reps = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc)
      json_path = argv[++i];
    else if (a == "--reps" && i + 1 < argc)
      reps = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: flexjit_varlen_bench [--json FILE] [--reps N]\n");
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (!cuda_available()) {
    std::printf("flexjit_varlen_bench: no CUDA device: skipped execution\n");
    return 0;
  }
  const int H = 16, D = 128, S = std::accumulate(kLengths.begin(), kLengths.end(), 0);
  const DType dtype = DType::BF16;
  std::mt19937 rng(5);
  // Packed [S, H, D] = the [1, H, S, D] BSHD layout.
  auto q = testing::make_tensor(1, H, S, D, dtype, true, rng, true);
  auto k = testing::make_tensor(1, H, S, D, dtype, true, rng, true);
  auto v = testing::make_tensor(1, H, S, D, dtype, true, rng, true);
  auto out = testing::make_tensor(1, H, S, D, dtype, true, rng, false);
  auto packed = [&](const testing::DeviceTensor& t) {
    return TensorView{t.view.data, dtype, Device::Cuda, 3, {S, H, D, 0}, {H * D, D, 1, 0}};
  };
  std::vector<int32_t> cu = {0}, doc(static_cast<size_t>(S));
  for (size_t b = 0; b < kLengths.size(); ++b) {
    std::fill(doc.begin() + cu.back(), doc.begin() + cu.back() + kLengths[b],
              static_cast<int32_t>(b));
    cu.push_back(cu.back() + kLengths[b]);
  }
  DeviceBuffer cu_buf(cu.size() * 4), doc_buf(doc.size() * 4);
  cu_buf.upload(cu.data(), cu.size() * 4);
  doc_buf.upload(doc.data(), doc.size() * 4);
  const TensorView cu_view = cu_buf.view(DType::I32, {static_cast<int64_t>(cu.size())});
  VarlenOptions vo;
  vo.causal = true;
  auto varlen = [&] {
    attention_forward_varlen(packed(q), packed(k), packed(v), cu_view, cu_view, packed(out), vo);
  };
  // The equivalent document-causal mask, its buffer on the device.
  IntBuffer docs = buffer_i32("document_id", doc_buf.view(DType::I32, {S}));
  const MaskMod mask = mask_mod(
      "document", [&](Idx, Idx, Idx qi, Idx kv) { return qi >= kv && docs[qi] == docs[kv]; });
  BlockMaskOptions bo;
  bo.device = Device::Cuda;
  bo.host_arrays = false; // as attention_forward_varlen builds its mask
  BlockMask bm = create_block_mask(mask, 1, 1, S, S, bo);
  FlexAttentionOptions fo;
  fo.block_mask = &bm;
  auto kernel = [&] { flex_attention(q.view, k.view, v.view, out.view, fo); };

  double pairs = 0;
  for (int len : kLengths)
    pairs += 0.5 * len * (len + 1.0);
  const double flops = 4.0 * pairs * H * D;
  // Correctness: the varlen call's output on rows of 4 sequences against float64.
  out.buffer.fill(0xff);
  const double cold = host_ms(varlen);
  double worst = 0;
  std::vector<uint16_t> bits(static_cast<size_t>(S) * H * D);
  out.buffer.download(bits.data(), bits.size() * 2);
  for (int b : {0, 6, 7, 15}) {
    const int len = kLengths[b], t0 = cu[b];
    auto slice = [&](const testing::DeviceTensor& t) {
      std::vector<float> s(static_cast<size_t>(H) * len * D);
      for (int h = 0; h < H; ++h)
        for (int i = 0; i < len; ++i)
          for (int d = 0; d < D; ++d)
            s[(static_cast<size_t>(h) * len + i) * D + d] =
                t.logical[((static_cast<size_t>(h)) * S + t0 + i) * D + d];
      return s;
    };
    const testing::AttentionInputs in{1, H, H, len, len, D, slice(q), slice(k), slice(v), D};
    std::vector<int64_t> rows;
    for (int h = 0; h < H; h += 5)
      for (int i = 0; i < len; i += std::max(1, len / 7))
        rows.push_back(static_cast<int64_t>(h) * len + i);
    const auto ref = testing::attention_reference(
        in, mask_mod("causal", [](Idx, Idx, Idx qi, Idx kv) { return qi >= kv; }), ScoreMod(),
        1.0 / std::sqrt(double(D)), {}, rows);
    std::vector<double> got;
    for (int64_t r : ref.rows) {
      const int h = static_cast<int>(r / len), i = static_cast<int>(r % len);
      for (int d = 0; d < D; ++d)
        got.push_back(
            testing::from_half_bits(bits[(static_cast<size_t>(t0 + i) * H + h) * D + d], dtype));
    }
    worst = std::max(worst, testing::relative_error(got, ref.out));
  }
  std::vector<double> t_varlen, t_kernel, t_mask;
  for (int i = 0; i < reps; ++i) {
    t_varlen.push_back(host_ms(varlen));
    t_kernel.push_back(time_on_stream(Stream{}, kernel, 1));
    t_mask.push_back(host_ms([&] { bm = create_block_mask(mask, 1, 1, S, S, bo); }));
  }
  const double mv = median(t_varlen), mk = median(t_kernel), mm = median(t_mask);
  fmt::print("varlen: 16 causal sequences, {} tokens, H {} D {} bf16\n", S, H, D);
  fmt::print("  varlen call {:8.3f} ms ({:5.0f} TF/s)  cold {:.1f} ms  rel err {:.2e}\n", mv,
             flops / mv / 1e9, cold, worst);
  fmt::print("  kernel      {:8.3f} ms ({:5.0f} TF/s)\n", mk, flops / mk / 1e9);
  fmt::print("  mask build  {:8.3f} ms (GPU builder)\n", mm);
  if (!json_path.empty())
    if (FILE* f = std::fopen(json_path.c_str(), "w")) {
      std::fprintf(f,
                   "{\"case\":\"varlen16\",\"S\":%d,\"H\":%d,\"D\":%d,\"varlen_ms\":%.4f,"
                   "\"kernel_ms\":%.4f,\"mask_ms\":%.4f,\"tflops_kernel\":%.1f,\"rel_err\":%.3e}\n",
                   S, H, D, mv, mk, mm, flops / mk / 1e9, worst);
      std::fclose(f);
    }
  return 0;
}
