// One call of the attention-level fuzzer (testing/AttentionFuzz.h) on a real device, checked at
// sampled rows against the float64 reference: the rule the fuzzer
// (test_attention_gpu_fuzz.cpp) and the soak (test_attention_gpu_soak.cpp) both apply. Every
// path: forward, backward (dv in full too), decode, a paged KV cache (shuffled pages, each
// sequence against its own length) and varlen (packed sequences, each at its local positions).
// A row whose reference moves by more than a quarter of the tolerance when every score moves by
// 2e-5 (relative) is ill-conditioned for a float32 kernel and is skipped, as is a row whose
// reference is NaN; the rest must agree. No Catch2 macros: any thread may call it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/testing/AttentionFuzz.h"
#include "flexjit/testing/RandomMods.h"

namespace flexjit::testing {

struct FuzzOutcome {
  int rows = 0, skipped = 0;
  double worst = 0;    // the largest relative row error among compared rows
  std::string failure; // empty: every compared row agreed
};

// Runs `c` with the pair `m` (m.body the mask, m.score the score; host bindings, copied to the
// device for the call) on `stream` (a CUstream; null: the legacy default stream), compares
// `sample_rows` random rows of the output (and, for the backward, dv in full), and returns
// when the call's work is done. Throws what the library throws (documented_refusal tells the
// Errors a random pair may get).
FuzzOutcome run_fuzz_call(const FuzzCall& c, const RandomMod& m, void* stream = nullptr,
                          int sample_rows = 12);

// The library's documented Errors for a pair a call cannot take: too large for the kernel's
// node limit, a buffer indexed by b, h, q_idx or kv_idx that is shorter than the call's sizes,
// or a divisor that folds to a constant zero, which the type check rejects (random_pair makes
// such pairs: seeds 37 and 41 of the fuzzer's pool), or a data-indexed load outside its buffer
// (random data: the CPU builder or the reference raises, or a kernel's report)
// (README's Errors).
bool documented_refusal(const Error& e);

// The soak's mod pool (test_attention_gpu_soak.cpp): the first `size` seeds whose
// random_pair(std::mt19937(seed), 4) every soak call can take -- it type checks (no constant
// zero divisor), has at most kMaxAttentionModNodes nodes after optimization, and no buffer
// dimension indexed by exactly b, h, q_idx or kv_idx (whose length each call's sizes would have
// to fit), and no data-indexed load (a report from one thread would reach another's call) --
// and their pairs, made once (the same nodes on every call: one prepared pair and
// one kernel key each). The first `hot` pairs are the hot ones, the rest cold.
struct ModPool {
  std::vector<uint32_t> seeds;
  std::vector<RandomMod> mods;
  size_t hot = 0;
};
ModPool soak_pool(int size, int hot);

// A soak call: random_call's forward, backward or decode call (a third each), small -- lengths
// up to 256, B up to 2, Hq up to 8; the backward, whose reference covers the whole problem, Hq
// up to 4 and lengths up to 96 -- always with a block mask (CPU or GPU built). Its pair is
// pool.mods[*index]: a hot one, or (unless `warm_up`) one call in kColdShare a cold one; its
// dtype and head dims go by the index, f16 d64 (even) or bf16 d128 (odd), so that each pair
// has a few kernels (forward, decode, backward, the GPU block mask's).
inline constexpr int kColdShare = 32;
FuzzCall soak_call(std::mt19937& rng, Arch arch, const ModPool& pool, bool warm_up, size_t* index);

// Packed tokens of `lens` sequences, logical [1, H, total, D] (a [total, H, D] packed tensor
// read as BSHD), as [lens.size(), H, max_len, D] with zeros past each sequence's length: the
// padded batch attention_reference takes with kv_lens = lens.
std::vector<float> pad_sequences(const std::vector<float>& packed, int H, int D,
                                 const std::vector<int>& lens);

} // namespace flexjit::testing
