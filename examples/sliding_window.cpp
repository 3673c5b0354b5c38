// Sliding-window attention (Mistral): causal and at most SLIDING_WINDOW tokens
// back. The window is a run-time param: a new value needs no recompilation.
#include "example_common.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

int main() {
  return examples::run([] {
    // torch: causal_mask & (q_idx - kv_idx <= SLIDING_WINDOW), SLIDING_WINDOW = 1024
    const MaskMod swa = seeds::sliding_window(1024);
    examples::report("sliding window 1024", swa, noop_score(), 8192);

    // A call-time binding overrides the param's default; the kernels' cache
    // keys do not change.
    BlockMaskOptions narrow;
    narrow.bindings.params["window"] = 256;
    examples::report("sliding window 256 (param bound at call time)", swa, noop_score(),
                     examples::Shape{}, narrow);
  });
}
