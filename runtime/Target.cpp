#include "flexjit/runtime/Target.h"

#include <fmt/format.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string_view>

#include "flexjit/runtime/Context.h"
#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/support/Error.h"

namespace flexjit {

std::string Target::key_text() const {
  return fmt::format("device sm_{}{}\ndriver {}\n", major, minor, driver_version);
}

Arch target_arch(int major, int minor, const char* forced) {
  if (major < 8)
    fail("compute capability {}.{} is not supported: flexjit kernels need 8.0 (Ampere) or "
         "newer",
         major, minor);
  const Arch native = major == 9 && minor == 0 ? Arch::SM90a : Arch::SM80;
  if (!forced || !*forced)
    return native;
  if (std::string_view(forced) != "sm_80")
    fail("FLEXJIT_ARCH={} is not supported; expected sm_80 (or unset)", forced);
  return Arch::SM80;
}

const Target& current_target() {
  cuda::ensure_context();
  const cuda::Driver& d = cuda::driver();
  CUdevice device = 0;
  cuda::check(d.cuCtxGetDevice(&device), "cuCtxGetDevice");
  static std::mutex mutex;
  static auto* targets = new std::map<CUdevice, Target>; // never destroyed
  std::lock_guard lock(mutex);
  if (auto it = targets->find(device); it != targets->end())
    return it->second;
  Target t;
  t.device = device;
  cuda::check(
      d.cuDeviceGetAttribute(&t.major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
      "cuDeviceGetAttribute(compute capability major)");
  cuda::check(
      d.cuDeviceGetAttribute(&t.minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
      "cuDeviceGetAttribute(compute capability minor)");
  cuda::check(d.cuDeviceGetAttribute(&t.sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device),
              "cuDeviceGetAttribute(multiprocessor count)");
  int l2 = 0;
  cuda::check(d.cuDeviceGetAttribute(&l2, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, device),
              "cuDeviceGetAttribute(L2 cache size)");
  t.l2_bytes = l2;
  cuda::check(d.cuDriverGetVersion(&t.driver_version), "cuDriverGetVersion");
  t.arch = target_arch(t.major, t.minor, std::getenv("FLEXJIT_ARCH")); // throws: not stored
  return targets->emplace(device, t).first->second;
}

} // namespace flexjit
