// CPU block-mask build time at S=8192, B=H=1, 128x128 blocks, for the seed
// masks: the median of several runs, with the sparsity as a sanity check.
#include <algorithm>
#include <chrono>
#include <cstdio>
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

} // namespace

int main(int argc, char** argv) {
  const int S = argc > 1 ? std::atoi(argv[1]) : 8192;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  const std::vector<int32_t> docs = seeds::notebook_document_ids(S);
  const std::vector<MaskMod> masks = {
      seeds::causal(),       seeds::sliding_window(), seeds::prefix_lm(),
      seeds::document(docs), seeds::sasa(),           seeds::natten(),
  };
  std::printf("create_block_mask on the CPU, S=%d, B=H=1, 128x128 blocks, median of %d runs\n", S,
              runs);
  std::printf("%-16s %12s %10s\n", "mask", "build ms", "sparsity");
  for (const MaskMod& mod : masks) {
    BlockMask bm;
    const double ms = median_ms([&] { bm = create_block_mask(mod, 1, 1, S, S); }, runs);
    std::printf("%-16s %12.3f %9.2f%%\n", mod.name().c_str(), ms, bm.sparsity());
  }
  return 0;
}
