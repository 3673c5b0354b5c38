// The attention-level fuzzer's call generator (testing/AttentionFuzz.h) on the CPU: every call
// it makes has kernel rows on its arch, keeps within its limits, covers every path and every
// head-dim pair of the table, and prints as a line that parses back to the same call; bad
// lines are errors naming the problem. The CPU side of the GPU runner (AttentionFuzzRun.h):
// varlen's sequences padded into one batch, and the reference over per-sequence lengths, equal
// each sequence's reference alone; the soak's pool and calls keep to their rules.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <tuple>

#include <flexjit/flexjit.h>

#include "AttentionFuzzRun.h"
#include "flexjit/codegen/Variants.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/PreparedMods.h"
#include "flexjit/compiler/Signature.h"
#include "flexjit/testing/AttentionFuzz.h"
#include "flexjit/testing/AttentionReference.h"

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

TEST_CASE("attention fuzz: padded sequences under per-sequence lengths give each one's reference",
          "[testing][fuzz][attention-fuzz][reference]") {
  // Three packed sequences (varlen's [total, H, D], read as [1, H, total, D]), GQA, a causal
  // mask and a score that reads b: each row of the padded batch with kv_lens = lens is the row
  // of its sequence alone, whose b is a constant there.
  const std::vector<int> lens = {3, 1, 5};
  const int H = 2, Hkv = 1, D = 4, total = 9, S = 5;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  auto random = [&](int heads) {
    std::vector<float> x(static_cast<size_t>(heads) * total * D);
    for (float& e : x)
      e = uni(rng);
    return x;
  };
  const std::vector<float> q = random(H), k = random(Hkv), v = random(Hkv);
  const AttentionInputs padded{3,
                               H,
                               Hkv,
                               S,
                               S,
                               D,
                               pad_sequences(q, H, D, lens),
                               pad_sequences(k, Hkv, D, lens),
                               pad_sequences(v, Hkv, D, lens),
                               D};
  REQUIRE(padded.q.size() == size_t{3} * H * S * D);
  const MaskMod causal = mask_mod("causal", [](Idx, Idx, Idx qi, Idx kv) { return kv <= qi; });
  const ScoreMod bias = score_mod("bias", [](Score s, Idx b, Idx h, Idx qi, Idx kv) {
    return s + FloatExpr(b) * 0.5f - FloatExpr(h) * 0.25f + FloatExpr(qi - kv) * 0.1f;
  });
  const AttentionRows all = attention_reference(padded, causal, bias, 0.5, {}, {}, lens);
  int start = 0, compared = 0;
  for (int b = 0; b < 3; ++b) {
    const int len = lens[static_cast<size_t>(b)];
    auto slice = [&](const std::vector<float>& x, int heads) { // sequence b: [1, heads, len, D]
      std::vector<float> out;
      for (int h = 0; h < heads; ++h)
        out.insert(out.end(), x.begin() + (h * total + start) * D,
                   x.begin() + (h * total + start + len) * D);
      return out;
    };
    // The padding: zeros past the length.
    for (int h = 0; h < H; ++h)
      for (int j = len; j < S; ++j)
        for (int d = 0; d < D; ++d)
          REQUIRE(padded.q[((static_cast<size_t>(b) * H + h) * S + j) * D + d] == 0.0f);
    const AttentionInputs alone{1, H,           Hkv,           len,           len,
                                D, slice(q, H), slice(k, Hkv), slice(v, Hkv), D};
    const ScoreMod bias_b = score_mod("bias_b", [b](Score s, Idx, Idx h, Idx qi, Idx kv) {
      return s + static_cast<float>(b) * 0.5f - FloatExpr(h) * 0.25f + FloatExpr(qi - kv) * 0.1f;
    });
    const AttentionRows want = attention_reference(alone, causal, bias_b, 0.5, {});
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < len; ++i) {
        const size_t got_row = (static_cast<size_t>(b) * H + h) * S + i;
        const size_t want_row = static_cast<size_t>(h) * len + i;
        INFO("sequence " << b << " head " << h << " row " << i);
        CHECK(all.lse[got_row] == Approx(want.lse[want_row]).epsilon(1e-6));
        for (int d = 0; d < D; ++d)
          CHECK(all.out[got_row * D + d] == Approx(want.out[want_row * D + d]).epsilon(1e-6));
        ++compared;
      }
    start += len;
  }
  CHECK(compared == H * total);
  // A batch of no keys (a KV cache's length 0): nothing attends, out 0 and lse -inf.
  const AttentionRows none =
      attention_reference(padded, MaskMod(), ScoreMod(), 0.5, {}, {}, {0, 0, 0});
  for (size_t r = 0; r < none.rows.size(); ++r) {
    CHECK((std::isinf(none.lse[r]) && none.lse[r] < 0));
    CHECK(none.out[r * D] == 0.0);
  }
}

TEST_CASE("attention fuzz: the soak's pool and calls keep to their rules",
          "[testing][fuzz][attention-fuzz]") {
  const ModPool pool = soak_pool(24, 8);
  REQUIRE(pool.seeds.size() == 24);
  REQUIRE(pool.mods.size() == 24);
  REQUIRE(pool.hot == 8);
  REQUIRE(std::is_sorted(pool.seeds.begin(), pool.seeds.end()));
  REQUIRE(std::adjacent_find(pool.seeds.begin(), pool.seeds.end()) == pool.seeds.end());
  for (size_t i = 0; i < pool.seeds.size(); ++i) {
    INFO("seed " << pool.seeds[i]);
    std::mt19937 rng(pool.seeds[i]);
    const RandomMod again = random_pair(rng, 4); // the pair its seed names (the corpus line)
    CHECK(print(again.body) == print(pool.mods[i].body));
    CHECK(print(again.score) == print(pool.mods[i].score));
    const auto p = prepare_mods(MaskMod("fuzz_mask", BoolExpr(pool.mods[i].body)),
                                ScoreMod("fuzz_score", FloatExpr(pool.mods[i].score)));
    CHECK(p->nodes <= kMaxAttentionModNodes);
    CHECK(p->indexed_dims.empty());
  }
  for (Arch arch : {Arch::SM90a, Arch::SM80}) {
    INFO("arch " << to_string(arch));
    std::mt19937 rng(arch == Arch::SM90a ? 5 : 6);
    std::vector<int> drawn(pool.seeds.size(), 0);
    std::map<FuzzPath, int> paths;
    constexpr int kWarmUp = 1000, kCalls = 8000;
    for (int n = 0; n < kCalls; ++n) {
      size_t index = 0;
      const FuzzCall c = soak_call(rng, arch, pool, n < kWarmUp, &index);
      const std::string line = format_call(c);
      INFO(line);
      REQUIRE(same(parse_call(line), c)); // a failure's corpus case replays it
      REQUIRE(index < pool.seeds.size());
      if (n < kWarmUp)
        REQUIRE(index < pool.hot);
      REQUIRE(c.mod_seed == pool.seeds[index]);
      ++drawn[index];
      ++paths[c.path];
      REQUIRE((c.path == FuzzPath::Forward || c.path == FuzzPath::Backward ||
               c.path == FuzzPath::Decode));
      REQUIRE(c.dtype == (index % 2 == 0 ? DType::F16 : DType::BF16));
      REQUIRE((c.dqk == c.dv && c.dqk == (index % 2 == 0 ? 64 : 128)));
      const TemplateKind kind = c.path == FuzzPath::Backward ? TemplateKind::AttentionBackward
                                                             : TemplateKind::AttentionForward;
      REQUIRE_NOTHROW(find_variant(kind, arch, c.dtype, c.dqk, c.dv));
      REQUIRE(c.block_mask);
      REQUIRE((c.B >= 1 && c.B <= 2));
      REQUIRE((c.Hq <= 8 && c.Hq % c.Hkv == 0));
      REQUIRE((c.q_len >= 1 && c.q_len <= 256 && c.kv_len >= 1 && c.kv_len <= 256));
      if (c.path == FuzzPath::Backward)
        REQUIRE((c.Hq <= 4 && c.q_len <= 96 && c.kv_len <= 96));
      if (c.path == FuzzPath::Decode)
        REQUIRE(c.q_len <= 16);
    }
    // Every pair drawn; the cold ones about one call in kColdShare after the warm-up; each
    // path about a third.
    CHECK(std::count(drawn.begin(), drawn.end(), 0) == 0);
    const int cold = std::accumulate(drawn.begin() + 8, drawn.end(), 0);
    CHECK(cold > (kCalls - kWarmUp) / kColdShare / 2);
    CHECK(cold < (kCalls - kWarmUp) / kColdShare * 2);
    for (FuzzPath path : {FuzzPath::Forward, FuzzPath::Backward, FuzzPath::Decode})
      CHECK((paths[path] > kCalls / 4 && paths[path] < kCalls / 2));
  }
}

TEST_CASE("attention fuzz: the Errors a pair may get are refusals, the others failures",
          "[testing][fuzz][attention-fuzz]") {
  auto error_of = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  auto refused = [](const std::string& what) { return documented_refusal(Error(what)); };
  // A divisor that folds to a constant zero: the type check's Error.
  const MaskMod zero("zero", (var_q() % (var_kv() - var_kv())) == 0);
  const std::string divisor = error_of([&] { prepare_mods(zero); });
  INFO(divisor);
  CHECK(refused(divisor));
  // A score over the attention kernel's node limit (~6 nodes a term, none folds).
  IntExpr acc = 0;
  for (int i = 0; i < 60; ++i)
    acc = acc * 3 + (var_q() * (i + 3) + var_kv() * (2 * i + 1)) % 1024;
  const ScoreMod big("big", var_score() + FloatExpr(acc));
  const std::string limit = error_of([&] {
    compile_to_ptx(KernelSpec{TemplateKind::AttentionForward, Arch::SM90a, MaskMod(), big});
  });
  INFO(limit);
  CHECK(refused(limit));
  CHECK(refused("flexjit: flex_attention: buffer 'b' is indexed by q_idx in dimension 0 but has 4 "
                "elements"));
  // Anything else is the call's failure.
  CHECK_FALSE(refused("flexjit: cuLaunchKernel: CUDA_ERROR_ILLEGAL_ADDRESS"));
  CHECK_FALSE(refused(""));
}
