#include "flexjit/runtime/Context.h"

#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/Runtime.h"
#include "flexjit/support/Error.h"

namespace flexjit {

bool cuda_available() {
  return cuda::available();
}

std::string cuda_unavailable_reason() {
  return cuda::unavailable_reason();
}

void Stream::synchronize() const {
  cuda::ensure_context();
  cuda::check(cuda::driver().cuStreamSynchronize(static_cast<CUstream>(handle)),
              "cuStreamSynchronize");
}

namespace cuda {

CUcontext ensure_context() {
  const Driver& d = driver();
  CUcontext current = nullptr;
  check(d.cuCtxGetCurrent(&current), "cuCtxGetCurrent");
  if (current)
    return current;
  // Retained once and never released: kernels and buffers live in it until exit.
  static CUcontext primary = [&] {
    CUdevice device = 0;
    check(d.cuDeviceGet(&device, 0), "cuDeviceGet(0)");
    CUcontext ctx = nullptr;
    check(d.cuDevicePrimaryCtxRetain(&ctx, device), "cuDevicePrimaryCtxRetain");
    return ctx;
  }();
  check(d.cuCtxSetCurrent(primary), "cuCtxSetCurrent");
  return primary;
}

} // namespace cuda
} // namespace flexjit
