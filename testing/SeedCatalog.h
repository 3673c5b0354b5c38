// Every seed mask and score mod of examples/seed_mods.h with the data their
// buffers capture, for the codegen tests and the compile-time bench. Not
// copyable or movable: the mods' buffer views point into its vectors.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "flexjit/testing/SeedMods.h"

namespace flexjit::testing {

struct SeedCatalog {
  std::vector<int32_t> document_ids = seeds::notebook_document_ids(16384);
  std::vector<int32_t> offsets = {0, 100, 250, 600, 1000};
  std::vector<int32_t> seq_idx = sequence_of_tokens(offsets);
  std::vector<int32_t> image_of_token = image_of_tokens(4, 16);
  std::vector<int32_t> intervals = {0, 10, 10, 30, 30, 50, 50, 100};
  std::vector<float> slopes = seeds::alibi_slopes(16);

  std::vector<MaskMod> masks = {
      seeds::causal(),
      seeds::sliding_window(),
      seeds::prefix_lm(),
      seeds::document(document_ids),
      seeds::sasa(),
      seeds::natten(),
      seeds::jagged_causal(offsets, seq_idx),
      seeds::vision_cross_attention(image_of_token, intervals),
  };
  std::vector<ScoreMod> scores = {
      noop_score(),
      seeds::alibi(),
      seeds::alibi_buffer(slopes),
      seeds::soft_cap(30.0f),
      seeds::soft_cap(30.0f, false),
      seeds::checkerboard(),
      seeds::causal_bias(),
  };

  // The attention pairs the forward tests and the compile bench compile: every seed mask
  // with the identity score, every seed score mod under causal, and the heaviest known
  // pair (document mask + ALiBi slopes from a buffer), last.
  std::vector<std::pair<MaskMod, ScoreMod>> attention_pairs() const {
    std::vector<std::pair<MaskMod, ScoreMod>> pairs;
    for (const MaskMod& mask : masks)
      pairs.emplace_back(mask, noop_score());
    for (const ScoreMod& score : scores)
      pairs.emplace_back(seeds::causal(), score);
    pairs.emplace_back(masks[3], scores[2]); // document x alibi_buffer
    return pairs;
  }

  SeedCatalog() = default;
  SeedCatalog(const SeedCatalog&) = delete;
  SeedCatalog& operator=(const SeedCatalog&) = delete;

private:
  static std::vector<int32_t> sequence_of_tokens(const std::vector<int32_t>& starts) {
    std::vector<int32_t> seq;
    for (size_t s = 0; s + 1 < starts.size(); ++s)
      seq.insert(seq.end(), static_cast<size_t>(starts[s + 1] - starts[s]),
                 static_cast<int32_t>(s));
    return seq;
  }
  static std::vector<int32_t> image_of_tokens(int images, int tokens_per_image) {
    std::vector<int32_t> image;
    for (int i = 0; i < images * tokens_per_image; ++i)
      image.push_back(i / tokens_per_image);
    return image;
  }
};

} // namespace flexjit::testing
