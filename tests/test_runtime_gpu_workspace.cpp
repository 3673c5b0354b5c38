// runtime/Workspace.h: a grow-only device buffer that doubles, keeps the pointer while the
// request fits, and starts over after release. Skips cleanly without a CUDA device.
#include <catch2/catch.hpp>

#include "flexjit/runtime/Workspace.h"
#include "flexjit/testing/GpuTensors.h"

using namespace flexjit;

TEST_CASE("workspace: grows by doubling and allocates nothing while a request fits",
          "[gpu][runtime]") {
  SKIP_WITHOUT_CUDA();
  constexpr size_t kMin = Workspace::kMinBytes;
  Workspace w;
  CHECK(w.capacity() == 0);
  void* const first = w.get(100);
  REQUIRE(first != nullptr);
  CHECK(w.capacity() == kMin); // at least kMinBytes
  CHECK(w.get(kMin) == first);
  void* const second = w.get(kMin + 1);
  CHECK(second != first); // the first is retired, still allocated
  CHECK(w.capacity() == 2 * kMin);
  CHECK(w.get(2 * kMin) == second);
  w.get(5 * kMin); // more than twice: what is asked
  CHECK(w.capacity() == 5 * kMin);
  w.release();
  CHECK(w.capacity() == 0);
  w.get(3 * kMin); // released: no size to double
  CHECK(w.capacity() == 3 * kMin);
}
