// The GPU block-mask builder and the GPU dense mask on a real device, against the CPU
// builders, and the GPU builder's time. Every test skips cleanly without a CUDA device.
#include <catch2/catch.hpp>

#include <chrono>

#include <flexjit/flexjit.h>

#include "flexjit/blockmask/DeviceCopy.h"
#include "flexjit/codegen/templates/attention_abi.h"
#include "flexjit/runtime/CudaDriver.h"
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

// The q-tile order a GPU-built mask holds in device memory (empty if none).
std::vector<int32_t> device_order(const BlockMask& mask) {
  const BlockMaskDeviceArrays a = device_arrays(mask, false, FLEXJIT_FWD_BLOCK_M);
  if (!a.q_tile_order)
    return {};
  std::vector<int32_t> order((mask.q_len + FLEXJIT_FWD_BLOCK_M - 1) / FLEXJIT_FWD_BLOCK_M);
  cuda::check(cuda::driver().cuMemcpyDtoH(order.data(),
                                          reinterpret_cast<CUdeviceptr>(a.q_tile_order),
                                          order.size() * sizeof(int32_t)),
              "cuMemcpyDtoH");
  return order;
}

// Device-only arrays (host_arrays false): the eight index arrays and the forward's q-tile order
// as the CPU builder and the host's order make them, broadcast over B and H on the device, for
// block sizes that are not the kernel's, ragged lengths, and masks reading b and h.
TEST_CASE("gpu: a block mask built and kept on the GPU equals the CPU builder's",
          "[gpu][blockmask]") {
  SKIP_WITHOUT_CUDA();
  const SeedCatalog seeds;
  std::vector<MaskMod> masks = seeds.masks;
  masks.push_back(mask_mod("per_head", [](Idx b, Idx h, Idx q, Idx kv) {
    return (q + 37 * h + 101 * b) % 300 >= kv % 256;
  }));
  struct Shape {
    int B, H, Q, KV, q_block, kv_block;
  };
  const Shape shapes[] = {{2, 3, 1000, 777, 128, 128},
                          {1, 2, 8192, 8192, 128, 128},
                          {3, 1, 300, 1030, 256, 64},
                          {1, 1, 37, 5000, 64, 128},
                          {2, 2, 4096, 129, 128, 256}};
  for (const MaskMod& mask : masks) {
    const DeviceBindings device = to_device({mask.body()});
    for (const Shape& sh : shapes) {
      INFO(mask.name() << " B " << sh.B << " H " << sh.H << " " << sh.Q << " x " << sh.KV
                       << " blocks " << sh.q_block << " x " << sh.kv_block);
      BlockMaskOptions host;
      host.q_block = sh.q_block;
      host.kv_block = sh.kv_block;
      const BlockMask cpu = create_block_mask(mask, sh.B, sh.H, sh.Q, sh.KV, host);
      BlockMaskOptions o = host;
      o.device = Device::Cuda;
      o.bindings = device.bindings;
      o.host_arrays = false;
      BlockMask gpu = create_block_mask(mask, sh.B, sh.H, sh.Q, sh.KV, o);
      REQUIRE(gpu.arrays_on_device_only());
      CHECK(gpu.kv_num_blocks.empty());
      CHECK(gpu.sparsity() == cpu.sparsity()); // through a downloaded copy
      CHECK(gpu.tile_state(sh.B - 1, sh.H - 1, 0, 0) == cpu.tile_state(sh.B - 1, sh.H - 1, 0, 0));
      if (sh.q_block % FLEXJIT_FWD_BLOCK_M == 0)
        CHECK(device_order(gpu) == heaviest_q_tiles_first(cpu, FLEXJIT_FWD_BLOCK_M));
      else
        CHECK(device_order(gpu).empty());
      const BlockMask copy = gpu; // shares the device arrays
      CHECK(copy.states() == cpu.states());
      gpu.download_arrays();
      CHECK_FALSE(gpu.arrays_on_device_only());
      CHECK(gpu.kv_num_blocks == cpu.kv_num_blocks);
      CHECK(gpu.kv_indices == cpu.kv_indices);
      CHECK(gpu.full_kv_num_blocks == cpu.full_kv_num_blocks);
      CHECK(gpu.full_kv_indices == cpu.full_kv_indices);
      CHECK(gpu.q_num_blocks == cpu.q_num_blocks);
      CHECK(gpu.q_indices == cpu.q_indices);
      CHECK(gpu.full_q_num_blocks == cpu.full_q_num_blocks);
      CHECK(gpu.full_q_indices == cpu.full_q_indices);
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
