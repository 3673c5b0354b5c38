// The attention-level fuzzer's call generator (testing/AttentionFuzz.h) on the CPU: every call
// it makes has kernel rows on its arch, keeps within its limits, covers every path and every
// head-dim pair of the table, and prints as a line that parses back to the same call; bad
// lines are errors naming the problem.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>
#include <tuple>

#include <flexjit/flexjit.h>

#include "flexjit/codegen/Variants.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Signature.h"
#include "flexjit/testing/AttentionFuzz.h"

using namespace flexjit;
using namespace flexjit::testing;

namespace {

bool same(const FuzzCall& a, const FuzzCall& b) {
  auto fields = [](const FuzzCall& c) {
    return std::tie(c.path, c.mod_seed, c.dtype, c.dqk, c.dv, c.B, c.Hq, c.Hkv, c.q_len, c.kv_len,
                    c.bshd, c.block_mask, c.gpu_block_mask, c.q_block, c.kv_block, c.page_size,
                    c.kv_lens, c.seq_lens, c.causal);
  };
  return fields(a) == fields(b);
}

} // namespace

TEST_CASE("attention fuzz: random calls are valid, varied and print back",
          "[testing][fuzz][attention-fuzz]") {
  constexpr int kMaxLen = 5000;
  constexpr int64_t kMaxElements = int64_t{1} << 23;
  for (Arch arch : {Arch::SM90a, Arch::SM80}) {
    INFO("arch " << to_string(arch));
    std::mt19937 rng(arch == Arch::SM90a ? 1 : 2);
    std::map<FuzzPath, int> paths;
    std::set<std::tuple<FuzzPath, DType, int, int>> dims;
    int not_multiple = 0, unequal = 0, gqa = 0, bshd = 0;
    for (int i = 0; i < 3000; ++i) {
      const FuzzCall c = random_call(rng, arch, kMaxLen, kMaxElements, 40);
      const std::string line = format_call(c);
      INFO(line);
      REQUIRE(same(parse_call(line), c));
      REQUIRE(c.mod_seed < 40);
      ++paths[c.path];
      dims.insert({c.path, c.dtype, c.dqk, c.dv});
      // Its kernel rows exist (the forward's for decode, paged and varlen too).
      const TemplateKind kind = c.path == FuzzPath::Backward ? TemplateKind::AttentionBackward
                                                             : TemplateKind::AttentionForward;
      REQUIRE_NOTHROW(find_variant(kind, arch, c.dtype, c.dqk, c.dv));
      REQUIRE(c.B >= 1);
      REQUIRE(c.Hq % c.Hkv == 0);
      REQUIRE(c.q_len >= 1);
      REQUIRE(c.kv_len >= 1);
      REQUIRE(c.q_block % 128 == 0);
      REQUIRE(c.kv_block % 128 == 0);
      REQUIRE(std::max(c.total_q() * c.Hq, c.total_k() * c.Hkv) * std::max(c.dqk, c.dv) <=
              kMaxElements);
      switch (c.path) {
      case FuzzPath::Forward:
      case FuzzPath::Backward:
        REQUIRE(std::max(c.q_len, c.kv_len) <= kMaxLen);
        break;
      case FuzzPath::Decode:
        REQUIRE(c.q_len <= 16);
        break;
      case FuzzPath::Paged:
        REQUIRE(arch == Arch::SM90a); // the rows that read a KV cache
        REQUIRE(
            (c.page_size >= 16 && c.page_size <= 256 && (c.page_size & (c.page_size - 1)) == 0));
        REQUIRE(c.kv_len % c.page_size == 0);
        REQUIRE(c.kv_lens.size() == static_cast<size_t>(c.B));
        for (int len : c.kv_lens)
          REQUIRE((len >= 0 && len <= c.kv_len));
        REQUIRE(!c.bshd);
        break;
      case FuzzPath::Varlen:
        REQUIRE(c.B == 1);
        REQUIRE(!c.seq_lens.empty());
        REQUIRE(c.seq_lens.size() <= 16);
        REQUIRE(std::accumulate(c.seq_lens.begin(), c.seq_lens.end(), 0) == c.q_len);
        REQUIRE(c.q_len <= kMaxLen);
        REQUIRE(c.gpu_block_mask);
        break;
      }
      not_multiple += c.q_len % 64 != 0 && c.kv_len % 64 != 0;
      unequal += c.q_len != c.kv_len;
      gqa += c.Hq != c.Hkv;
      bshd += c.bshd;
    }
    // Every path (paged only where rows read a cache) and every head-dim pair of each.
    CHECK(paths.size() == (arch == Arch::SM90a ? 5u : 4u));
    for (const KernelVariant& v : kernel_variants())
      if (v.arch == arch && v.is_attention() && !v.persistent() && !v.decode()) {
        const FuzzPath path =
            v.kind == TemplateKind::AttentionBackward ? FuzzPath::Backward : FuzzPath::Forward;
        CHECK(dims.count({path, v.dtype, v.dqk, v.dv}) == 1);
      }
    CHECK(not_multiple > 1500);
    CHECK(unequal > 1000);
    CHECK(gqa > 1500);
    CHECK(bshd > 300);
  }
}

TEST_CASE("attention fuzz: a call line that does not parse names the problem",
          "[testing][fuzz][attention-fuzz]") {
  const std::string good = "call forward seed 7 dtype bf16 dims 128 128 B 2 Hq 8 Hkv 2 q 333 kv "
                           "1000 layout bshd mask gpu blocks 128 256";
  const FuzzCall c = parse_call(good);
  CHECK(c.path == FuzzPath::Forward);
  CHECK(c.mod_seed == 7);
  CHECK(c.dtype == DType::BF16);
  CHECK((c.q_len == 333 && c.kv_len == 1000 && c.bshd && c.gpu_block_mask && c.kv_block == 256));
  const FuzzCall paged = parse_call("call paged seed 1 dtype f16 dims 64 64 B 2 Hq 4 Hkv 2 q 3 kv "
                                    "512 layout bhsd mask cpu blocks 128 128 page 64 lens 0 512");
  CHECK(paged.kv_lens == std::vector<int>{0, 512});
  const FuzzCall varlen =
      parse_call("call varlen seed 1 dtype f16 dims 64 64 B 1 Hq 4 Hkv 2 q 6 kv "
                 "6 layout bhsd mask gpu blocks 128 128 seqs 1 5 causal");
  CHECK(varlen.seq_lens == std::vector<int>{1, 5});
  CHECK(varlen.causal);
  const std::pair<std::string, std::string> bad_lines[] = {
      {"call sideways seed 1", "unknown path 'sideways'"},
      {"call forward seed x", "'x' is not a seed"},
      {"call forward seed 1 dtype f32", "dtype 'f32' is not f16 or bf16"},
      {"call forward seed 1 dtype f16 dims 64", "ends early"},
      {"call forward seed 1 dtype f16 dims 64 -3", "'-3' is not a count"},
      {good + " extra", "unexpected 'extra'"},
      {"call forward seed 1 dtype f16 dims 64 64 B 2 Hq 8 Hkv 2 q 3 kv 3 layout nhd",
       "layout 'nhd'"},
      {"call forward seed 1 dtype f16 dims 64 64 Q 2", "expected 'B', found 'Q'"},
  };
  for (const auto& [line, message] : bad_lines)
    CHECK_THROWS_WITH(parse_call(line), Catch::Contains(message) && Catch::Contains("fuzz call"));
}

TEST_CASE("attention fuzz: a case of a call and its pair prints and parses back",
          "[testing][fuzz][attention-fuzz]") {
  std::mt19937 rng(31);
  for (int i = 0; i < 200; ++i) {
    const FuzzCall call = random_call(rng, Arch::SM90a, 5000, int64_t{1} << 23, 0);
    std::mt19937 mod_rng(call.mod_seed);
    const RandomMod pair = random_pair(mod_rng, 4);
    const std::string text = format_attention_case(call, pair, "case " + std::to_string(i));
    INFO(text);
    const AttentionFuzzCase c = parse_attention_case("round_trip", text);
    REQUIRE(same(c.call, call));
    REQUIRE(c.comment == "case " + std::to_string(i) + "\n");
    REQUIRE(c.mods.is_pair);
    CHECK(print(c.mods.mod.body) == print(pair.body));
    CHECK(print(c.mods.mod.score) == print(pair.score));
    // One set of declarations for both bodies: the pair forms one kernel's signature.
    CHECK_NOTHROW(ModSignature::of({c.mods.mod.body, c.mods.mod.score}));
    RandomMod parsed;
    parsed.body = c.mods.mod.body;
    parsed.score = c.mods.mod.score;
    parsed.bindings = c.mods.mod.bindings;
    CHECK(format_attention_case(c.call, parsed, "case " + std::to_string(i)) == text);
  }
  CHECK_THROWS_WITH(parse_attention_case("empty", "# nothing\n"), Catch::Contains("no call line"));
  CHECK_THROWS_WITH(parse_attention_case("bad", "call forward seed\nmod pair\n"),
                    Catch::Contains("attention fuzz case bad") && Catch::Contains("ends early"));
  CHECK_THROWS_WITH(parse_attention_case(
                        "single",
                        "call forward seed 1 dtype f16 dims 64 64 B 1 Hq 1 Hkv 1 q 5 kv 5 layout "
                        "bhsd mask cpu blocks 128 128\nmod mask\nbody\n(kv_idx <= q_idx)\n"),
                    Catch::Contains("not a 'mod pair'"));
}

TEST_CASE("attention fuzz: the corpus replays on the CPU (block mask, PTX)",
          "[testing][fuzz][attention-fuzz]") {
  REQUIRE(!attention_fuzz_corpus().empty());
  for (const auto& [name, text] : attention_fuzz_corpus()) {
    INFO(name);
    const AttentionFuzzCase c = parse_attention_case(name, text);
    const MaskMod mask("corpus_mask", BoolExpr(c.mods.mod.body));
    const ScoreMod score("corpus_score", FloatExpr(c.mods.mod.score));
    if (c.call.block_mask && c.call.path != FuzzPath::Varlen) {
      BlockMaskOptions bo;
      bo.bindings = c.mods.mod.bindings;
      bo.device = Device::Host;
      bo.q_block = c.call.q_block;
      bo.kv_block = c.call.kv_block;
      const BlockMask bm = create_block_mask(mask, c.call.B, 1, c.call.q_len, c.call.kv_len, bo);
      CHECK(bm.num_q_blocks == (c.call.q_len + c.call.q_block - 1) / c.call.q_block);
    }
    KernelSpec spec;
    spec.kind = c.call.path == FuzzPath::Backward ? TemplateKind::AttentionBackward
                                                  : TemplateKind::AttentionForward;
    spec.arch = Arch::SM90a;
    spec.mask = mask;
    spec.score = score;
    spec.dtype = c.call.dtype;
    spec.head_dim = c.call.dqk;
    spec.head_dim_v = c.call.dv;
    const CompiledKernel k = compile_to_ptx(spec);
    CHECK(k.ptx.find(".entry") != std::string::npos);
  }
}
