// Internal to the runtime: JIT kernels loaded into the current context, built
// at most once per key (memory), kept across processes as cubins (disk).
#pragma once

#include <cuda.h>

#include <memory>
#include <string>
#include <vector>

#include "codegen/Codegen.h"

namespace flexjit::cuda {

struct LoadedKernel {
  std::string key;        // the disk cache key (hash)
  std::string entry;      // kernel name
  Arch arch = Arch::SM80; // what it was compiled for (the device's)
  CUmodule module = nullptr;
  CUfunction function = nullptr;
  ModSignature signature; // slot layout of its FlexjitModArgs
  int registers = 0;
  int local_bytes = 0; // per-thread local memory: spills when nonzero
  // The module's other kernels the entry comes with (attention backward: entry_pre,
  // entry_dq), in that order.
  std::vector<CUfunction> companions;
  std::vector<std::string> warnings;
};

// The kernel for `spec` on the current context's device; spec.arch is
// replaced by the device's (arch_for_compute_capability). Attention kernels
// get their dynamic shared memory limit raised. Thread-safe; concurrent
// requests for one kernel wait for a single build.
std::shared_ptr<const LoadedKernel> get_kernel(KernelSpec spec);

} // namespace flexjit::cuda
