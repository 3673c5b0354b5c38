// DSL -> PTX compile time per seed mod, template and architecture: the first
// compile in the process (LLVM's one-time target setup included), the first
// compile of each spec, and the median of repeated compiles with its phases; then the
// warp-specialized sm_90a forward at every head-dim pair of the variant table with every
// seed pair (SeedCatalog::attention_pairs): the median and the slowest pair per head dim.
//
//   flexjit_compile_bench [repeats=9]
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "flexjit/codegen/Build.h"
#include "flexjit/testing/SeedCatalog.h"
#include "flexjit/testing/VariantRows.h"

using namespace flexjit;

namespace {

double ms_of(const auto& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

struct Row {
  double first_ms;
  CompileTimes median;
};

// The first of 1 + repeats compiles, timed whole, and the median of the rest by its phases.
Row measure(const auto& compile, int repeats) {
  Row row{};
  row.first_ms = ms_of([&] { compile(); });
  std::vector<CompileTimes> runs;
  for (int i = 0; i < repeats; ++i)
    runs.push_back(compile().times);
  std::sort(runs.begin(), runs.end(),
            [](const CompileTimes& a, const CompileTimes& b) { return a.total_ms < b.total_ms; });
  row.median = runs[runs.size() / 2];
  return row;
}

Row measure(const KernelSpec& spec, int repeats) {
  return measure([&] { return compile_to_ptx(spec); }, repeats);
}

// The warp-specialized forward (the table's whole-program rows), one dtype per head-dim pair
// (f16 and bf16 differ only in the products' types), every seed pair: per head dim the
// median over the pairs and the slowest pair. Returns the slowest median.
double measure_ws_forward(const testing::SeedCatalog& seeds, int repeats) {
  fmt::print("\n{:38} {:>8} {:>8}  {}\n", "warp-specialized forward (sm_90a)", "median", "slowest",
             "slowest pair (its lower / link / opt / codegen)");
  double worst = 0;
  for (const KernelVariant* row : testing::forward_rows_per_head_dims(
           [](const KernelVariant& v) { return v.whole_program; })) {
    const KernelVariant& v = *row;
    std::vector<double> medians;
    Row slowest{};
    std::string slowest_pair;
    for (const auto& [mask, score] : seeds.attention_pairs()) {
      const auto mods = prepare_mods(mask, score);
      const Row row = measure([&] { return compile_variant(v, *mods); }, repeats);
      medians.push_back(row.median.total_ms);
      if (row.median.total_ms > slowest.median.total_ms) {
        slowest = row;
        slowest_pair = mask.name() + " x " + score.name();
      }
    }
    std::sort(medians.begin(), medians.end());
    const CompileTimes& t = slowest.median;
    fmt::print("{:38} {:8.1f} {:8.1f}  {} ({:.1f} / {:.1f} / {:.1f} / {:.1f})\n", v.main.entry,
               medians[medians.size() / 2], t.total_ms, slowest_pair, t.lower_ms, t.link_ms,
               t.optimize_ms, t.codegen_ms);
    worst = std::max(worst, t.total_ms);
  }
  return worst;
}

void print_row(const KernelSpec& spec, std::string_view mod, const Row& row) {
  const CompileTimes& t = row.median;
  fmt::print("{:15} {:7} {:24} {:8.1f} {:8.1f} {:7.1f} {:7.1f} {:7.1f} {:7.1f}\n",
             to_string(spec.kind), to_string(spec.arch), mod, row.first_ms, t.total_ms, t.lower_ms,
             t.link_ms, t.optimize_ms, t.codegen_ms);
}

} // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 9;
  const testing::SeedCatalog seeds;

  const double process_first_ms = ms_of([&] {
    compile_to_ptx({TemplateKind::BlockClassify, Arch::SM90a, seeds.masks[0], ScoreMod()});
  });
  fmt::print("first compile in the process: {:.1f} ms\n\n", process_first_ms);
  fmt::print("{:15} {:7} {:24} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7}\n", "template", "arch", "mod",
             "first", "median", "lower", "link", "opt", "codegen");

  double worst = 0;
  for (TemplateKind kind : {TemplateKind::BlockClassify, TemplateKind::CreateMask,
                            TemplateKind::AttentionForward, TemplateKind::AttentionBackward}) {
    for (Arch arch : {Arch::SM80, Arch::SM90a}) {
      for (const MaskMod& mask : seeds.masks) {
        const KernelSpec spec{kind, arch, mask, ScoreMod()};
        const Row row = measure(spec, repeats);
        worst = std::max(worst, row.median.total_ms);
        print_row(spec, mask.name(), row);
      }
    }
  }
  // Score mods are lowered and linked into every template; these two drop them
  // after linking, so the rows show the cost of lowering them (and libdevice).
  for (const ScoreMod& score : seeds.scores) {
    const KernelSpec spec{TemplateKind::CreateMask, Arch::SM90a, seeds.masks[0], score};
    const Row row = measure(spec, repeats);
    worst = std::max(worst, row.median.total_ms);
    print_row(spec, "score:" + score.name(), row);
  }
  const int ws_repeats = std::min(repeats, 3);
  const double ws_worst = measure_ws_forward(seeds, ws_repeats);
  fmt::print("\nslowest median: {:.1f} ms over the templates ({} repeats), {:.1f} ms over the "
             "warp-specialized forward ({} repeats); all times in ms\n",
             worst, repeats, ws_worst, ws_repeats);
  return 0;
}
