// The block masks' limits on a real device: the GPU builders check device memory
// before allocating. (A spilling kernel and a failed allocation are the runtime's:
// test_runtime_gpu_limits.cpp.) Every test skips cleanly without a CUDA device.
#include <catch2/catch.hpp>

#include <optional>

#include <flexjit/flexjit.h>

#include "flexjit/testing/GpuTensors.h"

using namespace flexjit;
using Catch::Contains;

TEST_CASE("gpu limits: GPU block masks and dense masks check device memory first",
          "[gpu][limits][errors][blockmask]") {
  SKIP_WITHOUT_CUDA();
  // 64 x 64 heads at S = 1M: 4 TiB of index arrays and 256 GiB of tile states, more than any
  // device has; the mask reads b and h, so every head is classified.
  const MaskMod per_head =
      mask_mod("per_head", [](Idx b, Idx h, Idx q, Idx kv) { return q + b + h >= kv; });
  BlockMaskOptions on_gpu;
  on_gpu.device = Device::Cuda;
  const int S = 1 << 20;
  REQUIRE_THROWS_WITH(create_block_mask(per_head, 64, 64, S, S, on_gpu),
                      Contains("create_block_mask on the GPU: the index arrays and tile states of "
                               "[64, 64] heads x 8192 x 8192 tiles needs 4673461387264 bytes") &&
                          Contains("of device memory") && Contains("are free"));
  // A 2 GiB dense mask (under create_mask's 16 GiB cap, and in host memory) on a
  // device left with about 1 GiB free.
  const DeviceMemoryInfo info = device_memory_info();
  REQUIRE(info.total_bytes > 0);
  REQUIRE(info.free_bytes <= info.total_bytes);
  std::optional<DeviceBuffer> hog;
  try {
    if (info.free_bytes > (size_t{3} << 30))
      hog.emplace(info.free_bytes - (size_t{1} << 30));
  } catch (const Error& e) {
    WARN("skipped the dense mask check: could not take the device's free memory: " << e.what());
  }
  if (hog) {
    REQUIRE_THROWS_WITH(create_mask(per_head, 1, 1, 32768, 65536, {}, Device::Cuda),
                        Contains("create_mask on the GPU: a dense [1, 1, 32768, 65536] mask needs "
                                 "2147483648 bytes (2.00 GiB) of device memory"));
  }
}
