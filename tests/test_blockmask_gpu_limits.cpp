// Resource limits on a real device: a mod under the node limit that spills is
// reported when the runtime loads its kernel, and the GPU builders check device
// memory before allocating. Every test skips cleanly without a CUDA device.
#include <catch2/catch.hpp>

#include <climits>
#include <optional>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/compiler/Visitor.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/WideMod.h"
#include "flexjit/compiler/Passes.h"

using namespace flexjit;
using Catch::Contains;

TEST_CASE("gpu limits: a kernel that spills is reported when it loads", "[gpu][limits]") {
  SKIP_WITHOUT_CUDA();
  std::vector<int32_t> data(1024, 1);
  DeviceBuffer t_dev(data.size() * 4);
  t_dev.upload(data.data(), data.size() * 4);
  const IntBuffer t("t_spill", t_dev.view(DType::I32, {1024}));
  // The mask test_ptx.cpp's "a large mod under the node limit" sees spill with ptxas 13.
  const MaskMod wide = testing::wide_product_mask("wide_spill", t);
  REQUIRE(topo_order(optimize(wide.body())).size() < static_cast<size_t>(kMaxModNodes));
  const size_t before = kernel_warnings().size();
  const std::vector<uint8_t> gpu = create_mask(wide, 1, 1, 64, 64, {}, Device::Cuda);
  CHECK(gpu ==
        create_mask(wide, 1, 1, 64, 64,
                    {{{"t_spill", TensorView::contiguous(data.data(), DType::I32, {1024})}}, {}}));
  const std::vector<std::string> warnings = kernel_warnings();
  REQUIRE(warnings.size() > before);
  bool reported = false;
  for (size_t i = before; i < warnings.size(); ++i) {
    WARN(warnings[i]);
    reported = reported || (warnings[i].find("flexjit_create_mask") != std::string::npos &&
                            (warnings[i].find("spill") != std::string::npos));
  }
  CHECK(reported);
}

TEST_CASE("gpu limits: GPU block masks and dense masks check device memory first",
          "[gpu][limits][errors]") {
  SKIP_WITHOUT_CUDA();
  // 64 x 64 heads at S = 1M: 256 GiB of tile states, more than any device has; the
  // mask reads b and h, so every head is classified.
  const MaskMod per_head =
      mask_mod("per_head", [](Idx b, Idx h, Idx q, Idx kv) { return q + b + h >= kv; });
  BlockMaskOptions on_gpu;
  on_gpu.device = Device::Cuda;
  const int S = 1 << 20;
  REQUIRE_THROWS_WITH(create_block_mask(per_head, 64, 64, S, S, on_gpu),
                      Contains("create_block_mask on the GPU: the tile states buffer of [64, 64] "
                               "heads x 8192 x 8192 tiles needs 274877906944 bytes") &&
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
  // A failed allocation names its size.
  REQUIRE_THROWS_WITH(DeviceBuffer(size_t{1} << 50),
                      Contains("cuMemAlloc of 1125899906842624 bytes failed: CUDA_ERROR_"));
}
