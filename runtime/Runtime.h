// The GPU runtime's public face, without cuda.h: device discovery, streams and
// device buffers as opaque handles, and the kernel cache's counters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "flexjit/dsl/Types.h"

namespace flexjit {

// True when libcuda loads, a device exists and cuInit succeeds. Never throws.
bool cuda_available();
// Why cuda_available() is false (empty when it is true).
std::string cuda_unavailable_reason();

// A CUstream as an opaque pointer; the default (null) is the legacy default
// stream. flexjit never creates or destroys the caller's stream.
struct Stream {
  void* handle = nullptr;
  // Waits for everything queued on the stream.
  void synchronize() const;
};

// Average milliseconds per run of `work` (which queues GPU work on `stream`),
// over `reps` runs, measured with CUDA events recorded on the stream.
double time_on_stream(const Stream& stream, const std::function<void()>& work, int reps = 10);

// An owning cuMemAlloc allocation in the current context (device 0's primary
// context unless the caller made one current). Move-only.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

  // Synchronous copies of `bytes` bytes (Error if more than bytes()).
  void upload(const void* host, size_t bytes, size_t offset = 0);
  void download(void* host, size_t bytes, size_t offset = 0) const;
  // Sets every byte to `value`.
  void fill(uint8_t value);
  // A contiguous Device::Cuda view of the buffer (Error if it does not fit).
  TensorView view(DType dtype, std::initializer_list<int64_t> sizes) const;
  // A view with explicit strides in elements (Error if its extent does not fit).
  TensorView view(DType dtype, std::initializer_list<int64_t> sizes,
                  std::initializer_list<int64_t> strides) const;

private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Free and total bytes of the current context's device (cuMemGetInfo; device 0's
// primary context unless the caller made one current). Needs CUDA.
struct DeviceMemoryInfo {
  size_t free_bytes = 0;
  size_t total_bytes = 0;
};
DeviceMemoryInfo device_memory_info();

// The JIT kernel cache's counters, process-wide: a kernel compiled from the
// mods (DSL -> PTX -> cubin), loaded from a cubin on disk, or found loaded in
// memory; kernels the memory limit evicted, and modules unloaded (evicted or cleared
// kernels, once no launch of theirs can still run).
struct KernelCacheStats {
  uint64_t compiles = 0;
  uint64_t disk_hits = 0;
  uint64_t memory_hits = 0;
  uint64_t evictions = 0;
  uint64_t unloads = 0;
};
KernelCacheStats kernel_cache_stats();
// Forgets the loaded kernels, so the next request goes to disk: for tests and
// benchmarks. Their modules are unloaded when their launches have finished and no call
// holds them (a later miss sweeps them); a kernel a CUDA graph captured stays loaded.
void clear_kernel_memory_cache();

// The memory cache's limit: the bytes of the images (cubins, or PTX) its loaded kernels
// came from -- about their code's size in device memory. Past it, the least recently used
// kernels are evicted after each load (the newest always stays; a kernel launched inside
// a CUDA graph capture stays until exit). The default: FLEXJIT_MEMORY_CACHE_MAX_BYTES
// (bytes, or with a K, M or G suffix), else kDefaultMemoryCacheMaxBytes; Error for a
// value that is not such a size.
inline constexpr int64_t kDefaultMemoryCacheMaxBytes = int64_t{256} << 20;
int64_t kernel_memory_cache_limit();
// Sets the limit (Error unless bytes > 0); evicts down to it at the next load.
void set_kernel_memory_cache_limit(int64_t bytes);
// The bytes the memory cache holds now (the images of its loaded kernels).
int64_t kernel_memory_cache_bytes();
// Where the kernel cache's disk part lives ("" when disabled), from
// FLEXJIT_CACHE_DIR, XDG_CACHE_HOME or ~/.cache/flexjit; FLEXJIT_CACHE=0 disables.
std::string kernel_cache_directory();
// Every warning a loaded kernel carried (e.g. register spills), in load order;
// each is also printed to stderr once, as "flexjit warning: ...".
std::vector<std::string> kernel_warnings();

// Where one kernel build of the cache spent its time, in milliseconds (for the
// benchmarks' JIT columns). A disk hit has no DSL -> PTX and no PTX -> cubin.
struct KernelBuildTimes {
  std::string entry;          // the kernel's entry point
  bool from_disk = false;     // the cubin came from the disk cache
  double dsl_to_ptx_ms = 0;   // compile_to_ptx: mods -> LLVM IR -> template -> PTX
  double ptx_to_cubin_ms = 0; // the driver's linker (ptxas)
  double load_ms = 0;         // cuModuleLoadData, function attributes, the disk read (hit) or write
};
// Every build (compile or disk load; not memory hits) of this process, in order.
std::vector<KernelBuildTimes> kernel_build_log();

} // namespace flexjit
