// Flamingo-style cross attention: text tokens (queries) attend the image
// tokens (keys) of the image they follow. Q and KV lengths differ.
#include "example_common.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

int main() {
  return examples::run([] {
    // 4 images of 256 tokens each; image i is seen by text tokens [intervals(i, 0), intervals(i,
    // 1)).
    const int images = 4, tokens_per_image = 256, text = 4096;
    std::vector<int32_t> image_of_token;
    for (int i = 0; i < images * tokens_per_image; ++i)
      image_of_token.push_back(i / tokens_per_image);
    const std::vector<int32_t> intervals = {0, 1000, 1000, 1800, 1800, 3000, 3000, 4096};
    examples::report("Flamingo cross attention, 4096 text x 1024 image tokens",
                     seeds::vision_cross_attention(image_of_token, intervals), noop_score(),
                     examples::Shape{1, 1, text, images * tokens_per_image});
  });
}
