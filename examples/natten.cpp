// Neighborhood attention (NATTEN): a 7 x 7 kernel centred on the query pixel,
// its centre clamped so the kernel stays on the 128 x 128 canvas.
#include "example_common.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

int main() {
  return examples::run([] {
    // torch: kernel_x = q_x.clamp(K_W // 2, (W - 1) - K_W // 2) (y likewise);
    //        (kernel_x - kv_x).abs() <= K_W // 2 & (kernel_y - kv_y).abs() <= K_H // 2
    const int width = 128, height = 128;
    examples::report("NATTEN, 128x128 image, 7x7 kernel", seeds::natten(width, height, 7, 7),
                     noop_score(), width * height);
  });
}
