// Uses an installed flexjit: builds a causal mask, prints its block mask and
// compiles a kernel to PTX.
#include <cstdio>

#include <flexjit/flexjit.h>

using namespace flexjit;

int main() {
  try {
    const MaskMod causal = mask_mod("causal", [](Idx, Idx, Idx q, Idx kv) { return q >= kv; });
    const BlockMask bm = create_block_mask(causal, 1, 1, 1024, 1024);
    std::printf("%s\n", bm.to_string().c_str());
    const CompiledKernel kernel =
        compile_to_ptx({TemplateKind::BlockClassify, Arch::SM90a, causal, ScoreMod()});
    std::printf("%s: %zu bytes of PTX, key %s\n", kernel.entry.c_str(), kernel.ptx.size(),
                kernel.key.c_str());
    if (kernel.ptx.find(".target sm_90a") == std::string::npos) {
      std::fprintf(stderr, "PTX does not target sm_90a\n");
      return 1;
    }
    return bm.sparsity() == 43.75 ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
