// ALiBi: a per-head linear bias slope_h * (q - kv) added to every score, in
// the functional form (slope computed from h) and the notebook's closure form
// (slopes captured in a buffer). Both give the same scores.
#include "example_common.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

int main() {
  return examples::run([] {
    const int heads = 16;
    // torch: score + alibi_bias[h] * (q_idx - kv_idx), alibi_bias[h] = 2^(-(h+1)*8/H)
    const ScoreMod functional = seeds::alibi(heads);
    const std::vector<float> slopes = seeds::alibi_slopes(heads);
    const ScoreMod captured = seeds::alibi_buffer(slopes);
    examples::print_scores(functional, 1.0f, 0, {0, 100, 1000}, {0, 100, 1000});
    examples::print_scores(captured, 1.0f, 0, {0, 100, 1000}, {0, 100, 1000});
    examples::report("ALiBi (functional slope), causal", seeds::causal(), functional, 4096);
    examples::report("ALiBi (slopes in a buffer), causal", seeds::causal(), captured, 4096);
  });
}
