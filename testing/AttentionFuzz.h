// Random whole attention calls for the attention-level differential fuzzer (issue 15 item 1):
// the call's shape and path drawn from the variant table's rows for an arch, with lengths that
// are rarely tile multiples, Q != KV, GQA ratios, BHSD and BSHD, block sizes, decoding, a paged
// KV cache and varlen batches. The mods come from RandomMods (random_pair) by a seed, and a
// call prints as one line that parses back (the corpus form; its mods print with
// format_case).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flexjit/codegen/Codegen.h"
#include "flexjit/testing/FuzzCase.h"
#include "flexjit/testing/RandomMods.h"

namespace flexjit::testing {

enum class FuzzPath : uint8_t {
  Forward,  // flex_attention, BHSD or BSHD, a block mask (CPU or GPU built) or none
  Backward, // flex_attention, then flex_attention_backward
  Decode,   // flex_attention with q_len 1..16 (the split-KV kernel where the arch has it)
  Paged,    // flex_attention over a paged KV cache (per-sequence lengths, shuffled pages)
  Varlen,   // attention_forward_varlen over packed sequences (causal or not)
};
std::string_view to_string(FuzzPath path);

struct FuzzCall {
  FuzzPath path = FuzzPath::Forward;
  uint32_t mod_seed = 0; // random_pair(std::mt19937(mod_seed)) gives the mods
  DType dtype = DType::F16;
  int dqk = 64, dv = 64;
  int B = 1, Hq = 1, Hkv = 1, q_len = 1, kv_len = 1;
  bool bshd = false;
  bool block_mask = true;      // false: no block mask (the mask mod is not applied)
  bool gpu_block_mask = false; // the block mask built on the GPU
  int q_block = 128, kv_block = 128;
  int page_size = 0;         // Paged: a power of two from 16 to 256
  std::vector<int> kv_lens;  // Paged: each sequence's length, at most kv_len (the capacity)
  std::vector<int> seq_lens; // Varlen: each sequence's q length (= its kv length)
  bool causal = false;       // Varlen

  // The totals the packed tensors hold (Varlen), else B * q_len and B * kv_len.
  int64_t total_q() const;
  int64_t total_k() const;
};

// A random call whose kernel rows exist for `arch` (the variant table), with lengths from 1
// to `max_len` (most not multiples of 64), Q != KV more often than not, GQA, and at most
// `max_elements` elements in q, k or v (so the float64 reference at sampled rows stays fast).
// `mod_seeds` > 0: the mod seed is one of that many (a pool smaller than the calls, so that
// kernels are reused); 0: any.
FuzzCall random_call(std::mt19937& rng, Arch arch, int max_len = 5000,
                     int64_t max_elements = int64_t{1} << 23, uint32_t mod_seeds = 0);

// One line: "call <path> seed <n> dtype <d> dims <dqk> <dv> B <n> Hq <n> Hkv <n> q <n> kv <n>
// layout bhsd|bshd mask none|cpu|gpu blocks <q> <kv> [page <n> lens <n>...] [seqs <n>...]
// [causal]". parse_call throws std::runtime_error naming the problem.
std::string format_call(const FuzzCall& call);
FuzzCall parse_call(std::string_view line);

// A corpus case of the attention fuzzer: '#' comment lines, the call's line, then its mods as a
// `mod pair` fuzz case (testing/FuzzCase.h: the mask and score bodies over one set of buffers and
// params, with their data). Saved as tests/fuzz_corpus_attention/<name>.fza it replays from then
// on: its block mask and PTX on the CPU (test_testing_attention_fuzz.cpp), the call on the GPU
// (test_attention_gpu_fuzz.cpp). parse_attention_case throws std::runtime_error naming the
// problem.
struct AttentionFuzzCase {
  std::string name, comment;
  FuzzCall call;
  FuzzCase mods; // mods.mod.body: the mask; mods.mod.score: the score
};
std::string format_attention_case(const FuzzCall& call, const RandomMod& pair,
                                  const std::string& comment);
AttentionFuzzCase parse_attention_case(std::string name, std::string_view text);
// The embedded tests/fuzz_corpus_attention/*.fza files, as (file name, text).
const std::vector<std::pair<std::string, std::string>>& attention_fuzz_corpus();

} // namespace flexjit::testing
