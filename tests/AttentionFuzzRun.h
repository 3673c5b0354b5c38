// One call of the attention-level fuzzer (testing/AttentionFuzz.h) on a real device, checked at
// sampled rows against the float64 reference: the rule the fuzzer
// (test_attention_gpu_fuzz.cpp) applies, and others may. Every
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
// such pairs: seeds 37 and 41 of the fuzzer's pool) (README's Errors).
bool documented_refusal(const Error& e);

// Packed tokens of `lens` sequences, logical [1, H, total, D] (a [total, H, D] packed tensor
// read as BSHD), as [lens.size(), H, max_len, D] with zeros past each sequence's length: the
// padded batch attention_reference takes with kv_lens = lens.
std::vector<float> pad_sequences(const std::vector<float>& packed, int H, int D,
                                 const std::vector<int>& lens);

} // namespace flexjit::testing
