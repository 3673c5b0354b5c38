// Every kernel of the variant table (codegen/Variants.h) that this process targets -- the rows of
// its arch: sm_90a on Hopper, sm_80 on other GPUs and under FLEXJIT_ARCH=sm_80 -- launched at
// small shapes (lengths that are not tile multiples, GQA, BHSD and BSHD, a mask with fully masked
// rows and a soft-capping score_mod) with every result checked: attention against the float64
// reference, block masks and dense masks against the CPU builders, the mods at points against the
// interpreter, appends and merges against host arithmetic. scripts/sanitize.sh runs it under
// compute-sanitizer's memcheck, racecheck, synccheck and initcheck, once for the device's arch and
// once with FLEXJIT_ARCH=sm_80. Each call reports the row it took (select_variant of its checked
// problem; find_variant for the kinds with one row per arch, as the library picks them), which
// must be the row it was steered to; at the end the rows taken must be exactly the target arch's
// (a row added to the table without a call that reaches it fails here) and the kernel cache must
// have built each. Skips cleanly without a CUDA device.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <exception>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/codegen/Variants.h"
#include "flexjit/runtime/Target.h"
#include "flexjit/testing/Agreement.h"
#include "flexjit/testing/EvalPoints.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/SeedMods.h"

#include "AttentionCases.h"
#include "CacheCases.h"

using namespace flexjit;
using namespace flexjit::testing;

namespace {

using Schedule = FlexAttentionOptions::Schedule;

// The prefill calls' mask: causal shifted 20 keys on, rows 0 to 2 attending nothing (out 0, lse
// -inf). In 128-row q tiles by 128- or 64-row kv tiles, 97 x 131 has partial tiles and an empty
// last kv tile, 131 x 97 partial tiles and a full last q tile.
MaskMod prefill_mask() {
  return mask_mod("sanitize_prefill",
                  [](Idx, Idx, Idx q, Idx kv) { return q >= 3 && kv <= q + 20; });
}
constexpr int kPrefillEmptyRows = 3;

// The decode calls' mask: row 1 attends nothing, the others every key from their own index on, so
// that every kv split of the decode kernel holds keys (its q tile packs all the rows, so every
// tile is partial).
MaskMod decode_mask() {
  return mask_mod("sanitize_decode", [](Idx, Idx, Idx q, Idx kv) { return q != 1 && kv >= q; });
}

ScoreMod score() {
  return seeds::soft_cap(20.0f);
}

std::string row_name(const KernelVariant& v) {
  return fmt::format("{} ({})", v.describe(), v.main.entry);
}

// The rows the calls took.
struct Coverage {
  std::set<const KernelVariant*> rows;

  // A call steered to `wanted` took `row`.
  void took(const KernelVariant* row, const KernelVariant& wanted) {
    INFO("steered to " << row_name(wanted) << ", took " << (row ? row_name(*row) : "no row"));
    CHECK(row == &wanted);
    if (row)
      rows.insert(row);
  }
};

// A forward row's call: its schedule (SplitKv for the decode kernel, Persistent for the
// persistent one, else OneTilePerCta) and the finest kv block it takes (64 rows for the sm_90a
// wgmma forward, which the warp-specialized rows before it in the table, of 128-row kv tiles at
// its head dims, refuse), the block mask built on the GPU.
Case forward_case(const KernelVariant& row, int i) {
  Case c;
  c.B = 2;
  c.Hq = 4;
  c.Hkv = 2;
  c.D = row.dqk;
  c.Dv = row.dv;
  c.dtype = row.dtype;
  c.bshd = i % 2 == 1;
  c.score = score();
  c.gpu_block_mask = true;
  c.kv_block = row.kv_block_multiple;
  c.seed = static_cast<uint32_t>(100 + i);
  if (row.decode()) {
    c.q_len = 5; // two query heads packed per CTA; kv tiles of 128 or 64 rows: 3 or 5 splits
    c.kv_len = 300;
    c.mask = decode_mask();
    c.schedule = Schedule::SplitKv;
  } else {
    c.q_len = i % 2 ? 131 : 97;
    c.kv_len = i % 2 ? 97 : 131;
    c.mask = prefill_mask();
    c.schedule = row.persistent() ? Schedule::Persistent : Schedule::OneTilePerCta;
  }
  return c;
}

// The call through a KV cache of a row that reads one (KernelVariant::kv_cache), with the
// forward call's mods and schedule: the decode kernel's in pages of 64, the persistent kernel's
// in pages of 16 (several page boxes per kv tile), the one-tile-per-CTA kernel's contiguous with
// per-sequence lengths; one sequence empty.
CacheCase cache_case(const KernelVariant& row, int i) {
  const Case c = forward_case(row, i);
  CacheCase k;
  k.B = 3;
  k.Hq = 4;
  k.Hkv = 2;
  k.D = row.dqk;
  k.Dv = row.dv;
  k.dtype = row.dtype;
  k.capacity = 256;
  k.has_mask = true; // the block mask of the capacity (128 x 128 tiles)
  k.mask = c.mask;
  k.score = c.score;
  k.schedule = c.schedule;
  k.seed = static_cast<uint32_t>(200 + i);
  if (row.decode()) {
    k.q_len = 4;
    k.page_size = 64;
    k.kv_lens = {200, 0, 77};
  } else {
    k.q_len = 97;
    k.page_size = row.persistent() ? 16 : 0;
    k.kv_lens = {131, 0, 256};
  }
  return k;
}

void cover_forward(const KernelVariant& row, int i, Coverage& coverage) {
  const Case c = forward_case(row, i);
  const Outcome r = check(c, row_name(row));
  CHECK(r.empty_rows == (row.decode() ? 1 : kPrefillEmptyRows) * c.B * c.Hq);
  coverage.took(r.variant, row);
  if (row.kv_cache)
    coverage.took(check_cache_case(cache_case(row, i)), row);
}

// A backward row's call: a block mask of the kv block the row takes (the sm_90a kernel owns 128
// kv rows a CTA; a 64-row kv block would take the sm_80 kernel, which is the sm_80 target's),
// after the forward call the backward needs.
BwdCase backward_case(const KernelVariant& row, int i) {
  BwdCase c;
  c.B = 2;
  c.Hq = 4;
  c.Hkv = 2;
  c.q_len = i % 2 ? 131 : 97;
  c.kv_len = i % 2 ? 97 : 131;
  c.D = row.dqk;
  c.dtype = row.dtype;
  c.bshd = i % 2 == 1;
  c.kv_block = row.kv_block_multiple;
  c.mask = prefill_mask();
  c.score = score();
  c.seed = static_cast<uint32_t>(300 + i);
  return c;
}

// The GPU block-mask builder (classify and its columns kernel), index arrays kept on the device
// and then downloaded, against the CPU builder's, over two heads at both tilings. The forward
// calls build theirs on the GPU too.
void check_block_masks() {
  const MaskMod mask = prefill_mask();
  for (auto [Q, KV, kv_block] : {std::tuple{97, 131, 64}, std::tuple{131, 97, 128}}) {
    INFO("block mask " << Q << " x " << KV << ", kv_block " << kv_block);
    BlockMaskOptions host;
    host.kv_block = kv_block;
    const BlockMask cpu = create_block_mask(mask, 1, 2, Q, KV, host);
    BlockMaskOptions o = host;
    o.device = Device::Cuda;
    o.host_arrays = false;
    BlockMask gpu = create_block_mask(mask, 1, 2, Q, KV, o);
    CHECK(gpu.arrays_on_device_only());
    CHECK(gpu.states() == cpu.states());
    gpu.download_arrays();
    for (std::vector<int32_t> BlockMask::*array :
         {&BlockMask::kv_num_blocks, &BlockMask::kv_indices, &BlockMask::full_kv_num_blocks,
          &BlockMask::full_kv_indices, &BlockMask::q_num_blocks, &BlockMask::q_indices,
          &BlockMask::full_q_num_blocks, &BlockMask::full_q_indices})
      CHECK(gpu.*array == cpu.*array);
  }
}

// The dense mask on the GPU against the CPU's.
void check_dense_mask() {
  const MaskMod mask = prefill_mask();
  CHECK(create_mask(mask, 2, 2, 37, 53, {}, Device::Cuda) == create_mask(mask, 2, 2, 37, 53));
}

// Both mods at points on and off the mask's edge, scores around the soft cap, against the
// interpreter (testing/Agreement.h's rule for the GPU).
void check_eval_points() {
  const MaskMod mask = prefill_mask();
  const ScoreMod soft_cap = score();
  std::mt19937 rng(11);
  std::normal_distribution<float> scores(0.0f, 30.0f);
  std::vector<Point> points;
  for (int b = 0; b < 2; ++b)
    for (int h = 0; h < 2; ++h)
      for (int q = 0; q < 9; ++q)
        for (int kv = 0; kv < 40; kv += 3)
          points.push_back(Point{b, h, q, kv, scores(rng)});
  const PointValues got = eval_points_cuda(mask, soft_cap, points);
  const Agreement mask_oracle(mask.body(), {}), score_oracle(soft_cap.body(), {});
  long wrong = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    Value m{}, s{};
    m.b = got.mask[i] != 0;
    s.f = got.score[i];
    wrong += !mask_oracle.check(Backend::Gpu, points[i], m).ok;
    wrong += !score_oracle.check(Backend::Gpu, points[i], s).ok;
  }
  CHECK(wrong == 0);
}

// New tokens into a paged cache (BSHD) and a contiguous one (BHSD), then a call whose sequences
// would pass the capacity or have a bad length: left alone and reported as device errors.
void check_appends() {
  CacheCase c;
  c.B = 3;
  c.Hkv = 2;
  c.D = 64;
  c.dtype = DType::F16;
  c.capacity = 256;
  c.page_size = 16;
  c.kv_lens = {100, 0, 37};
  c.reserve = 5;
  c.seed = 400;
  check_append_case(c, 5, true);
  c.page_size = 0;
  c.dtype = DType::BF16;
  c.D = 128;
  c.kv_lens = {250, 3, 0};
  check_append_case(c, 3, false);
  c.kv_lens = {254, 1, -3};
  check_append_case(c, 5, false, {0, 2});
}

// Four kv shards merged (in place, with an empty part), f16 BSHD and bf16 BHSD.
void check_merges() {
  check_merge_case({.B = 2,
                    .Hq = 4,
                    .Hkv = 2,
                    .q_len = 97,
                    .kv_len = 131,
                    .D = 64,
                    .dtype = DType::F16,
                    .bshd = true});
  check_merge_case(
      {.B = 2, .Hq = 4, .Hkv = 2, .q_len = 5, .kv_len = 131, .D = 128, .dtype = DType::BF16});
}

// The calls of one row, which they must take. The kinds with one row per arch (no mods, or mods
// alone) take find_variant(kind, the target's arch), as the library looks theirs up.
void cover(const KernelVariant& row, Arch arch, int i, Coverage& coverage) {
  switch (row.kind) { // no default: a new kind is a -Wswitch warning here
  case TemplateKind::AttentionForward:
    return cover_forward(row, i, coverage);
  case TemplateKind::AttentionBackward:
    return coverage.took(check_backward(backward_case(row, i), row_name(row)), row);
  case TemplateKind::BlockClassify:
    check_block_masks();
    break;
  case TemplateKind::CreateMask:
    check_dense_mask();
    break;
  case TemplateKind::EvalPoints:
    check_eval_points();
    break;
  case TemplateKind::KvAppend:
    check_appends();
    break;
  case TemplateKind::MergeAttention:
    check_merges();
    break;
  }
  coverage.took(&find_variant(row.kind, arch), row);
}

} // namespace

TEST_CASE("gpu sanitize: every kernel of the target's arch at small shapes, checked",
          "[gpu][sanitize]") {
  SKIP_WITHOUT_CUDA();
  const Arch arch = current_target().arch;
  // Every kernel asked for below is built or read from disk, so the build log names it.
  clear_kernel_memory_cache();
  const size_t log_start = kernel_build_log().size();
  std::set<const KernelVariant*> target_rows;
  Coverage coverage;
  int i = 0;
  for (const KernelVariant& row : kernel_variants()) {
    if (row.arch != arch)
      continue;
    target_rows.insert(&row);
    INFO("row " << row_name(row));
    try {
      cover(row, arch, i++, coverage);
    } catch (const std::exception& e) { // the next rows still run
      FAIL_CHECK(e.what());
    }
  }

  std::string untaken, foreign;
  for (const KernelVariant* row : target_rows)
    if (!coverage.rows.count(row))
      untaken += "\n  " + row_name(*row);
  for (const KernelVariant* row : coverage.rows)
    if (!target_rows.count(row))
      foreign += "\n  " + row_name(*row);
  INFO(to_string(arch) << " rows no call took:" << untaken << "\nrows taken that are not "
                       << to_string(arch) << "'s:" << foreign);
  CHECK(coverage.rows == target_rows);

  const std::vector<KernelBuildTimes> log = kernel_build_log();
  std::set<std::string> built;
  for (size_t j = log_start; j < log.size(); ++j)
    built.insert(log[j].entry);
  for (const KernelVariant* row : coverage.rows) {
    INFO("the kernel cache built no " << row->main.entry << " for " << row_name(*row));
    CHECK(built.count(row->main.entry) == 1);
  }
  // scripts/sanitize.sh looks for this line: the test ran on a GPU.
  WARN("sanitize: " << coverage.rows.size() << " of the " << target_rows.size() << " "
                    << to_string(arch) << " rows covered, " << log.size() - log_start
                    << " kernel builds");
}
