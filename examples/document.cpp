// Document masking (packed sequences): causal within a document, nothing
// across documents. The document ids are a captured buffer, indexed by the mod.
#include "example_common.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

int main() {
  return examples::run([] {
    // torch: causal_mask(b, h, q_idx, kv_idx) & (document_id[q_idx] == document_id[kv_idx])
    const int S = 32768;
    const std::vector<int32_t> document_id = seeds::notebook_document_ids(S);
    examples::report("document mask, notebook document ids", seeds::document(document_id),
                     noop_score(), S);
  });
}
