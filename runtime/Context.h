// Internal to the runtime: the CUDA context flexjit works in and its device.
#pragma once

#include <cuda.h>

#include "codegen/Codegen.h"

namespace flexjit::cuda {

// Makes sure this thread has a current context: the caller's if one is
// current, else device 0's primary context (retained once per process).
// Returns it. Throws Error when CUDA is not available.
CUcontext ensure_context();

struct DeviceInfo {
  CUdevice device = 0;
  int major = 0, minor = 0; // compute capability
  int driver_version = 0;   // cuDriverGetVersion, e.g. 12040
  Arch arch = Arch::SM80;   // what flexjit compiles for on it
};
// The device of the current context (ensure_context first).
const DeviceInfo& current_device();

} // namespace flexjit::cuda
