// The block masks' errors (blockmask/): the shape and block sizes of create_block_mask
// and create_mask, tile queries outside a mask, and the GPU builder's limits and its
// lack of a device, all checked before any CUDA call. Each is an Error whose message
// names the bad value and what was expected (README.md, "Errors"). The memory checks
// are in test_blockmask_limits.cpp and test_blockmask_gpu_limits.cpp.
#include <catch2/catch.hpp>

#include <flexjit/flexjit.h>

#include "flexjit/testing/SeedMods.h"

using namespace flexjit;
using Catch::Contains;

TEST_CASE("block sizes that are not powers of two", "[errors][blockmask]") {
  for (int bad : {100, 0, -128, 96, 3}) {
    INFO("block size " << bad);
    REQUIRE_THROWS_WITH(create_block_mask(seeds::causal(), 1, 1, 1024, 1024, {bad, 128, {}}),
                        Contains("q_block") && Contains(std::to_string(bad)) &&
                            Contains("power of two"));
    REQUIRE_THROWS_WITH(create_block_mask(seeds::causal(), 1, 1, 1024, 1024, {128, bad, {}}),
                        Contains("kv_block") && Contains(std::to_string(bad)) &&
                            Contains("power of two"));
  }
  REQUIRE_NOTHROW(create_block_mask(seeds::causal(), 1, 1, 1024, 1024, {1, 1024, {}}));
}

TEST_CASE("zero or negative lengths and counts", "[errors][blockmask]") {
  const MaskMod causal = seeds::causal();
  for (int bad : {0, -5}) {
    const std::string value = "got " + std::to_string(bad);
    REQUIRE_THROWS_WITH(create_block_mask(causal, 1, 1, bad, 128),
                        Contains("q_len") && Contains(value));
    REQUIRE_THROWS_WITH(create_block_mask(causal, 1, 1, 128, bad),
                        Contains("kv_len") && Contains(value));
    REQUIRE_THROWS_WITH(create_block_mask(causal, bad, 1, 128, 128),
                        Contains("B ") && Contains(value));
    REQUIRE_THROWS_WITH(create_block_mask(causal, 1, bad, 128, 128),
                        Contains("H ") && Contains(value));
    REQUIRE_THROWS_WITH(create_mask(causal, 1, 1, bad, 128), Contains("q_len") && Contains(value));
    REQUIRE_THROWS_WITH(create_mask(causal, 1, 1, 128, bad), Contains("kv_len") && Contains(value));
  }
}

TEST_CASE("errors: BlockMask tile queries outside the mask", "[errors][blockmask]") {
  const BlockMask bm = create_block_mask(seeds::causal(), 2, 3, 256, 384);
  REQUIRE(bm.tile_state(1, 2, 1, 1) == 1); // the diagonal: partial
  REQUIRE_THROWS_WITH(bm.tile_state(2, 0, 0, 0),
                      Contains("tile_state: (b, h) = (2, 0) is outside B = 2, H = 3"));
  REQUIRE_THROWS_WITH(bm.tile_state(0, -1, 0, 0), Contains("(b, h) = (0, -1)"));
  REQUIRE_THROWS_WITH(bm.tile_state(0, 0, 2, 0),
                      Contains("tile (2, 0) is outside the 2 x 3 block grid"));
  REQUIRE_THROWS_WITH(bm.tile_state(0, 0, 0, 3), Contains("tile (0, 3) is outside"));
}

TEST_CASE("errors: the GPU block mask builder's limits, checked before any CUDA call",
          "[errors][blockmask]") {
  const MaskMod per_head =
      mask_mod("per_head", [](Idx b, Idx h, Idx q, Idx kv) { return q + b + h >= kv; });
  BlockMaskOptions on_gpu;
  on_gpu.device = Device::Cuda;
  on_gpu.q_block = on_gpu.kv_block = 16;
  // 2^16 x 2^10 heads x 2^20 / 16 kv blocks: 2^42 columns of tiles.
  REQUIRE_THROWS_WITH(create_block_mask(per_head, 1 << 16, 1 << 10, 1 << 20, 1 << 20, on_gpu),
                      Contains("create_block_mask on the GPU: [65536, 1024] heads x 65536 x 65536 "
                               "tiles have more than 2^30 rows or columns of tiles"));
}

TEST_CASE("create_block_mask without a GPU: Device::Cuda fails, Device::Auto builds on the CPU",
          "[errors][blockmask]") {
  if (cuda_available()) {
    SUCCEED("skipped: a CUDA device is present");
    return;
  }
  BlockMaskOptions on_gpu;
  on_gpu.device = Device::Cuda;
  REQUIRE_THROWS_WITH(create_block_mask(seeds::causal(), 1, 1, 256, 256, on_gpu),
                      Contains("CUDA is not available"));
  // Auto falls back to the CPU builder.
  BlockMaskOptions automatic;
  automatic.device = Device::Auto;
  const BlockMask bm = create_block_mask(seeds::causal(), 1, 1, 256, 256, automatic);
  REQUIRE(bm.states() == create_block_mask(seeds::causal(), 1, 1, 256, 256).states());
}
