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

TEST_CASE("select_variant: the persistent grid where the schedule takes it",
          "[attention][variants]") {
  using Schedule = FlexAttentionOptions::Schedule;
  const BlockMask bm = create_block_mask(seeds::causal(), 1, 1, 1024, 1024);
  // Auto: D <= 64 always; wider under a block mask up to kv_len 4096.
  for (int kv_len : {1, 4096, 4097, 32768}) {
    INFO("kv_len " << kv_len);
    AttentionProblem narrow = problem(DType::F16, 64, nullptr),
                     wide = problem(DType::BF16, 128, &bm);
    narrow.kv_len = wide.kv_len = kv_len;
    CHECK(persistent_schedule(Schedule::Auto, narrow));
    CHECK(persistent_schedule(Schedule::Auto, wide) == (kv_len <= 4096));
    wide.block_mask = nullptr;
    CHECK_FALSE(persistent_schedule(Schedule::Auto, wide));
    for (const AttentionProblem* p : {&narrow, &wide}) {
      CHECK(persistent_schedule(Schedule::Persistent, *p));
      CHECK_FALSE(persistent_schedule(Schedule::OneTilePerCta, *p));
    }
  }

  for (DType dtype : {DType::F16, DType::BF16})
    for (int d : {32, 64, 80, 96, 128, 192, 256}) {
      INFO(to_string(dtype) << " d" << d);
      AttentionProblem q = problem(dtype, d, nullptr);
      q.persistent = true;
      const KernelVariant& persistent =
          select_variant(TemplateKind::AttentionForward, target(Arch::SM90a), q);
      CHECK(persistent.persistent());
      CHECK(persistent.main.grid == GridRule::WorkTiles);
      CHECK(std::string(persistent.main.entry).find("_persistent_") != std::string::npos);
      // sm_80 has no persistent kernel: the schedule does not apply there.
      CHECK_FALSE(
          select_variant(TemplateKind::AttentionForward, target(Arch::SM80), q).persistent());
      q.persistent = false;
      const KernelVariant& one =
          select_variant(TemplateKind::AttentionForward, target(Arch::SM90a), q);
      CHECK_FALSE(one.persistent());
      CHECK(one.arch == Arch::SM90a);
      CHECK(one.main.smem_bytes == persistent.main.smem_bytes); // one shape, two schedules
      // More work tiles than the kernel counts in int32: one tile per CTA.
      q.persistent = true;
      q.B = q.Hq = q.Hkv = 65535;
      q.q_len = 129;
      CHECK_FALSE(
          select_variant(TemplateKind::AttentionForward, target(Arch::SM90a), q).persistent());
    }
}

TEST_CASE("grid_dims: a persistent grid has at most the resident CTAs", "[attention][variants]") {
  const KernelShape shape{"w", 384, 0, GridRule::WorkTiles, 128, 128};
  LaunchSizes s;
  s.B = 2, s.Hq = 3, s.q_len = 129; // 2 q tiles x 6 planes = 12 work tiles
  CHECK(grid_dims(shape, s).x == 12);
  s.resident_ctas = 132;
  CHECK(grid_dims(shape, s).x == 12);
  s.resident_ctas = 5;
  CHECK(grid_dims(shape, s).x == 5);
  CHECK(grid_dims(shape, s).y == 1);
  CHECK(grid_dims(shape, s).z == 1);
}

TEST_CASE("select_variant: split-KV decoding for short rows", "[attention][variants][decode]") {
  using Schedule = FlexAttentionOptions::Schedule;
  const BlockMask bm = create_block_mask(seeds::causal(), 1, 1, 16, 1024);
  BlockMaskOptions per_head_options;
  per_head_options.q_block = 16;
  const BlockMask per_head = create_block_mask(seeds::causal(), 1, 8, 16, 1024, per_head_options);
  for (int q_len : {1, 16, 17, 64, 65}) {
    INFO("q_len " << q_len);
    AttentionProblem p = problem(DType::BF16, 128, nullptr);
    p.q_len = q_len;
    CHECK(decode_schedule(Schedule::Auto, p) == (q_len <= 16));
    CHECK(decode_schedule(Schedule::SplitKv, p));
    CHECK_FALSE(decode_schedule(Schedule::Persistent, p));
    CHECK_FALSE(decode_schedule(Schedule::OneTilePerCta, p));
  }
  for (DType dtype : {DType::F16, DType::BF16})
    for (auto [dqk, dv] : {std::pair{32, 32},
                           {64, 64},
                           {80, 80},
                           {96, 96},
                           {128, 128},
                           {192, 128},
                           {192, 192},
                           {256, 256}}) {
      INFO(to_string(dtype) << " d" << dqk << "/" << dv);
      AttentionProblem p = problem(dtype, dqk, nullptr);
      p.head_dim_v = dv;
      p.Hq = 32, p.Hkv = 8, p.q_len = 1;
      p.decode = true;
      p.decode_heads = decode_heads(p);
      CHECK(p.decode_heads == 4);
      const KernelVariant& v =
          select_variant(TemplateKind::AttentionForward, target(Arch::SM90a), p);
      CHECK(v.decode());
      CHECK(std::string(v.main.entry).find("decode_ws") != std::string::npos);
      CHECK(v.companion(CompanionRole::Epilogue) != nullptr);
      // sm_80 has no decode kernel: its forward takes the rows.
      CHECK_FALSE(select_variant(TemplateKind::AttentionForward, target(Arch::SM80), p).decode());
      // A block mask whose q_block holds the rows; one with a finer q_block does not.
      p.q_len = 16;
      p.block_mask = &bm;
      CHECK(select_variant(TemplateKind::AttentionForward, target(Arch::SM90a), p).decode());
      p.q_len = 17;
      p.decode_heads = decode_heads(p);
      p.block_mask = &per_head; // q_block 16: no kernel takes 17 rows of it
      CHECK_THROWS_WITH(select_variant(TemplateKind::AttentionForward, target(Arch::SM90a), p),
                        Contains("block mask q_block 16"));
      p.decode = false;
      p.q_len = 1;
      p.block_mask = nullptr;
      CHECK_FALSE(select_variant(TemplateKind::AttentionForward, target(Arch::SM90a), p).decode());
    }
  // Packing: the largest divisor of the group whose rows fit 64; one head under per-head masks.
  AttentionProblem p = problem(DType::F16, 64, nullptr);
  p.Hq = 48, p.Hkv = 4; // groups of 12
  for (auto [q_len, heads] : {std::pair{1, 12}, {5, 12}, {6, 6}, {16, 4}, {33, 1}, {65, 0}}) {
    p.q_len = q_len;
    CHECK(decode_heads(p) == heads);
  }
  p.q_len = 1;
  p.Hq = 8, p.Hkv = 1;
  p.block_mask = &per_head;
  CHECK(decode_heads(p) == 1);
}

TEST_CASE("decode_splits: fill the SMs, fullest last wave, never more than the kv tiles",
          "[attention][variants][decode]") {
  AttentionProblem p = problem(DType::BF16, 128, nullptr);
  p.B = 32, p.Hq = 32, p.Hkv = 8, p.q_len = 1, p.kv_len = 8192;
  p.decode_heads = 4;
  // 256 CTAs of one split are two waves on 132 SMs, 97% full: more splits fill no better.
  CHECK(decode_splits(p, 128, 132) == 1);
  // One sequence: 8 CTAs per split -> at least 17 splits; 33 fill two waves exactly (264).
  p.B = 1;
  p.kv_len = 131072;
  CHECK(decode_splits(p, 128, 132) == 33);
  // Short rows: at most one split per kv tile.
  p.kv_len = 300;
  CHECK(decode_splits(p, 128, 132) == 3);
  p.kv_len = 1;
  CHECK(decode_splits(p, 128, 132) == 1);
}

TEST_CASE("grid_dims: the decode grid is (splits, Hq / packed heads, B)", "[attention][variants]") {
  const KernelShape shape{"d", 256, 0, GridRule::KvSplits, 64, 128};
  LaunchSizes s;
  s.B = 3, s.Hq = 32, s.Hkv = 8;
  s.kv_splits = 5;
  s.decode_heads = 4;
  const GridDims g = grid_dims(shape, s);
  CHECK(g.x == 5);
  CHECK(g.y == 8);
  CHECK(g.z == 3);
}

// A KV cache is read by the rows that say so (KernelVariant::kv_cache): the sm_90a
// warp-specialized forward in both schedules and the decode kernel; everything else (the sm_80
// forward, the sm_90a wgmma forward for 64-row kv blocks, the backward) is an Error naming the
// kernel, never a silent read of k and v as if they were whole tensors.
TEST_CASE("select_variant: a KV cache takes the warp-specialized kernels or an Error",
          "[attention][variants][cache]") {
  const KvCache cache; // the selection reads only whether there is one
  for (const KernelVariant& v : kernel_variants())
    if (v.is_attention())
      CHECK(v.kv_cache ==
            (v.arch == Arch::SM90a && v.kind == TemplateKind::AttentionForward && v.tensor_maps));
  BlockMaskOptions fine;
  fine.kv_block = 64;
  const BlockMask bm64 = create_block_mask(seeds::causal(), 1, 1, 1024, 1024, fine);
  for (DType dtype : {DType::F16, DType::BF16})
    for (int d : {64, 128}) {
      INFO(to_string(dtype) << " d" << d);
      AttentionProblem p = problem(dtype, d, nullptr);
      p.kv_cache = &cache;
      for (bool persistent : {false, true}) {
        p.persistent = persistent;
        const KernelVariant& v =
            select_variant(TemplateKind::AttentionForward, target(Arch::SM90a), p);
        CHECK(v.kv_cache);
        CHECK(v.persistent() == persistent);
        CHECK_FALSE(v.decode());
      }
      p.persistent = false;
      REQUIRE_THROWS_WITH(
          select_variant(TemplateKind::AttentionForward, target(Arch::SM80), p),
          Contains("a KV cache (options.kv_cache) is read by the sm_90a warp-specialized") &&
              Contains("(the sm_80 mma.sync forward) on this GPU (sm_80 kernels)"));
      REQUIRE_THROWS_WITH(select_variant(TemplateKind::AttentionBackward, target(Arch::SM90a), p),
                          Contains("(the backward) on this GPU (sm_90a kernels)"));
      if (d == 64) { // kv_block 64: the ws rows' tile is 128 rows, the wgmma row's 64
        p.block_mask = &bm64;
        REQUIRE_THROWS_WITH(
            select_variant(TemplateKind::AttentionForward, target(Arch::SM90a), p),
            Contains("a KV cache (options.kv_cache) is read by the sm_90a warp-specialized"));
        p.kv_cache = nullptr;
        CHECK_FALSE(select_variant(TemplateKind::AttentionForward, target(Arch::SM90a), p)
                        .tensor_maps); // without a cache: the wgmma forward
      }
    }
}
