// The notebook's checkerboard score mod: halves scores where |kv - q| % 1 == 0
// (every pair), then doubles them where |kv - q| is even.
#include "example_common.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

int main() {
  return examples::run([] {
    // torch: score = torch.where(torch.abs(kv_idx - q_idx) % 1 == 0, score * 0.5, score)
    //        score = torch.where(torch.abs(kv_idx - q_idx) % 2 == 0, score * 2.0, score)
    const ScoreMod checkerboard = seeds::checkerboard();
    examples::print_scores(checkerboard, 1.0f, 0, {0, 1, 2}, {0, 1, 2, 3});
    examples::report("checkerboard, no mask", noop_mask(), checkerboard, 8192);
  });
}
