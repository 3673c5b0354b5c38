// The runtime's limits on a real device: a mod under the node limit that spills is
// reported when the runtime loads its kernel, and a failed CUDA call names what it
// asked for. Every test skips cleanly without a CUDA device.
#include <catch2/catch.hpp>

#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/WideMod.h"

using namespace flexjit;
using Catch::Contains;

TEST_CASE("gpu limits: a kernel that spills is reported when it loads", "[gpu][limits][runtime]") {
  SKIP_WITHOUT_CUDA();
  std::vector<int32_t> data(1024, 1);
  DeviceBuffer t_dev(data.size() * 4);
  t_dev.upload(data.data(), data.size() * 4);
  const IntBuffer t("t_spill", t_dev.view(DType::I32, {1024}));
  // The mask test_codegen_ptx.cpp's "a large mod under the node limit" sees spill with ptxas 13.
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

TEST_CASE("gpu limits: a failed device allocation names its size",
          "[gpu][limits][errors][runtime]") {
  SKIP_WITHOUT_CUDA();
  // A failed allocation names its size.
  REQUIRE_THROWS_WITH(DeviceBuffer(size_t{1} << 50),
                      Contains("cuMemAlloc of 1125899906842624 bytes failed: CUDA_ERROR_"));
}
