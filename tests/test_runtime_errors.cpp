// The runtime's errors (runtime/) that need no device: DeviceBuffer ranges and views,
// and time_on_stream's arguments, checked before any CUDA call. Each is an Error whose
// message names the bad value and what was expected (README.md, "Errors"). The target
// architecture's errors are in test_runtime_target.cpp; those of a failed CUDA call
// and a spilling kernel in test_runtime_gpu_limits.cpp.
#include <catch2/catch.hpp>

#include <flexjit/flexjit.h>

using namespace flexjit;
using Catch::Contains;

TEST_CASE("errors: DeviceBuffer ranges and views, checked before any CUDA call",
          "[errors][runtime]") {
  DeviceBuffer empty; // no allocation, no CUDA needed
  char host[16] = {};
  REQUIRE_THROWS_WITH(empty.upload(host, 16),
                      Contains("DeviceBuffer::upload: 16 bytes at offset 0 do not fit in a buffer "
                               "of 0 bytes"));
  REQUIRE_THROWS_WITH(empty.download(host, 4, 8), Contains("DeviceBuffer::download: 4 bytes at "
                                                           "offset 8"));
  REQUIRE_THROWS_WITH(empty.view(DType::F16, {2, 4}),
                      Contains("DeviceBuffer::view: 16 bytes of f16 do not fit in a buffer of 0 "
                               "bytes"));
  REQUIRE_THROWS_WITH(empty.view(DType::F16, {2, 4}, {4}),
                      Contains("DeviceBuffer::view: 2 sizes and 1 strides (expected equal counts, "
                               "at most 4)"));
  REQUIRE_THROWS_WITH(empty.view(DType::F16, {2, 4}, {-4, 1}),
                      Contains("DeviceBuffer::view: negative stride -4 in dimension 0"));
  REQUIRE_THROWS_WITH(empty.view(DType::F32, {2, 4}, {8, 1}),
                      Contains("DeviceBuffer::view: the strided view reaches 48 bytes, the buffer "
                               "has 0"));
}

TEST_CASE("errors: time_on_stream with no repetitions", "[errors][runtime]") {
  REQUIRE_THROWS_WITH(time_on_stream(
                          Stream{}, [] {}, 0),
                      Contains("time_on_stream: reps must be positive, got 0"));
}
