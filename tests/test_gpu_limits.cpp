// Resource limits on a real device: a mod under the node limit that spills is
// reported when the runtime loads its kernel. Every test skips cleanly without a
// CUDA device.
#include <catch2/catch.hpp>

#include <vector>

#include <flexjit/flexjit.h>

#include "compiler/Visitor.h"

using namespace flexjit;
using Catch::Contains;

#define SKIP_WITHOUT_CUDA()                                                                        \
  do {                                                                                             \
    if (!cuda_available()) {                                                                       \
      SUCCEED("skipped: no CUDA device");                                                          \
      return;                                                                                      \
    }                                                                                              \
  } while (0)

TEST_CASE("gpu limits: a kernel that spills is reported when it loads", "[gpu][limits]") {
  SKIP_WITHOUT_CUDA();
  std::vector<int32_t> data(1024, 1);
  DeviceBuffer t_dev(data.size() * 4);
  t_dev.upload(data.data(), data.size() * 4);
  const IntBuffer t("t_spill", t_dev.view(DType::I32, {1024}));
  const IntExpr q = var_q(), kv = var_kv();
  // A balanced product tree of 200 loads (as in test_ptx.cpp's, twice as wide).
  std::vector<IntExpr> terms;
  for (int i = 0; i < 200; ++i)
    terms.push_back(t[(q * (i + 5) + kv * (2 * i + 3)) % 1024]);
  while (terms.size() > 1) {
    std::vector<IntExpr> next;
    for (size_t i = 0; i + 1 < terms.size(); i += 2)
      next.push_back(terms[i] * terms[i + 1] + 1);
    if (terms.size() % 2)
      next.push_back(terms.back());
    terms = std::move(next);
  }
  const MaskMod wide("wide_spill", terms[0] > 5);
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
