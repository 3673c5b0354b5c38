// Internal to the runtime and above: device memory that a call's kernels use as scratch and
// the next call reuses, one Workspace per thread and use (thread_local), so that a call
// allocates nothing once the workspace has grown.
#pragma once

#include <cstddef>
#include <vector>

#include "flexjit/runtime/Runtime.h"

namespace flexjit {

// A grow-only device buffer. get(bytes) returns at least `bytes` of device memory in the
// current context; when it must grow, it doubles (at least kMinBytes). The buffers it
// outgrows are retired, never freed: a CUDA graph captured with one still writes there, and
// no call pays for cuMemFree, which synchronizes the device. They total less than the current
// one. A caller that reuses the memory must order its kernels after the previous call's (one
// stream, or a synchronization).
class Workspace {
public:
  static constexpr size_t kMinBytes = size_t{1} << 16;

  void* get(size_t bytes);
  // The bytes the current buffer holds: what get can return without allocating.
  size_t capacity() const { return current_.bytes(); }
  // Frees the current buffer and the retired ones, and forgets their sizes (the next get
  // allocates what it is asked, not twice the last): only for a caller that knows no kernel
  // uses them any more and no graph captured them.
  void release();

private:
  DeviceBuffer current_;
  std::vector<DeviceBuffer> retired_;
};

} // namespace flexjit
