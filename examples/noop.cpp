// No mask, no score mod: plain attention. Every tile is full, so the block
// mask has sparsity 0% and the kernels skip mask evaluation entirely.
#include "example_common.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

int main() {
  return examples::run([] {
    // torch: flex_attention(query, key, value) with no mods.
    examples::report("noop: full attention", noop_mask(), noop_score(), 8192);
  });
}
