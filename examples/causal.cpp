// Causal attention: query q may attend key kv when q >= kv. Tiles on the
// diagonal are partial, those below it full, those above it empty (skipped).
#include "example_common.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

int main() {
  return examples::run([] {
    // torch: def causal_mask(b, h, q_idx, kv_idx): return q_idx >= kv_idx
    const MaskMod causal = seeds::causal();
    examples::report("causal", causal, noop_score(), 8192);

    // The same mask, B=4 and H=16: it reads neither b nor h, so the builder
    // classifies one (b, h) and replicates it.
    examples::report("causal, B=4 H=16 (broadcast)", causal, noop_score(),
                     examples::Shape{4, 16, 2048, 2048});
  });
}
