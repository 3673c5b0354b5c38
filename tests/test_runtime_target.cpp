// The runtime's target (runtime/Target.h): the arch flexjit compiles for on a device
// of a given compute capability, and FLEXJIT_ARCH; no device needed.
#include <catch2/catch.hpp>

#include "flexjit/runtime/Target.h"

using namespace flexjit;

TEST_CASE("target: the architecture follows the compute capability", "[runtime]") {
  REQUIRE(target_arch(9, 0) == Arch::SM90a);
  REQUIRE(target_arch(8, 0) == Arch::SM80);
  REQUIRE(target_arch(8, 9) == Arch::SM80);
  REQUIRE(target_arch(10, 0) == Arch::SM80);
  REQUIRE_THROWS_WITH(target_arch(7, 5), Catch::Contains("7.5"));
  // FLEXJIT_ARCH
  CHECK(target_arch(9, 0, nullptr) == Arch::SM90a);
  CHECK(target_arch(9, 0, "") == Arch::SM90a);
  CHECK(target_arch(9, 0, "sm_80") == Arch::SM80);
  CHECK(target_arch(8, 6, "sm_80") == Arch::SM80);
  REQUIRE_THROWS_WITH(target_arch(9, 0, "sm_90"),
                      Catch::Contains("FLEXJIT_ARCH=sm_90 is not supported") &&
                          Catch::Contains("expected sm_80"));
  REQUIRE_THROWS_WITH(target_arch(7, 5, "sm_80"), Catch::Contains("7.5"));
}
