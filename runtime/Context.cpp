#include "runtime/Context.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <string_view>

#include "dsl/Error.h"
#include "runtime/CudaDriver.h"
#include "runtime/Runtime.h"

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

const DeviceInfo& current_device() {
  const Driver& d = driver();
  CUdevice device = 0;
  check(d.cuCtxGetDevice(&device), "cuCtxGetDevice");
  static std::mutex mutex;
  static std::map<CUdevice, DeviceInfo> infos;
  std::lock_guard lock(mutex);
  auto [it, inserted] = infos.try_emplace(device);
  if (inserted) {
    DeviceInfo& info = it->second;
    info.device = device;
    check(d.cuDeviceGetAttribute(&info.major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
          "cuDeviceGetAttribute(compute capability major)");
    check(d.cuDeviceGetAttribute(&info.minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
          "cuDeviceGetAttribute(compute capability minor)");
    check(d.cuDriverGetVersion(&info.driver_version), "cuDriverGetVersion");
    try {
      // FLEXJIT_ARCH=sm_80: the sm_80 kernels (PTX the driver JITs) on a newer GPU.
      info.arch = arch_for_device(info.major, info.minor, std::getenv("FLEXJIT_ARCH"));
    } catch (...) {
      infos.erase(it);
      throw;
    }
  }
  return it->second;
}

} // namespace cuda
} // namespace flexjit
