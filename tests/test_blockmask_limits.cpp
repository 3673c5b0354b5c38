// The block masks' memory limits: block_mask_bytes says what a block mask needs
// before it is built, and a shape the machine cannot hold fails with an Error naming
// the bytes needed and available before anything is allocated. (The device memory
// checks are in test_blockmask_gpu_limits.cpp.)
#include <catch2/catch.hpp>

#include <chrono>
#include <climits>

#include <flexjit/flexjit.h>

#include "flexjit/testing/SeedMods.h"

using namespace flexjit;
using Catch::Contains;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

TEST_CASE("limits: block_mask_bytes at S = 1M with 128 x 128 blocks", "[limits][blockmask]") {
  const int S = 1 << 20; // 8192 x 8192 tiles
  const BlockMaskBytes one = block_mask_bytes(1, 1, S, S);
  const int64_t tiles = int64_t{8192} * 8192;
  CHECK(one.arrays == 4 * (2 * (8192 + 8192) + 4 * tiles)); // 1.0 GiB + 128 KiB
  CHECK(one.arrays == 1073872896);
  CHECK(one.states == tiles);                           // 64 MiB
  CHECK(one.device_copy == 4 * (2 * 8192 + 2 * tiles)); // 512 MiB + 64 KiB
  CHECK(one.build_host() == one.arrays + one.states);
  // Linear in B * H; smaller blocks, more tiles.
  const BlockMaskBytes heads = block_mask_bytes(2, 16, S, S);
  CHECK(heads.arrays == 32 * one.arrays);
  CHECK(heads.states == 32 * one.states);
  BlockMaskOptions small;
  small.q_block = small.kv_block = 64;
  CHECK(block_mask_bytes(1, 1, S, S, small).states == 4 * tiles);
  // A ragged shape counts its partial blocks.
  CHECK(block_mask_bytes(1, 1, 129, 1).states == 2);
  // Shapes no machine holds saturate instead of overflowing.
  BlockMaskOptions unit;
  unit.q_block = unit.kv_block = 1;
  const BlockMaskBytes absurd = block_mask_bytes(INT_MAX, INT_MAX, INT_MAX, INT_MAX, unit);
  CHECK(absurd.arrays == INT64_MAX);
  CHECK(absurd.states == INT64_MAX);
  CHECK(absurd.build_host() == INT64_MAX);
  // The shape checks are create_block_mask's.
  REQUIRE_THROWS_WITH(block_mask_bytes(1, 1, 0, 8), Contains("q_len must be positive"));
  REQUIRE_THROWS_WITH(block_mask_bytes(1, 1, 8, 8, {96, 128, {}}), Contains("power of two"));
}

TEST_CASE("limits: a block mask larger than memory fails before allocating",
          "[limits][blockmask][errors]") {
  // 1024 x 1024 heads at S = 1M: about 1 PiB of index arrays.
  const int S = 1 << 20;
  const BlockMaskBytes bytes = block_mask_bytes(1024, 1024, S, S);
  const auto start = std::chrono::steady_clock::now();
  REQUIRE_THROWS_WITH(
      create_block_mask(seeds::causal(), 1024, 1024, S, S),
      Contains("create_block_mask: a [1024, 1024, 1048576, 1048576] block mask of 128 x 128 "
               "blocks needs " +
               std::to_string(bytes.build_host()) + " bytes") &&
          Contains("of host memory (index arrays " + std::to_string(bytes.arrays) +
                   ", tile states " + std::to_string(bytes.states) + ")") &&
          Contains("are available"));
  CHECK(seconds_since(start) < 5.0); // nothing was classified or allocated
}
