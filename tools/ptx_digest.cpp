// Digests of the PTX that compile_to_ptx emits for the seed mods' kernels: every
// template, dtype, head dim and arch of the library, for each seed mask with the noop
// score_mod and each seed score_mod with the causal mask. Two builds that print the same
// lines emit byte-identical PTX (scripts/ptx_identity.sh compares them with the listing
// committed in bench/).
//
//   flexjit_ptx_digest [threads=2] > digests.txt
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <flexjit/flexjit.h>

#if __has_include("flexjit/testing/SeedCatalog.h")
#include "flexjit/testing/SeedCatalog.h"
#else
#include "tests/SeedCatalog.h" // the tree before the testing/ library
#endif

using namespace flexjit;

namespace {

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text)
    h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

struct Job {
  std::string label;
  KernelSpec spec;
  std::string line;
};

} // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::max(1, std::atoi(argv[1])) : 2;
  const testing::SeedCatalog seeds;
  std::vector<std::pair<MaskMod, ScoreMod>> pairs;
  for (const MaskMod& m : seeds.masks)
    pairs.emplace_back(m, noop_score());
  for (size_t i = 1; i < seeds.scores.size(); ++i)
    pairs.emplace_back(seeds.masks[0], seeds.scores[i]);

  std::vector<Job> jobs;
  for (const auto& [mask, score] : pairs)
    for (Arch arch : {Arch::SM80, Arch::SM90a}) {
      for (TemplateKind kind :
           {TemplateKind::BlockClassify, TemplateKind::CreateMask, TemplateKind::EvalPoints}) {
        KernelSpec spec{kind, arch, mask, score};
        jobs.push_back(
            {std::string(to_string(kind)) + " " + std::string(to_string(arch)), spec, ""});
      }
      for (TemplateKind kind : {TemplateKind::AttentionForward, TemplateKind::AttentionBackward})
        for (DType dtype : {DType::F16, DType::BF16})
          for (int d : {64, 128}) {
            KernelSpec spec{kind, arch, mask, score};
            spec.dtype = dtype;
            spec.head_dim = d;
            jobs.push_back({std::string(to_string(kind)) + " " + std::string(to_string(arch)) +
                                " " + std::string(to_string(dtype)) + " d" + std::to_string(d),
                            spec, ""});
          }
    }
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (size_t i = next++; i < jobs.size(); i = next++) {
        Job& job = jobs[i];
        const CompiledKernel k = compile_to_ptx(job.spec);
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(k.ptx)));
        job.line = job.label + " " + job.spec.mask.name() + " " + job.spec.score.name() + " " +
                   k.entry + " " + std::to_string(k.ptx.size()) + " " + hex;
      }
    });
  for (std::thread& t : pool)
    t.join();
  for (const Job& job : jobs)
    std::printf("%s\n", job.line.c_str());
  std::fprintf(stderr, "ptx_digest: %zu kernels\n", jobs.size());
  return 0;
}
