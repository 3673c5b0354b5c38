// The attention calls' choice of kernel: the first row of the variant table the target
// runs and the problem meets, all decided before any compile.
#include <catch2/catch.hpp>

#include "flexjit/attention/AttentionChecks.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;
using Catch::Contains;

namespace {

AttentionProblem problem(DType dtype, int d, const BlockMask* bm) {
  AttentionProblem p;
  p.dtype = dtype;
  p.B = 1;
  p.Hq = p.Hkv = 1;
  p.q_len = p.kv_len = 1024;
  p.head_dim = p.head_dim_v = d;
  p.block_mask = bm;
  return p;
}

Target target(Arch arch) {
  Target t;
  t.major = 9;
  t.arch = arch;
  return t;
}

} // namespace

TEST_CASE("select_variant: the device's kernels first, sm_80 where the tiles need it",
          "[attention][variants]") {
  const MaskMod causal = seeds::causal();
  BlockMaskOptions fine;
  fine.kv_block = 64;
  const BlockMask bm128 = create_block_mask(causal, 1, 1, 1024, 1024);
  const BlockMask bm64 = create_block_mask(causal, 1, 1, 1024, 1024, fine);
  for (DType dtype : {DType::F16, DType::BF16})
    for (int d : {64, 128}) {
      INFO(to_string(dtype) << " d" << d);
      const Target hopper = target(Arch::SM90a), forced = target(Arch::SM80);
      // Forward: sm_90a on Hopper for both tilings; sm_80 under FLEXJIT_ARCH=sm_80.
      for (const BlockMask* bm : {static_cast<const BlockMask*>(nullptr), &bm128, &bm64}) {
        CHECK(select_variant(TemplateKind::AttentionForward, hopper, problem(dtype, d, bm)).arch ==
              Arch::SM90a);
        CHECK(select_variant(TemplateKind::AttentionForward, forced, problem(dtype, d, bm)).arch ==
              Arch::SM80);
      }
      // Backward: the sm_90a kernel owns 128 kv rows; a 64-row kv_block runs sm_80's.
      const KernelVariant& b128 =
          select_variant(TemplateKind::AttentionBackward, hopper, problem(dtype, d, &bm128));
      CHECK(b128.arch == Arch::SM90a);
      CHECK(bm128.kv_block % b128.kv_block_multiple == 0);
      const KernelVariant& b64 =
          select_variant(TemplateKind::AttentionBackward, hopper, problem(dtype, d, &bm64));
      CHECK(b64.arch == Arch::SM80);
      CHECK(b64.dtype == dtype);
      CHECK(b64.dqk == d);
      CHECK(select_variant(TemplateKind::AttentionBackward, hopper, problem(dtype, d, nullptr))
                .arch == Arch::SM90a);
      CHECK(
          select_variant(TemplateKind::AttentionBackward, forced, problem(dtype, d, &bm128)).arch ==
          Arch::SM80);
    }
  // No kernel of any arch takes a 32-row kv_block: the error names the constraint.
  BlockMaskOptions too_fine;
  too_fine.kv_block = 32;
  const BlockMask bm32 = create_block_mask(causal, 1, 1, 1024, 1024, too_fine);
  REQUIRE_THROWS_WITH(select_variant(TemplateKind::AttentionForward, target(Arch::SM90a),
                                     problem(DType::F16, 64, &bm32)),
                      Contains("flex_attention: block mask kv_block 32 must be a multiple of 64 "
                               "on this GPU (sm_90a kernels)"));
}
