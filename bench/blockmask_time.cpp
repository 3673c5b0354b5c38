// Block-mask build time for the seed masks, B=H=1, 128x128 blocks: the median of several runs,
// with the sparsity as a sanity check.
//   flexjit_blockmask_bench [S [runs]]            the CPU builder (default S=8192, 5 runs)
//   flexjit_blockmask_bench --gpu [S [runs]]      the GPU builder beside the CPU one (document ids
//                                                 in device memory), each GPU mask checked equal
//                                                 to the CPU's; a first build compiles the
//                                                 classifier and is not timed; the last
//                                                 column keeps the arrays on the device
//                                                 (BlockMaskOptions::host_arrays false, what
//                                                 flex_attention needs)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>

#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

namespace {

double median_ms(const std::function<void()>& fn, int runs) {
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

bool same_arrays(const BlockMask& a, const BlockMask& b) {
  return a.kv_num_blocks == b.kv_num_blocks && a.kv_indices == b.kv_indices &&
         a.full_kv_num_blocks == b.full_kv_num_blocks && a.full_kv_indices == b.full_kv_indices &&
         a.q_num_blocks == b.q_num_blocks && a.q_indices == b.q_indices &&
         a.full_q_num_blocks == b.full_q_num_blocks && a.full_q_indices == b.full_q_indices;
}

} // namespace

int main(int argc, char** argv) {
  int arg = 1;
  const bool gpu = argc > 1 && std::strcmp(argv[1], "--gpu") == 0;
  arg += gpu;
  const int S = argc > arg ? std::atoi(argv[arg]) : 8192;
  const int runs = argc > arg + 1 ? std::atoi(argv[arg + 1]) : (gpu ? 21 : 5);
  if (gpu && !cuda_available()) {
    std::printf("flexjit_blockmask_bench --gpu: no CUDA device; skipped\n");
    return 0;
  }
  const std::vector<int32_t> docs = seeds::notebook_document_ids(S);
  const std::vector<MaskMod> masks = {
      seeds::causal(),       seeds::sliding_window(), seeds::prefix_lm(),
      seeds::document(docs), seeds::sasa(),           seeds::natten(),
  };
  DeviceBuffer docs_dev;
  BlockMaskOptions device;
  if (gpu) {
    docs_dev = DeviceBuffer(docs.size() * sizeof(int32_t));
    docs_dev.upload(docs.data(), docs.size() * sizeof(int32_t));
    device.device = Device::Cuda;
    device.bindings.buffers["document_id"] = docs_dev.view(DType::I32, {S});
  }
  std::printf("create_block_mask, S=%d, B=H=1, 128x128 blocks, median of %d runs\n", S, runs);
  std::printf("%-16s %12s %10s%s\n", "mask", "CPU ms", "sparsity",
              gpu ? "       GPU ms  GPU device-only ms" : "");
  for (const MaskMod& mod : masks) {
    BlockMask bm;
    const double ms = median_ms([&] { bm = create_block_mask(mod, 1, 1, S, S); }, gpu ? 3 : runs);
    std::printf("%-16s %12.3f %9.2f%%", mod.name().c_str(), ms, bm.sparsity());
    if (gpu) {
      BlockMask g = create_block_mask(mod, 1, 1, S, S, device); // compiles the classifier
      if (!same_arrays(g, bm)) {
        std::printf("\nthe GPU and CPU block masks of %s differ\n", mod.name().c_str());
        return 1;
      }
      const double gpu_ms =
          median_ms([&] { g = create_block_mask(mod, 1, 1, S, S, device); }, runs);
      BlockMaskOptions kept = device;
      kept.host_arrays = false;
      BlockMask d = create_block_mask(mod, 1, 1, S, S, kept);
      d.download_arrays();
      if (!same_arrays(d, bm)) {
        std::printf("\nthe device-only and CPU block masks of %s differ\n", mod.name().c_str());
        return 1;
      }
      const double kept_ms = median_ms([&] { d = create_block_mask(mod, 1, 1, S, S, kept); }, runs);
      std::printf(" %12.3f %19.3f", gpu_ms, kept_ms);
    }
    std::printf("\n");
  }
  return 0;
}
