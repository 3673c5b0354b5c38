// Tanh soft-capping (Gemma 2, Grok): score -> cap * tanh(score / cap), here
// with the fast PTX tanh.approx.f32 and with the exact tanh.
#include "example_common.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

int main() {
  return examples::run([] {
    // torch: score = score / softcap; score = torch.tanh(score); return score * softcap
    const float cap = 20.0f;
    const ScoreMod approx = seeds::soft_cap(cap, true);
    const ScoreMod exact = seeds::soft_cap(cap, false);
    examples::print_scores(exact, 50.0f, 0, {0}, {0});
    examples::report("soft-capping 20 (tanh.approx), causal", seeds::causal(), approx, 8192);
    examples::report("soft-capping 20 (tanh), causal", seeds::causal(), exact, 8192);
  });
}
