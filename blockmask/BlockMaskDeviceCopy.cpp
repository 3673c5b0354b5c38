// BlockMask's device copy: the index arrays (kv-major for the forward, q-major for the
// backward) in one device buffer,
// uploaded once per (mask, context) and re-uploaded only when the host arrays
// were reallocated (their addresses and sizes are the copy's key).
#include <mutex>
#include <tuple>

#include "blockmask/BlockMask.h"
#include "blockmask/Memory.h"
#include "dsl/Error.h"
#include "runtime/Context.h"
#include "runtime/CudaDriver.h"
#include "runtime/Runtime.h"

namespace flexjit {

using Key =
    std::tuple<CUcontext, const void*, const void*, const void*, const void*, size_t, size_t>;

struct BlockMaskDeviceCopy::State {
  std::mutex mutex;
  Key key{};
  DeviceBuffer buffer;
  Arrays arrays;
  int uploads = 0;
};

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

int BlockMaskDeviceCopy::uploads() const {
  if (!state_)
    return 0;
  std::lock_guard lock(state_->mutex);
  return state_->uploads;
}

BlockMaskDeviceCopy::Arrays BlockMaskDeviceCopy::get(const BlockMask& mask) const {
  const CUcontext ctx = cuda::ensure_context();
  if (!state_) // moved from
    const_cast<BlockMaskDeviceCopy*>(this)->reset();
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  const Key key{ctx,
                mask.kv_num_blocks.data(),
                mask.kv_indices.data(),
                mask.full_kv_num_blocks.data(),
                mask.full_kv_indices.data(),
                mask.kv_num_blocks.size(),
                mask.kv_indices.size()};
  if (s.uploads > 0 && s.key == key)
    return s.arrays;
  const std::vector<int32_t>* parts[] = {
      &mask.kv_num_blocks, &mask.kv_indices, &mask.full_kv_num_blocks, &mask.full_kv_indices,
      &mask.q_num_blocks,  &mask.q_indices,  &mask.full_q_num_blocks,  &mask.full_q_indices};
  size_t total = 0;
  for (const auto* p : parts)
    total += p->size() * sizeof(int32_t);
  s.buffer = DeviceBuffer(); // free the old copy before asking what is free
  require_device_memory(fmt::format("flex_attention: the device copy of a [{}, {}, {}, {}] block "
                                    "mask's forward arrays",
                                    mask.B, mask.H, mask.q_len, mask.kv_len),
                        static_cast<int64_t>(total));
  s.buffer = DeviceBuffer(std::max<size_t>(total, sizeof(int32_t)));
  const int32_t* base[8];
  size_t offset = 0;
  for (int i = 0; i < 8; ++i) {
    const size_t bytes = parts[i]->size() * sizeof(int32_t);
    s.buffer.upload(parts[i]->data(), bytes, offset);
    base[i] = reinterpret_cast<const int32_t*>(static_cast<const char*>(s.buffer.data()) + offset);
    offset += bytes;
  }
  // A pageable upload may still be in flight when cuMemcpyHtoD returns; a
  // kernel on a non-blocking stream must not read it early.
  cuda::check(cuda::driver().cuCtxSynchronize(), "cuCtxSynchronize");
  s.arrays = {base[0], base[1], base[2], base[3], base[4], base[5], base[6], base[7]};
  s.key = key;
  ++s.uploads;
  return s.arrays;
}

} // namespace flexjit
