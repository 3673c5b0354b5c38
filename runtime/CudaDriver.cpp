#include "flexjit/runtime/CudaDriver.h"

#include <dlfcn.h>

#include <mutex>

#include "flexjit/support/Error.h"

namespace flexjit::cuda {

namespace {

struct Loaded {
  Driver driver;
  bool ok = false;
  std::string reason;
};

// Loads once; a failure is remembered (with its reason) rather than thrown.
const Loaded& loaded() {
  static Loaded state = [] {
    Loaded s;
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
      lib = dlopen("libcuda.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      s.reason = "libcuda.so.1 could not be loaded (no NVIDIA driver on this machine)";
      return s;
    }
#define FLEXJIT_CUDA_LOAD(name, symbol)                                                            \
  s.driver.name = reinterpret_cast<decltype(&::name)>(dlsym(lib, symbol));                         \
  if (!s.driver.name) {                                                                            \
    s.reason = "libcuda lacks " symbol " (driver too old)";                                        \
    return s;                                                                                      \
  }
    FLEXJIT_CUDA_FUNCTIONS(FLEXJIT_CUDA_LOAD)
#undef FLEXJIT_CUDA_LOAD
    if (CUresult r = s.driver.cuInit(0); r != CUDA_SUCCESS) {
      const char* name = "?";
      s.driver.cuGetErrorName(r, &name);
      s.reason = std::string("cuInit failed: ") + name;
      return s;
    }
    int count = 0;
    if (s.driver.cuDeviceGetCount(&count) != CUDA_SUCCESS || count == 0) {
      s.reason = "no CUDA device found";
      return s;
    }
    s.ok = true;
    return s;
  }();
  return state;
}

} // namespace

bool available() {
  return loaded().ok;
}

std::string unavailable_reason() {
  return loaded().ok ? std::string() : loaded().reason;
}

const Driver& driver() {
  const Loaded& s = loaded();
  if (!s.ok)
    fail("CUDA is not available: {}", s.reason);
  return s.driver;
}

void check(CUresult result, const char* what) {
  if (result == CUDA_SUCCESS)
    return;
  const Driver& d = loaded().driver;
  const char* name = "CUDA_ERROR_UNKNOWN";
  const char* message = "unknown error";
  if (d.cuGetErrorName)
    d.cuGetErrorName(result, &name);
  if (d.cuGetErrorString)
    d.cuGetErrorString(result, &message);
  fail("{} failed: {}: {}", what, name, message);
}

} // namespace flexjit::cuda
