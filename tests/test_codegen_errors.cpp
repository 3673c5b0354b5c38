// The codegen's errors (codegen/): a kernel the variant table has no row for. Each is
// an Error whose message names the bad value and what the table has (README.md,
// "Errors"). The node limits of the mods are in test_codegen_limits.cpp.
#include <catch2/catch.hpp>

#include <algorithm>

#include "flexjit/codegen/Codegen.h"
#include "flexjit/codegen/Variants.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;
using Catch::Contains;

TEST_CASE("variants: an attention dtype or head dim the variant table lacks is an Error",
          "[errors][codegen]") {
  KernelSpec spec{TemplateKind::AttentionForward, Arch::SM90a, seeds::causal(), ScoreMod()};
  KernelSpec bad = spec;
  bad.head_dim = 48;
  REQUIRE_THROWS_WITH(compile_to_ptx(bad), Contains("48") && Contains("128, 192 or 256"));
  bad = spec;
  bad.dtype = DType::F32;
  REQUIRE_THROWS_WITH(compile_to_ptx(bad), Contains("f32"));

  // The messages list what the table has, for the forward and the backward alike.
  for (TemplateKind kind : {TemplateKind::AttentionForward, TemplateKind::AttentionBackward}) {
    INFO(to_string(kind));
    std::vector<int> dims;
    for (const KernelVariant& v : kernel_variants())
      if (v.kind == kind && std::find(dims.begin(), dims.end(), v.dqk) == dims.end())
        dims.push_back(v.dqk);
    std::sort(dims.begin(), dims.end());
    const std::vector<int> expected = kind == TemplateKind::AttentionForward
                                          ? std::vector<int>{32, 64, 80, 96, 128, 192, 256}
                                          : std::vector<int>{64, 128};
    REQUIRE(dims == expected);
    REQUIRE_THROWS_WITH(find_variant(kind, Arch::SM80, DType::F16, 48),
                        Contains("attention head dim 48 is not supported: expected") &&
                            Contains(kind == TemplateKind::AttentionForward
                                         ? "32, 64, 80, 96, 128, 192 or 256"
                                         : "64 or 128"));
    REQUIRE_THROWS_WITH(find_variant(kind, Arch::SM80, DType::F32, 64),
                        Contains("attention dtype f32 is not supported: expected f16 or bf16"));
    REQUIRE_NOTHROW(find_variant(kind, Arch::SM80, DType::BF16, 128));
  }
}
