#include "flexjit/blockmask/BlockMaskGpu.h"

#include <algorithm>

#include "flexjit/blockmask/DeviceCopy.h"
#include "flexjit/blockmask/Memory.h"
#include "flexjit/codegen/PackArgs.h"
#include "flexjit/codegen/templates/attention_abi.h"
#include "flexjit/codegen/templates/blockmask_abi.h"
#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/DeviceArgs.h"
#include "flexjit/runtime/DeviceErrors.h"
#include "flexjit/runtime/KernelCache.h"
#include "flexjit/runtime/Runtime.h"
#include "flexjit/runtime/Workspace.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

// The call's arguments, from its own prepared mask (cuda::get_kernel says why).
FlexjitModArgs mask_args(const PreparedMods& mask, const Bindings& bindings, const char* what) {
  return pack_mod_args(mask.signature, resolve_device_args(mask.signature, bindings, what),
                       cuda::device_error_word());
}

// The mask's kernel of `kind` for the current device.
std::shared_ptr<const cuda::LoadedKernel> mask_kernel(TemplateKind kind, const PreparedMods& mask) {
  const Target& target = current_target();
  return cuda::get_kernel(target, find_variant(kind, target.arch), mask);
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

namespace {

// The byte layout of a GPU-built mask's device memory: the resident arrays (forward half, then
// the q-major half), then the build's scratch (tile states, q-block work) in a thread-local
// buffer.
struct Layout {
  int64_t nq, nkv, planes, q_tiles;
  int64_t counts_fwd, cells, counts_bwd;
  int64_t resident_bytes() const {
    return 4 * (2 * counts_fwd + 2 * cells + q_tiles + 2 * counts_bwd + 2 * cells);
  }
  int64_t scratch_bytes(int64_t computed_planes) const {
    return 8 * nq + computed_planes * nq * nkv; // the work first: 8-byte aligned
  }
};

Layout layout(int B, int H, int q_len, int kv_len, int q_block, int kv_block) {
  Layout l;
  l.nq = (int64_t{q_len} + q_block - 1) / q_block;
  l.nkv = (int64_t{kv_len} + kv_block - 1) / kv_block;
  l.planes = int64_t{B} * H;
  l.q_tiles = q_block % FLEXJIT_FWD_BLOCK_M == 0
                  ? (int64_t{q_len} + FLEXJIT_FWD_BLOCK_M - 1) / FLEXJIT_FWD_BLOCK_M
                  : 0;
  l.counts_fwd = l.planes * l.nq;
  l.cells = l.planes * l.nq * l.nkv;
  l.counts_bwd = l.planes * l.nkv;
  return l;
}

// The build's scratch: one grow-only workspace per thread (cuMemFree synchronizes the device).
Workspace& scratch_workspace() {
  thread_local Workspace scratch;
  return scratch;
}

} // namespace

void check_block_mask_cuda(int B, int H, int Bc, int Hc, int q_len, int kv_len, int q_block,
                           int kv_block) {
  const Layout l = layout(B, H, q_len, kv_len, q_block, kv_block);
  // The kernels index rows and columns of tiles with ints, grid-stride.
  constexpr int64_t kMaxLines = int64_t{1} << 30;
  if (int64_t{Bc} * Hc * std::max(l.nq, l.nkv) > kMaxLines)
    fail("create_block_mask on the GPU: [{}, {}] heads x {} x {} tiles have more than 2^30 rows "
         "or columns of tiles",
         Bc, Hc, l.nq, l.nkv);
  const int64_t scratch = l.scratch_bytes(int64_t{Bc} * Hc);
  // A scratch that must grow is freed (release) before asking what is free, not retired as
  // Workspace does: it can be as large as the mask's arrays, and kept, it would count as used,
  // so a mask that fits only without it would fail here. Freeing is safe: every build
  // synchronizes before it returns and none is captured in a graph (it launches on the legacy
  // stream), so no kernel still uses the old scratch. Released, the workspace then grows to
  // the size asked (at least Workspace::kMinBytes), not twice the last.
  Workspace& workspace = scratch_workspace();
  const bool grows = static_cast<int64_t>(workspace.capacity()) < scratch;
  if (grows)
    workspace.release();
  const int64_t needed = l.resident_bytes() + (grows ? scratch : 0);
  require_device_memory(fmt::format("create_block_mask on the GPU: the index arrays and tile "
                                    "states of [{}, {}] heads x {} x {} tiles",
                                    B, H, l.nq, l.nkv),
                        needed);
}

BlockMask block_mask_cuda(const PreparedMods& mask, MaskMod mod, int B, int H, int Bc, int Hc,
                          int q_len, int kv_len, int q_block, int kv_block,
                          const Bindings& bindings, bool host_arrays) {
  const Layout l = layout(B, H, q_len, kv_len, q_block, kv_block);
  // mask_args checks the buffers (device memory, dtypes) before the launch.
  const auto kernel = mask_kernel(TemplateKind::BlockClassify, mask);
  FlexjitModArgs args = mask_args(mask, bindings, "create_block_mask");
  iv::Program program = mask.mask_program; // a copy: the launch's parameter

  void* const scratch =
      scratch_workspace().get(static_cast<size_t>(l.scratch_bytes(int64_t{Bc} * Hc)));
  auto resident = std::make_shared<BlockMaskDeviceCopy::Resident>();
  resident->context = cuda::ensure_context();
  resident->buffer = DeviceBuffer(static_cast<size_t>(std::max<int64_t>(l.resident_bytes(), 4)));
  resident->q_tile_rows = l.q_tiles > 0 ? FLEXJIT_FWD_BLOCK_M : 0;

  FlexjitBlockMaskParams p{};
  p.Bc = Bc;
  p.Hc = Hc;
  p.B = B;
  p.H = H;
  p.q_len = q_len;
  p.kv_len = kv_len;
  p.q_block = q_block;
  p.kv_block = kv_block;
  p.num_q_blocks = static_cast<int32_t>(l.nq);
  p.num_kv_blocks = static_cast<int32_t>(l.nkv);
  p.q_tiles = static_cast<int32_t>(l.q_tiles);
  p.q_tile_rows = FLEXJIT_FWD_BLOCK_M;
  p.q_block_work = static_cast<unsigned long long*>(scratch);
  p.states = static_cast<uint8_t*>(scratch) + 8 * l.nq;
  int32_t* next = static_cast<int32_t*>(resident->buffer.data());
  auto take = [&](int64_t n) {
    int32_t* at = next;
    next += n;
    return at;
  };
  p.kv_num_blocks = take(l.counts_fwd);
  p.kv_indices = take(l.cells);
  p.full_kv_num_blocks = take(l.counts_fwd);
  p.full_kv_indices = take(l.cells);
  p.q_tile_order = take(l.q_tiles);
  p.q_num_blocks = take(l.counts_bwd);
  p.q_indices = take(l.cells);
  p.full_q_num_blocks = take(l.counts_bwd);
  p.full_q_indices = take(l.cells);
  resident->arrays = {
      p.kv_num_blocks,     p.kv_indices,     p.full_kv_num_blocks,
      p.full_kv_indices,   p.q_num_blocks,   p.q_indices,
      p.full_q_num_blocks, p.full_q_indices, l.q_tiles > 0 ? p.q_tile_order : nullptr};

  const cuda::Driver& d = cuda::driver();
  cuda::check(d.cuMemsetD8Async(reinterpret_cast<CUdeviceptr>(p.q_block_work), 0,
                                static_cast<size_t>(8 * l.nq), nullptr),
              "cuMemsetD8Async");
  void* params[] = {&args, &p, &program};
  LaunchSizes sizes;
  sizes.elements = int64_t{Bc} * Hc * l.nq * FLEXJIT_BLOCK_MASK_THREADS;
  cuda::launch(*kernel, sizes, nullptr, params);
  sizes.elements = std::max(int64_t{Bc} * Hc * l.nkv * 32, l.q_tiles);
  cuda::launch(*kernel, CompanionRole::Epilogue, sizes, nullptr, params);
  cuda::check(d.cuStreamSynchronize(nullptr), "cuStreamSynchronize");

  BlockMask bm = block_mask_shape(B, H, q_len, kv_len, q_block, kv_block, std::move(mod));
  bm.device_copy.set_resident(std::move(resident));
  if (host_arrays)
    bm.download_arrays();
  return bm;
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
  cuda::launch(*kernel, sizes, nullptr, params);
  std::vector<uint8_t> out(count);
  out_dev.download(out.data(), count);
  return out;
}

} // namespace flexjit
