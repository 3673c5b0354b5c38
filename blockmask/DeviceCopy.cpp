// BlockMask's device copy: the kv-major index arrays in one device buffer, uploaded on
// the forward's first use, and the q-major ones in another, on the backward's, once per
// (mask, context); re-uploaded only when the host arrays were reallocated (their addresses
// and sizes are the copy's key).
#include <algorithm>
#include <mutex>
#include <numeric>
#include <tuple>

#include "flexjit/blockmask/DeviceCopy.h"
#include "flexjit/blockmask/Memory.h"
#include "flexjit/runtime/Context.h"
#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/Runtime.h"
#include "flexjit/support/Error.h"

namespace flexjit {

using Key =
    std::tuple<CUcontext, const void*, const void*, const void*, const void*, size_t, size_t, int>;

// One direction's arrays (counts, indices, full counts, full indices; the forward's q-tile
// order) in one buffer.
struct Half {
  static constexpr size_t kMaxParts = 5;
  DeviceBuffer buffer;
  const int32_t* base[kMaxParts] = {};
  bool uploaded = false;
};

struct BlockMaskDeviceCopy::State {
  std::mutex mutex;
  Key key{};
  Half forward, backward; // kv-major, q-major
  int uploads = 0;
};

namespace {

template <size_t N>
void upload(Half& half, const std::vector<int32_t>* const (&parts)[N], const BlockMask& mask,
            const char* which) {
  static_assert(N <= Half::kMaxParts);
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
  for (size_t i = 0; i < N; ++i) {
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

std::vector<int32_t> heaviest_q_tiles_first(const BlockMask& mask, int q_tile_rows) {
  FLEXJIT_ASSERT(q_tile_rows > 0 && mask.q_block % q_tile_rows == 0,
                 "q tiles of {} rows in q blocks of {}", q_tile_rows, mask.q_block);
  const int sub = mask.q_block / q_tile_rows;
  const int tiles = (mask.q_len + q_tile_rows - 1) / q_tile_rows;
  std::vector<int64_t> work(static_cast<size_t>(mask.num_q_blocks), 0);
  for (size_t row = 0; row < mask.kv_num_blocks.size(); ++row) {
    const size_t qb = row % static_cast<size_t>(mask.num_q_blocks);
    work[qb] += mask.kv_num_blocks[row] +
                (mask.full_kv_num_blocks.empty() ? 0 : mask.full_kv_num_blocks[row]);
  }
  std::vector<int32_t> order(static_cast<size_t>(tiles));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    const int64_t wa = work[static_cast<size_t>(a / sub)], wb = work[static_cast<size_t>(b / sub)];
    return wa != wb ? wa > wb : a > b;
  });
  return order;
}

BlockMaskDeviceCopy::BlockMaskDeviceCopy() : state_(std::make_shared<State>()) {}
BlockMaskDeviceCopy::BlockMaskDeviceCopy(const BlockMaskDeviceCopy& other)
    : state_(std::make_shared<State>()), resident_(other.resident_) {}
BlockMaskDeviceCopy& BlockMaskDeviceCopy::operator=(const BlockMaskDeviceCopy& other) {
  if (this != &other) {
    reset();
    resident_ = other.resident_;
  }
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

bool BlockMask::arrays_on_device_only() const {
  return device_copy.resident() &&
         kv_num_blocks.size() != static_cast<size_t>(B) * H * static_cast<size_t>(num_q_blocks);
}

void BlockMask::download_arrays() {
  if (!arrays_on_device_only())
    return;
  const BlockMaskDeviceCopy::Resident& r = *device_copy.resident();
  cuda::ensure_context();
  const size_t planes = static_cast<size_t>(B) * H, nq = static_cast<size_t>(num_q_blocks),
               nkv = static_cast<size_t>(num_kv_blocks);
  auto get = [&](std::vector<int32_t>& to, const int32_t* from, size_t n) {
    to.resize(n);
    cuda::check(cuda::driver().cuMemcpyDtoH(to.data(), reinterpret_cast<CUdeviceptr>(from),
                                            n * sizeof(int32_t)),
                "cuMemcpyDtoH");
  };
  get(kv_num_blocks, r.arrays.kv_num_blocks, planes * nq);
  get(kv_indices, r.arrays.kv_indices, planes * nq * nkv);
  get(full_kv_num_blocks, r.arrays.full_kv_num_blocks, planes * nq);
  get(full_kv_indices, r.arrays.full_kv_indices, planes * nq * nkv);
  get(q_num_blocks, r.arrays.q_num_blocks, planes * nkv);
  get(q_indices, r.arrays.q_indices, planes * nkv * nq);
  get(full_q_num_blocks, r.arrays.full_q_num_blocks, planes * nkv);
  get(full_q_indices, r.arrays.full_q_indices, planes * nkv * nq);
}

BlockMaskDeviceArrays device_arrays(const BlockMask& mask, bool backward, int q_tile_rows) {
  const CUcontext ctx = cuda::ensure_context();
  if (mask.arrays_on_device_only()) {
    const BlockMaskDeviceCopy::Resident& r = *mask.device_copy.resident();
    if (r.context != ctx)
      fail("flex_attention: the block mask's index arrays live in the device memory of another "
           "CUDA context (built there with host_arrays false); call download_arrays() on it "
           "first");
    BlockMaskDeviceArrays a = r.arrays;
    if (r.q_tile_rows != q_tile_rows)
      a.q_tile_order = nullptr;
    if (!backward)
      a.q_num_blocks = a.q_indices = a.full_q_num_blocks = a.full_q_indices = nullptr;
    return a;
  }
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
                mask.kv_indices.size(),
                q_tile_rows};
  if (s.key != key) {
    s.forward = Half();
    s.backward = Half();
    s.key = key;
  }
  if (!s.forward.uploaded) {
    // A q_block finer than the tiles (the backward's 64) has no forward order: null.
    const std::vector<int32_t> order = mask.q_block % q_tile_rows == 0
                                           ? heaviest_q_tiles_first(mask, q_tile_rows)
                                           : std::vector<int32_t>();
    upload(s.forward,
           {&mask.kv_num_blocks, &mask.kv_indices, &mask.full_kv_num_blocks, &mask.full_kv_indices,
            &order},
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
  const bool ordered = mask.q_block % q_tile_rows == 0;
  return {f[0], f[1], f[2], f[3], g[0], g[1], g[2], g[3], ordered ? f[4] : nullptr};
}

} // namespace flexjit
