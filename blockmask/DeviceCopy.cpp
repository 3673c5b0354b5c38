// BlockMask's device copy: the kv-major index arrays in one device buffer, uploaded on
// the forward's first use, and the q-major ones in another, on the backward's, once per
// (mask, context); re-uploaded only when the host arrays were reallocated (their addresses
// and sizes are the copy's key).
#include <mutex>
#include <tuple>

#include "flexjit/blockmask/DeviceCopy.h"
#include "flexjit/blockmask/Memory.h"
#include "flexjit/runtime/Context.h"
#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/Runtime.h"
#include "flexjit/support/Error.h"

namespace flexjit {

using Key =
    std::tuple<CUcontext, const void*, const void*, const void*, const void*, size_t, size_t>;

// One direction's four arrays (counts, indices, full counts, full indices) in one buffer.
struct Half {
  DeviceBuffer buffer;
  const int32_t* base[4] = {};
  bool uploaded = false;
};

struct BlockMaskDeviceCopy::State {
  std::mutex mutex;
  Key key{};
  Half forward, backward; // kv-major, q-major
  int uploads = 0;
};

namespace {

void upload(Half& half, const std::vector<int32_t>* const (&parts)[4], const BlockMask& mask,
            const char* which) {
  size_t total = 0;
  for (const auto* p : parts)
    total += p->size() * sizeof(int32_t);
  half.buffer = DeviceBuffer(); // free the old copy before asking what is free
  require_device_memory(fmt::format("flex_attention: the device copy of a [{}, {}, {}, {}] block "
                                    "mask's {} arrays",
                                    mask.B, mask.H, mask.q_len, mask.kv_len, which),
                        static_cast<int64_t>(total));
  half.buffer = DeviceBuffer(std::max<size_t>(total, sizeof(int32_t)));
  size_t offset = 0;
  for (int i = 0; i < 4; ++i) {
    const size_t bytes = parts[i]->size() * sizeof(int32_t);
    half.buffer.upload(parts[i]->data(), bytes, offset);
    half.base[i] =
        reinterpret_cast<const int32_t*>(static_cast<const char*>(half.buffer.data()) + offset);
    offset += bytes;
  }
  // A pageable upload may still be in flight when cuMemcpyHtoD returns; a
  // kernel on a non-blocking stream must not read it early.
  cuda::check(cuda::driver().cuCtxSynchronize(), "cuCtxSynchronize");
  half.uploaded = true;
}

} // namespace

BlockMaskDeviceCopy::BlockMaskDeviceCopy() : state_(std::make_shared<State>()) {}
BlockMaskDeviceCopy::BlockMaskDeviceCopy(const BlockMaskDeviceCopy&)
    : state_(std::make_shared<State>()) {}
BlockMaskDeviceCopy& BlockMaskDeviceCopy::operator=(const BlockMaskDeviceCopy& other) {
  if (this != &other)
    reset();
  return *this;
}
BlockMaskDeviceCopy::~BlockMaskDeviceCopy() = default;

void BlockMaskDeviceCopy::reset() {
  state_ = std::make_shared<State>();
}

int device_copy_uploads(const BlockMask& mask) {
  BlockMaskDeviceCopy::State* s = mask.device_copy.state();
  if (!s)
    return 0;
  std::lock_guard lock(s->mutex);
  return s->uploads;
}

BlockMaskDeviceArrays device_arrays(const BlockMask& mask, bool backward) {
  const CUcontext ctx = cuda::ensure_context();
  if (!mask.device_copy.state()) // moved from
    const_cast<BlockMaskDeviceCopy&>(mask.device_copy).reset();
  BlockMaskDeviceCopy::State& s = *mask.device_copy.state();
  std::lock_guard lock(s.mutex);
  const Key key{ctx,
                mask.kv_num_blocks.data(),
                mask.kv_indices.data(),
                mask.full_kv_num_blocks.data(),
                mask.full_kv_indices.data(),
                mask.kv_num_blocks.size(),
                mask.kv_indices.size()};
  if (s.key != key) {
    s.forward = Half();
    s.backward = Half();
    s.key = key;
  }
  if (!s.forward.uploaded) {
    upload(s.forward,
           {&mask.kv_num_blocks, &mask.kv_indices, &mask.full_kv_num_blocks, &mask.full_kv_indices},
           mask, "forward");
    ++s.uploads;
  }
  if (backward && !s.backward.uploaded) {
    upload(s.backward,
           {&mask.q_num_blocks, &mask.q_indices, &mask.full_q_num_blocks, &mask.full_q_indices},
           mask, "q-major (backward)");
    ++s.uploads;
  }
  const auto& f = s.forward.base;
  const auto& g = s.backward.base; // null until the backward asked
  return {f[0], f[1], f[2], f[3], g[0], g[1], g[2], g[3]};
}

} // namespace flexjit
