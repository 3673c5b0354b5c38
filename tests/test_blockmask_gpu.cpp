// The GPU block-mask builder and the GPU dense mask on a real device, against the CPU
// builders, and the GPU builder's time. Every test skips cleanly without a CUDA device.
#include <catch2/catch.hpp>

#include <chrono>

#include <flexjit/flexjit.h>

#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/SeedCatalog.h"

using namespace flexjit;
using namespace flexjit::testing;

TEST_CASE("gpu: the GPU block mask equals the CPU builder", "[gpu][blockmask]") {
  SKIP_WITHOUT_CUDA();
  const SeedCatalog seeds;
  const std::pair<int, int> shapes[] = {{8192, 8192}, {1000, 777}, {37, 300}};
  for (const MaskMod& mask : seeds.masks) {
    const DeviceBindings device = to_device({mask.body()});
    for (auto [Q, KV] : shapes) {
      INFO(mask.name() << " " << Q << " x " << KV);
      const BlockMask cpu = create_block_mask(mask, 1, 2, Q, KV);
      BlockMaskOptions o;
      o.device = Device::Cuda;
      o.bindings = device.bindings;
      const BlockMask gpu = create_block_mask(mask, 1, 2, Q, KV, o);
      CHECK(gpu.states() == cpu.states());
      CHECK(gpu.kv_indices == cpu.kv_indices);
      CHECK(gpu.full_kv_indices == cpu.full_kv_indices);
      CHECK(gpu.q_indices == cpu.q_indices);
      if (Q <= 1000) {
        CHECK(create_mask(mask, 1, 1, Q, KV, device.bindings, Device::Cuda) ==
              create_mask(mask, 1, 1, Q, KV));
      }
    }
  }
}

TEST_CASE("gpu: GPU block mask build time at S = 8192", "[gpu][blockmask][timing]") {
  SKIP_WITHOUT_CUDA();
  const SeedCatalog seeds;
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  for (const MaskMod& mask : seeds.masks) {
    const DeviceBindings device = to_device({mask.body()});
    BlockMaskOptions o;
    o.device = Device::Cuda;
    o.bindings = device.bindings;
    create_block_mask(mask, 1, 1, 8192, 8192, o); // compile / load
    auto t = Clock::now();
    const int reps = 5;
    for (int i = 0; i < reps; ++i)
      create_block_mask(mask, 1, 1, 8192, 8192, o);
    const double gpu_ms = ms(t) / reps;
    const std::vector<uint8_t> states = create_block_mask(mask, 1, 1, 8192, 8192, o).states();
    t = Clock::now();
    block_mask_from_states(states, 1, 1, 8192, 8192, 128, 128, mask);
    const double compact_ms = ms(t);
    t = Clock::now();
    create_block_mask(mask, 1, 1, 8192, 8192);
    const double cpu_ms = ms(t);
    WARN("create_block_mask S=8192 " << mask.name() << ": GPU " << gpu_ms
                                     << " ms (of which CPU compaction " << compact_ms
                                     << " ms), CPU builder " << cpu_ms << " ms");
  }
}
