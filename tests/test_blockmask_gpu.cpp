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

// Masks that differ only in a param's default or a buffer's captured data share one kernel
// (its key holds neither); each call must run with its own values, whichever came first.
TEST_CASE("gpu: masks sharing a kernel run with their own param defaults and data",
          "[gpu][blockmask]") {
  SKIP_WITHOUT_CUDA();
  for (int order = 0; order < 2; ++order) {
    const int first = order == 0 ? 256 : 2048, second = order == 0 ? 2048 : 256;
    for (int window : {first, second}) {
      INFO("window " << window << " after " << first);
      const MaskMod mask = seeds::sliding_window(window);
      BlockMaskOptions o;
      o.device = Device::Cuda;
      const BlockMask gpu = create_block_mask(mask, 1, 1, 4096, 4096, o);
      CHECK(gpu.states() == create_block_mask(mask, 1, 1, 4096, 4096).states());
      CHECK(create_mask(mask, 1, 1, 300, 300, {}, Device::Cuda) ==
            create_mask(mask, 1, 1, 300, 300));
    }
  }
  std::vector<int32_t> a(4096), b(4096);
  for (int i = 0; i < 4096; ++i) {
    a[i] = i / 500;
    b[i] = i / 1300;
  }
  for (const std::vector<int32_t>* ids : {&a, &b}) {
    DeviceBuffer dev(ids->size() * 4);
    dev.upload(ids->data(), ids->size() * 4);
    const IntBuffer doc = buffer_i32("document_id", dev.view(DType::I32, {4096}));
    const MaskMod mask =
        mask_mod("document", [&](Idx, Idx, Idx q, Idx kv) { return q >= kv && doc[q] == doc[kv]; });
    BlockMaskOptions o;
    o.device = Device::Cuda;
    const BlockMask gpu = create_block_mask(mask, 1, 1, 4096, 4096, o);
    CHECK(gpu.states() == create_block_mask(seeds::document(*ids), 1, 1, 4096, 4096).states());
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
