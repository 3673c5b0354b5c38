// Digests of the PTX that compile_variant emits for the seed mods' kernels: every row of
// the variant table (template, dtype, head dims, arch), for each seed mask with the noop
// score_mod and each seed score_mod with the causal mask. Two builds that print the same
// lines emit the same PTX up to the numbering of its virtual registers: the digest is of the
// PTX with each register class renumbered in order of first appearance (canonical_ptx), so a
// refactor that only makes LLVM create the same values in another order reads as identical
// (scripts/ptx_identity.sh compares them with the listing committed in bench/).
//
//   flexjit_ptx_digest [threads=2] > digests.txt
//   flexjit_ptx_digest --ptx ENTRY [ARCH [MASK [SCORE]]] > kernel.ptx
//     one row's PTX (ARCH "-": the first row with that entry), with the seed mask and score_mod
//     of those names (default: noop mods), e.g. for one pair's spills:
//     flexjit_ptx_digest --ptx flexjit_attention_fwd_ws_f16_d80 - document alibi_buffer > k.ptx
//     ptxas -arch=sm_90a -v k.ptx
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/codegen/Build.h"
#include "flexjit/codegen/Variants.h"

#include "flexjit/testing/SeedCatalog.h"

using namespace flexjit;

namespace {

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text)
    h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// `ptx` with the virtual registers of each class (%r, %rd, %f, %p, ...: letters then digits)
// renamed %<class>0, %<class>1, ... in order of first appearance; declarations (%f<12>) and
// special registers (%tid.x) stay as they are.
std::string canonical_ptx(const std::string& ptx) {
  std::string out;
  out.reserve(ptx.size());
  std::map<std::string, std::map<std::string, int>> names; // class -> register -> number
  for (size_t i = 0; i < ptx.size();) {
    size_t j = i + 1;
    if (ptx[i] == '%')
      while (j < ptx.size() && std::islower(static_cast<unsigned char>(ptx[j])))
        ++j;
    size_t k = j;
    while (k < ptx.size() && std::isdigit(static_cast<unsigned char>(ptx[k])))
      ++k;
    if (ptx[i] != '%' || j == i + 1 || k == j) {
      out += ptx[i++];
      continue;
    }
    const std::string cls = ptx.substr(i + 1, j - i - 1);
    auto& numbers = names[cls];
    const auto it =
        numbers.try_emplace(ptx.substr(j, k - j), static_cast<int>(numbers.size())).first;
    out += '%' + cls + std::to_string(it->second);
    i = k;
  }
  return out;
}

struct Job {
  std::string label;
  const KernelVariant* variant;
  MaskMod mask;
  ScoreMod score;
  std::string line;
};

// The seed mod named `name` among `mods` (MaskMod or ScoreMod), or null after listing the names.
template <class Mod>
const Mod* seed_named(const std::vector<Mod>& mods, const char* what, const std::string& name) {
  for (const Mod& m : mods)
    if (m.name() == name)
      return &m;
  std::string names;
  for (const Mod& m : mods)
    names += " " + m.name();
  std::fprintf(stderr, "ptx_digest: no seed %s named '%s'; the seeds:%s\n", what, name.c_str(),
               names.c_str());
  return nullptr;
}

// --ptx's arguments: ENTRY [ARCH [MASK [SCORE]]].
int print_ptx(int argc, char** argv) {
  const std::string entry = argv[0], arch = argc > 1 ? argv[1] : "-";
  const testing::SeedCatalog seeds;
  const MaskMod no_mask;
  const ScoreMod noop = noop_score();
  const MaskMod* mask = argc > 2 ? seed_named(seeds.masks, "mask", argv[2]) : &no_mask;
  const ScoreMod* score = argc > 3 ? seed_named(seeds.scores, "score_mod", argv[3]) : &noop;
  if (!mask || !score)
    return 2;
  for (const KernelVariant& v : kernel_variants())
    if (v.main.entry == entry && (arch == "-" || to_string(v.arch) == arch)) {
      const CompiledKernel k = compile_variant(v, *prepare_mods(*mask, *score));
      std::fwrite(k.ptx.data(), 1, k.ptx.size(), stdout);
      return 0;
    }
  std::fprintf(stderr, "ptx_digest: no variant table row has the entry '%s'%s%s\n", entry.c_str(),
               arch == "-" ? "" : " for ", arch == "-" ? "" : arch.c_str());
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  // --ptx ENTRY [ARCH [MASK [SCORE]]]: the PTX of the (first) table row with that entry (and
  // arch), for the named seed mods (for scripts/sass_report.sh and per-pair spill checks).
  if (argc >= 3 && argc <= 6 && std::string(argv[1]) == "--ptx")
    return print_ptx(argc - 2, argv + 2);
  const int threads = argc > 1 ? std::max(1, std::atoi(argv[1])) : 2;
  const testing::SeedCatalog seeds;
  std::vector<std::pair<MaskMod, ScoreMod>> pairs;
  for (const MaskMod& m : seeds.masks)
    pairs.emplace_back(m, noop_score());
  for (size_t i = 1; i < seeds.scores.size(); ++i)
    pairs.emplace_back(seeds.masks[0], seeds.scores[i]);

  // Every row of the variant table (so every template, including the rows a problem reaches
  // only through a constraint, as the sm_90a forward before the warp-specialized one).
  std::vector<Job> jobs;
  for (const auto& [mask, score] : pairs)
    for (const KernelVariant& v : kernel_variants())
      jobs.push_back({v.describe() + " " + v.stem, &v, mask, score, ""});
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (size_t i = next++; i < jobs.size(); i = next++) {
        Job& job = jobs[i];
        const CompiledKernel k = compile_variant(*job.variant, *prepare_mods(job.mask, job.score));
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx",
                      static_cast<unsigned long long>(fnv1a(canonical_ptx(k.ptx))));
        job.line = job.label + " " + job.mask.name() + " " + job.score.name() + " " + k.entry +
                   " " + std::to_string(k.ptx.size()) + " " + hex;
      }
    });
  for (std::thread& t : pool)
    t.join();
  for (const Job& job : jobs)
    std::printf("%s\n", job.line.c_str());
  std::fprintf(stderr, "ptx_digest: %zu kernels\n", jobs.size());
  return 0;
}
