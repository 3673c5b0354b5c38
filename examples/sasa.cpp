// Stand-Alone Self-Attention: a 128 x 128 image flattened to 16384 tokens;
// a pixel attends pixels within WINDOW = 8 in both x and y.
#include "example_common.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

int main() {
  return examples::run([] {
    // torch: q_x, q_y = q_idx // W, q_idx % W (kv likewise);
    //        (q_x - kv_x).abs() <= WINDOW & (q_y - kv_y).abs() <= WINDOW
    const int width = 128, window = 8;
    examples::report("SASA, 128x128 image, window 8", seeds::sasa(width, window), noop_score(),
                     width * width);
  });
}
