// DSL -> PTX compile time per seed mod, template and architecture: the first
// compile in the process (LLVM's one-time target setup included), the first
// compile of each spec, and the median of repeated compiles with its phases.
//
//   flexjit_compile_bench [repeats=9]
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>

#include "flexjit/testing/SeedCatalog.h"

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

Row measure(const KernelSpec& spec, int repeats) {
  Row row{};
  row.first_ms = ms_of([&] { compile_to_ptx(spec); });
  std::vector<CompileTimes> runs;
  for (int i = 0; i < repeats; ++i)
    runs.push_back(compile_to_ptx(spec).times);
  std::sort(runs.begin(), runs.end(),
            [](const CompileTimes& a, const CompileTimes& b) { return a.total_ms < b.total_ms; });
  row.median = runs[runs.size() / 2];
  return row;
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
  fmt::print("\nslowest median: {:.1f} ms (all times in ms, {} repeats)\n", worst, repeats);
  return 0;
}
