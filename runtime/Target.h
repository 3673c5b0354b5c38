// Internal to the runtime and above: what flexjit compiles for on a device, resolved
// once per device and passed explicitly to everything that picks or builds a kernel.
#pragma once

#include <cuda.h>

#include <string>

#include "flexjit/codegen/Codegen.h"

namespace flexjit {

struct Target {
  CUdevice device = 0;
  int major = 0, minor = 0; // compute capability
  int driver_version = 0;   // cuDriverGetVersion, e.g. 13000
  Arch arch = Arch::SM80;   // the kernels' arch: the device's, or FLEXJIT_ARCH's
  int sm_count = 1;         // multiprocessors (a persistent grid's CTAs)
  int64_t l2_bytes = 0;     // the L2 cache's size
  // The device part of a kernel's cache key: the cubin is the driver's ptxas output
  // for this compute capability.
  std::string key_text() const;
};

// The arch flexjit compiles for on a device of compute capability major.minor: sm_90a
// on 9.0, sm_80 PTX (JIT-compiled by the driver) on any other >= 8.0; Error below 8.0.
// `forced` is the environment variable FLEXJIT_ARCH (null or empty: unset): "sm_80"
// runs the sm_80 kernels on any device that can (how they are tested on Hopper);
// anything else is an Error.
Arch target_arch(int major, int minor, const char* forced = nullptr);

// The target of the current context's device (cuda::ensure_context first), resolved
// on the first call for that device. Throws Error when CUDA is not available.
const Target& current_target();

} // namespace flexjit
