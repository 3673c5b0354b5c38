// Jagged (nested) sequences packed back to back: causal within each sequence,
// positions taken relative to the sequence's start through `offsets`.
#include "example_common.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

int main() {
  return examples::run([] {
    // torch: q_logical = q_idx - offsets[seq_idx[q_idx]] (kv likewise);
    //        (q_logical >= kv_logical) & (seq_idx[q_idx] == seq_idx[kv_idx])
    const std::vector<int32_t> offsets = {0, 1000, 1500, 4000, 6500, 8192};
    std::vector<int32_t> seq_idx;
    for (size_t s = 0; s + 1 < offsets.size(); ++s)
      seq_idx.insert(seq_idx.end(), static_cast<size_t>(offsets[s + 1] - offsets[s]),
                     static_cast<int32_t>(s));
    examples::report("jagged causal, 5 sequences", seeds::jagged_causal(offsets, seq_idx),
                     noop_score(), offsets.back());
  });
}
