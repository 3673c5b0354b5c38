// Prefix LM: the first PREFIX_LENGTH keys are visible to every query
// (bidirectional prefix), the rest causally.
#include "example_common.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

int main() {
  return examples::run([] {
    // torch: prefix_mask = kv_idx <= PREFIX_LENGTH; or_masks(prefix_mask, causal_mask)
    examples::report("prefix LM, prefix 2048", seeds::prefix_lm(2048), noop_score(), 8192);
  });
}
