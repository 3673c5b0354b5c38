#include "flexjit/blockmask/BlockMaskGpu.h"

#include <algorithm>

#include "flexjit/blockmask/Memory.h"
#include "flexjit/codegen/PackArgs.h"
#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/DeviceArgs.h"
#include "flexjit/runtime/KernelCache.h"
#include "flexjit/runtime/Runtime.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

constexpr unsigned kMaxGridY = 65535;

// The call's arguments, from its own prepared mask (cuda::get_kernel says why).
FlexjitModArgs mask_args(const PreparedMods& mask, const Bindings& bindings, const char* what) {
  return pack_mod_args(mask.signature, resolve_device_args(mask.signature, bindings, what));
}

// One grow-only tile states buffer per thread: cuMemAlloc/cuMemFree per call cost
// more than the classification itself (cuMemFree synchronizes the device).
DeviceBuffer& states_buffer() {
  thread_local DeviceBuffer states;
  return states;
}

// The mask's kernel of `kind` for the current device.
std::shared_ptr<const cuda::LoadedKernel> mask_kernel(TemplateKind kind, const PreparedMods& mask) {
  const Target& target = current_target();
  return cuda::get_kernel(target, find_variant(kind, target.arch), mask);
}

void launch(const cuda::LoadedKernel& kernel, const LaunchSizes& sizes, void** args) {
  const KernelShape& shape = kernel.variant->main;
  const GridDims grid = grid_dims(shape, sizes);
  const cuda::Driver& d = cuda::driver();
  cuda::check(d.cuLaunchKernel(kernel.function, grid.x, grid.y, grid.z,
                               static_cast<unsigned>(shape.threads), 1, 1, 0, nullptr, args,
                               nullptr),
              kernel.entry());
}

} // namespace

bool runs_on_cuda(Device device, const PreparedMods& mask, const Bindings& bindings) {
  switch (device) {
  case Device::Host:
    return false;
  case Device::Cuda:
    return true;
  case Device::Auto:
    break;
  }
  if (!cuda_available())
    return false;
  const ResolvedArgs args = resolve(mask.signature, bindings);
  return std::all_of(args.buffers.begin(), args.buffers.end(),
                     [](const TensorView& v) { return v.device == Device::Cuda; });
}

void check_classify_tiles_cuda(int B, int H, int q_len, int kv_len, int q_block, int kv_block) {
  const int64_t nq = (int64_t{q_len} + q_block - 1) / q_block;
  const int64_t nkv = (int64_t{kv_len} + kv_block - 1) / kv_block;
  if (static_cast<int64_t>(B) * H > kMaxGridY || nq > kMaxGridY)
    fail("create_block_mask on the GPU: B * H = {} and num_q_blocks = {} must be at most {}",
         static_cast<int64_t>(B) * H, nq, kMaxGridY);
  if (static_cast<int64_t>(q_block) * kv_block > INT32_MAX)
    fail("create_block_mask on the GPU: a {} x {} tile is too large", q_block, kv_block);
  const int64_t count = int64_t{B} * H * nq * nkv;
  DeviceBuffer& states = states_buffer();
  if (static_cast<int64_t>(states.bytes()) >= count)
    return;
  states = DeviceBuffer(); // free the smaller buffer before asking what is free
  require_device_memory(fmt::format("create_block_mask on the GPU: the tile states buffer of "
                                    "[{}, {}] heads x {} x {} tiles",
                                    B, H, nq, nkv),
                        count);
}

std::vector<uint8_t> classify_tiles_cuda(const PreparedMods& mask, int B, int H, int q_len,
                                         int kv_len, int q_block, int kv_block,
                                         const Bindings& bindings) {
  check_classify_tiles_cuda(B, H, q_len, kv_len, q_block, kv_block);
  int nq = (q_len + q_block - 1) / q_block, nkv = (kv_len + kv_block - 1) / kv_block;
  // mask_args checks the buffers (device memory, dtypes) before the launch.
  const auto kernel = mask_kernel(TemplateKind::BlockClassify, mask);
  FlexjitModArgs args = mask_args(mask, bindings, "create_block_mask");
  const size_t count = static_cast<size_t>(B) * H * nq * nkv;
  DeviceBuffer& states = states_buffer();
  if (states.bytes() < count)
    states = DeviceBuffer(std::max<size_t>(count, 1 << 16));
  void* states_ptr = states.data();
  void* params[] = {&args, &B, &H, &q_len, &kv_len, &q_block, &kv_block, &nq, &nkv, &states_ptr};
  LaunchSizes sizes;
  sizes.B = B;
  sizes.Hq = H;
  sizes.num_q_blocks = nq;
  sizes.num_kv_blocks = nkv;
  launch(*kernel, sizes, params);
  std::vector<uint8_t> out(count);
  states.download(out.data(), count); // synchronous: waits for the kernel
  return out;
}

void check_create_mask_cuda(int B, int H, int q_len, int kv_len) {
  require_device_memory(
      fmt::format("create_mask on the GPU: a dense [{}, {}, {}, {}] mask", B, H, q_len, kv_len),
      int64_t{B} * H * q_len * kv_len);
}

std::vector<uint8_t> create_mask_cuda(const PreparedMods& mask, int B, int H, int q_len, int kv_len,
                                      const Bindings& bindings) {
  check_create_mask_cuda(B, H, q_len, kv_len);
  const auto kernel = mask_kernel(TemplateKind::CreateMask, mask);
  FlexjitModArgs args = mask_args(mask, bindings, "create_mask");
  const size_t count = static_cast<size_t>(B) * H * q_len * kv_len;
  DeviceBuffer out_dev(count);
  void* out_ptr = out_dev.data();
  void* params[] = {&args, &B, &H, &q_len, &kv_len, &out_ptr};
  LaunchSizes sizes;
  sizes.elements = static_cast<int64_t>(count);
  launch(*kernel, sizes, params);
  std::vector<uint8_t> out(count);
  out_dev.download(out.data(), count);
  return out;
}

} // namespace flexjit
