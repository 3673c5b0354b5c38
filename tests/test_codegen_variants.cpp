// The variant table (codegen/Variants.h) against the kernels the build embedded: every row
// compiles to its entry and companions, with the thread counts the host launches.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <set>
#include <string>
#include <tuple>

#include "flexjit/codegen/Build.h"
#include "flexjit/codegen/Codegen.h"
#include "flexjit/codegen/Variants.h"

using namespace flexjit;
using Catch::Contains;

namespace {

// The threads of `.maxntid N, 1, 1` that follows `.entry <entry>(` in the PTX: -1 without
// the entry, 0 for an entry without launch bounds (create_mask: any CTA size works).
int max_threads(const std::string& ptx, const std::string& entry) {
  const size_t at = ptx.find(".entry " + entry + "(");
  if (at == std::string::npos)
    return -1;
  const size_t body = ptx.find('{', at);
  const size_t ntid = ptx.find(".maxntid ", at);
  if (ntid == std::string::npos || ntid > body)
    return 0;
  return std::stoi(ptx.substr(ntid + 9));
}

} // namespace

TEST_CASE("variants: every row builds its entry and companions with the table's threads",
          "[codegen][variants]") {
  int rows = 0;
  for (const KernelVariant& v : kernel_variants()) {
    INFO(v.describe());
    const CompiledKernel k = compile_variant(v, *prepare_mods(MaskMod(), ScoreMod()));
    CHECK(k.entry == v.main.entry);
    CHECK_THAT(k.ptx, Contains(fmt::format(".target {}", to_string(v.arch))));
    // The build instantiates a template from the row's variant name alone
    // (cmake/EmbedTemplates.cmake): it must say the row's dtype and head dims.
    if (v.is_attention())
      CHECK(std::string(v.variant) ==
            fmt::format("{}_d{}{}", to_string(v.dtype), v.dqk,
                        v.dv == v.dqk ? std::string() : fmt::format("_v{}", v.dv)));
    const int bound = max_threads(k.ptx, v.main.entry);
    CHECK(bound >= 0);
    if (v.kind != TemplateKind::CreateMask)
      CHECK(bound == v.main.threads);
    for (int i = 0; i < v.num_companions; ++i) {
      INFO("companion " << v.companions[i].shape.entry);
      CHECK(max_threads(k.ptx, v.companions[i].shape.entry) == v.companions[i].shape.threads);
    }
    ++rows;
  }
  CHECK(rows == static_cast<int>(kernel_variants().size()));
  CHECK(rows >= 22);
}

// The rows that take TMA tensor maps: sm_90a, loaded whole-program (setmaxnreg in the
// forward's; the decode kernel's one consumer has the registers without it), and their
// FlexjitTensorMaps parameter is grid_constant in the PTX: 64-byte aligned, its address taken
// in param space (cvta.param), never copied to local memory (a copy would hand the copy
// engine a local address). Fails if codegen's annotation stops reaching the NVPTX backend.
TEST_CASE("variants: tensor-map kernels read their maps in param space", "[codegen][variants]") {
  int rows = 0;
  for (const KernelVariant& v : kernel_variants()) {
    if (!v.tensor_maps)
      continue;
    INFO(v.describe() << " " << v.main.entry);
    CHECK(v.arch == Arch::SM90a);
    CHECK(v.whole_program);
    const CompiledKernel k = compile_variant(v, *prepare_mods(MaskMod(), ScoreMod()));
    CHECK_THAT(k.ptx, Contains(fmt::format(".param .align 64 .b8 {}_param_2[384]", v.main.entry)));
    CHECK_THAT(k.ptx, Contains("cvta.param.u64"));
    CHECK_THAT(k.ptx, Contains("cp.async.bulk.tensor.4d"));
    if (v.decode())
      CHECK_THAT(k.ptx, Contains("cp.async.bulk.tensor.5d")); // Q, packed
    else
      CHECK_THAT(k.ptx, Contains("setmaxnreg.inc.sync.aligned.u32 240"));
    CHECK(k.ptx.find(".local") == std::string::npos);
    ++rows;
  }
  CHECK(rows >= 4);
}

TEST_CASE("variants: rows are unique, sm_80 backs every attention kernel, newer arches first",
          "[codegen][variants]") {
  // Rows of one (kind, arch, dtype, head dims) differ in their template: the first whose
  // constraints a problem meets runs it (the warp-specialized forward, then the one before).
  std::set<std::tuple<int, int, int, int, int, std::string>> keys;
  std::set<std::string> symbols;
  for (const KernelVariant& v : kernel_variants()) {
    INFO(v.describe());
    CHECK(keys.emplace(int(v.kind), int(v.arch), int(v.dtype), v.dqk, v.dv, v.stem).second);
    CHECK(symbols.insert(v.bitcode_symbol()).second);
    CHECK(v.main.threads > 0);
    CHECK(v.main.threads % 32 == 0);
    CHECK(v.max_mod_nodes > 0);
    if (!v.is_attention())
      continue;
    CHECK(v.q_block_multiple > 0);
    CHECK(v.kv_block_multiple > 0);
    CHECK(v.main.smem_bytes > 0);
    CHECK(v.main.smem_bytes <= 227 * 1024); // an SM's dynamic shared memory
    // The same kernel for sm_80 exists and comes after every newer row.
    bool seen_self = false, sm80_after = false;
    for (const KernelVariant& w : kernel_variants()) {
      seen_self = seen_self || &w == &v;
      if (seen_self && w.kind == v.kind && w.dtype == v.dtype && w.dqk == v.dqk && w.dv == v.dv &&
          w.arch == Arch::SM80)
        sm80_after = true;
    }
    CHECK(sm80_after);
  }
  CHECK(find_variant(TemplateKind::BlockClassify, Arch::SM90a).arch == Arch::SM90a);
  CHECK(std::string(find_variant(TemplateKind::AttentionForward, Arch::SM80, DType::BF16, 128)
                        .main.entry) == "flexjit_attention_fwd_bf16_d128");
  CHECK(find_variant(TemplateKind::AttentionBackward, Arch::SM90a, DType::F16, 64)
            .companion(CompanionRole::Prologue) != nullptr);
  CHECK(find_variant(TemplateKind::AttentionForward, Arch::SM90a, DType::F16, 64)
            .companion(CompanionRole::Prologue) == nullptr);
  REQUIRE_THROWS_WITH(find_variant(TemplateKind::AttentionForward, Arch::SM90a, DType::F16, 48),
                      Contains("attention head dim 48 is not supported: expected 32, 64, 80, 96, "
                               "128, 192 or 256"));
  REQUIRE_THROWS_WITH(find_variant(TemplateKind::AttentionForward, Arch::SM90a, DType::F32, 64),
                      Contains("attention dtype f32 is not supported: expected f16 or bf16"));
  REQUIRE_THROWS_WITH(
      find_variant(TemplateKind::AttentionForward, Arch::SM90a, DType::F16, 64, 128),
      Contains("head dim 64 is not supported"));
}

TEST_CASE("variants: grid rules", "[codegen][variants]") {
  LaunchSizes s;
  s.B = 3;
  s.Hq = 8;
  s.Hkv = 2;
  s.q_len = 1000;
  s.kv_len = 300;
  s.elements = 1000;
  const KernelShape q{"q", 128, 0, GridRule::QTiles, 128, 0};
  const KernelShape kv{"kv", 256, 0, GridRule::KvTiles, 0, 128};
  const KernelShape elems{"e", 256, 0, GridRule::Elements};
  auto dims = [&](const KernelShape& k) {
    const GridDims g = grid_dims(k, s);
    return std::tuple{g.x, g.y, g.z};
  };
  CHECK(dims(q) == std::tuple{8u, 8u, 3u});  // ceil(1000 / 128), Hq, B
  CHECK(dims(kv) == std::tuple{3u, 2u, 3u}); // ceil(300 / 128), Hkv, B
  CHECK(dims(elems) == std::tuple{4u, 1u, 1u});
  s.elements = int64_t{1} << 40;
  CHECK(std::get<0>(dims(elems)) == static_cast<unsigned>(kMaxElementBlocks));
}
