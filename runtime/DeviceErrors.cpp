#include "flexjit/runtime/DeviceErrors.h"

#include <mutex>

#include "flexjit/runtime/Context.h"
#include "flexjit/runtime/CudaDriver.h"

namespace flexjit::cuda {

namespace {

struct Word {
  uint32_t* host = nullptr;
  uint32_t* device = nullptr;
};

Word& word() {
  static Word w;
  static std::once_flag once;
  std::call_once(once, [] {
    ensure_context();
    void* host = nullptr;
    check(driver().cuMemHostAlloc(&host, sizeof(uint32_t),
                                  CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP),
          "cuMemHostAlloc(device error word)");
    CUdeviceptr device = 0;
    check(driver().cuMemHostGetDevicePointer(&device, host, 0),
          "cuMemHostGetDevicePointer(device error word)");
    w.host = static_cast<uint32_t*>(host);
    *w.host = 0;
    w.device = reinterpret_cast<uint32_t*>(device);
  });
  return w;
}

} // namespace

uint32_t* device_error_word() {
  return word().device;
}

uint32_t take_device_errors() {
  Word& w = word();
  // Every attention call asks: a plain read when nothing was reported (no write to the line
  // the device may be writing), the exchange only to take bits.
  if (__atomic_load_n(w.host, __ATOMIC_ACQUIRE) == 0)
    return 0;
  return __atomic_exchange_n(w.host, 0u, __ATOMIC_ACQ_REL);
}

} // namespace flexjit::cuda
