#include <utility>

#include "flexjit/runtime/Context.h"
#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/Runtime.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

CUdeviceptr ptr(const void* p) {
  return reinterpret_cast<CUdeviceptr>(p);
}

void check_range(const char* what, size_t offset, size_t bytes, size_t capacity) {
  if (offset > capacity || bytes > capacity - offset)
    fail("DeviceBuffer::{}: {} bytes at offset {} do not fit in a buffer of {} bytes", what, bytes,
         offset, capacity);
}

} // namespace

DeviceMemoryInfo device_memory_info() {
  cuda::ensure_context();
  DeviceMemoryInfo info;
  cuda::check(cuda::driver().cuMemGetInfo(&info.free_bytes, &info.total_bytes), "cuMemGetInfo");
  return info;
}

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  cuda::ensure_context();
  if (bytes == 0)
    return;
  CUdeviceptr p = 0;
  cuda::check(cuda::driver().cuMemAlloc(&p, bytes),
              fmt::format("cuMemAlloc of {} bytes", bytes).c_str());
  data_ = reinterpret_cast<void*>(p);
}

DeviceBuffer::~DeviceBuffer() {
  if (data_)
    cuda::driver().cuMemFree(ptr(data_)); // nothing to do about a failure here
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    DeviceBuffer old(std::move(*this));
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::upload(const void* host, size_t bytes, size_t offset) {
  check_range("upload", offset, bytes, bytes_);
  if (bytes == 0)
    return;
  cuda::ensure_context();
  cuda::check(cuda::driver().cuMemcpyHtoD(ptr(data_) + offset, host, bytes), "cuMemcpyHtoD");
}

void DeviceBuffer::download(void* host, size_t bytes, size_t offset) const {
  check_range("download", offset, bytes, bytes_);
  if (bytes == 0)
    return;
  cuda::ensure_context();
  cuda::check(cuda::driver().cuMemcpyDtoH(host, ptr(data_) + offset, bytes), "cuMemcpyDtoH");
}

void DeviceBuffer::fill(uint8_t value) {
  if (bytes_ == 0)
    return;
  cuda::ensure_context();
  cuda::check(cuda::driver().cuMemsetD8(ptr(data_), value, bytes_), "cuMemsetD8");
}

TensorView DeviceBuffer::view(DType dtype, std::initializer_list<int64_t> sizes) const {
  TensorView v = TensorView::contiguous(data_, dtype, sizes, Device::Cuda);
  const int64_t needed = v.numel() * dtype_size(dtype);
  if (needed > static_cast<int64_t>(bytes_))
    fail("DeviceBuffer::view: {} bytes of {} do not fit in a buffer of {} bytes", needed,
         to_string(dtype), bytes_);
  return v;
}

TensorView DeviceBuffer::view(DType dtype, std::initializer_list<int64_t> sizes,
                              std::initializer_list<int64_t> strides) const {
  if (sizes.size() != strides.size() || sizes.size() > static_cast<size_t>(kMaxRank))
    fail("DeviceBuffer::view: {} sizes and {} strides (expected equal counts, at most {})",
         sizes.size(), strides.size(), kMaxRank);
  TensorView v;
  v.data = data_;
  v.dtype = dtype;
  v.device = Device::Cuda;
  v.rank = static_cast<int>(sizes.size());
  std::copy(sizes.begin(), sizes.end(), v.sizes.begin());
  std::copy(strides.begin(), strides.end(), v.strides.begin());
  int64_t last = 0; // the largest element offset the view reaches
  for (int i = 0; i < v.rank; ++i) {
    if (v.sizes[i] <= 0)
      return v;
    if (v.strides[i] < 0)
      fail("DeviceBuffer::view: negative stride {} in dimension {}", v.strides[i], i);
    last += (v.sizes[i] - 1) * v.strides[i];
  }
  const int64_t needed = (last + 1) * dtype_size(dtype);
  if (needed > static_cast<int64_t>(bytes_))
    fail("DeviceBuffer::view: the strided view reaches {} bytes, the buffer has {}", needed,
         bytes_);
  return v;
}

} // namespace flexjit
