// The attention-level differential fuzzer (issue 15 item 1): random (mask_mod, score_mod)
// pairs (RandomMods' node mix, buffers and params) through random whole calls
// (testing/AttentionFuzz.h: forward, backward, decode, a paged KV cache and varlen; lengths not
// tile multiples, Q != KV, GQA, BSHD, block sizes, CPU and GPU block masks), each against the
// float64 reference at sampled rows (AttentionFuzzRun.h: run_fuzz_call, whose rule skips rows
// that are ill-conditioned for a float32 kernel), after the corpus
// (tests/fuzz_corpus_attention/*.fza). A failing call prints its corpus case (the call's line
// and its mods as a `mod pair`).
//   FLEXJIT_FUZZ_CALLS (default 400), FLEXJIT_FUZZ_SEED (default 1), FLEXJIT_FUZZ_SECONDS
//   (default 210: the run stops early, saying so, to stay within 4 minutes).
// NOT YET RUN ON A GPU (written without a device): the skip rule's constants are first guesses.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>

#include <fmt/format.h>

#include <flexjit/flexjit.h>

#include "AttentionFuzzRun.h"
#include "flexjit/runtime/Target.h"
#include "flexjit/testing/AttentionFuzz.h"
#include "flexjit/testing/FuzzCase.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/RandomMods.h"

using namespace flexjit;
using namespace flexjit::testing;

TEST_CASE("gpu: the attention fuzz corpus replays", "[gpu][fuzz][attention-fuzz]") {
  SKIP_WITHOUT_CUDA();
  for (const auto& [name, text] : attention_fuzz_corpus()) {
    const AttentionFuzzCase c = parse_attention_case(name, text);
    RandomMod pair;
    pair.body = c.mods.mod.body;
    pair.score = c.mods.mod.score;
    pair.bindings = c.mods.mod.bindings; // views into c.mods' storage, alive here
    const FuzzOutcome r = run_fuzz_call(c.call, pair);
    INFO(name << ": " << format_call(c.call) << "\n" << c.comment);
    CHECK(r.failure.empty());
    CHECK(r.rows > 0);
  }
}

TEST_CASE("gpu: random mods through random whole attention calls agree with the reference",
          "[gpu][fuzz][attention-fuzz]") {
  SKIP_WITHOUT_CUDA();
  const int calls = static_cast<int>(env_int("FLEXJIT_FUZZ_CALLS", 400));
  const auto seed = static_cast<uint32_t>(env_int("FLEXJIT_FUZZ_SEED", 1));
  const double seconds = static_cast<double>(env_int("FLEXJIT_FUZZ_SECONDS", 210));
  std::mt19937 rng(seed);
  const Arch arch = current_target().arch;
  const auto start = std::chrono::steady_clock::now();
  int run = 0, rows = 0, skipped = 0, not_compiled = 0, failures = 0;
  std::map<FuzzPath, int> per_path; // the calls run on each path
  for (int i = 0; i < calls; ++i) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds) {
      WARN("stopped after " << i << " calls: FLEXJIT_FUZZ_SECONDS=" << seconds);
      break;
    }
    FuzzCall c = random_call(rng, arch, 5000, int64_t{1} << 22, 48);
    if (c.path == FuzzPath::Backward) { // the full backward reference: keep it small
      c.q_len = std::min(c.q_len, 300);
      c.kv_len = std::min(c.kv_len, 300);
    }
    std::mt19937 mod_rng(c.mod_seed);
    const RandomMod m = random_pair(mod_rng, 4);
    FuzzOutcome r;
    try {
      r = run_fuzz_call(c, m);
    } catch (const Error& e) {
      if (documented_refusal(e)) { // a pair this call cannot take (README's Errors)
        ++not_compiled;
        continue;
      }
      r.failure = fmt::format("Error: {}", e.what());
    }
    ++run;
    ++per_path[c.path];
    rows += r.rows;
    skipped += r.skipped;
    if (!r.failure.empty()) {
      ++failures;
      FAIL_CHECK(fmt::format("{}\n# save as tests/fuzz_corpus_attention/<name>.fza:\n{}", r.failure,
                             format_attention_case(c, m, r.failure)));
    }
  }
  INFO(run << " calls, " << rows << " rows compared, " << skipped << " skipped, " << not_compiled
           << " pairs refused");
  std::string paths;
  for (const auto& [path, n] : per_path)
    paths += fmt::format("{}{} {}", paths.empty() ? "" : ", ", to_string(path), n);
  WARN("attention fuzz: " << run << " calls (" << paths << "), " << rows << " rows compared, "
                          << skipped << " skipped (ill-conditioned or NaN), " << not_compiled
                          << " pairs refused (node limit, short buffers, zero divisors), "
                          << failures << " failures");
  CHECK(failures == 0);
  CHECK(rows > run * 4); // most rows are comparable: the skip rule does not hide everything
}
