// Internal to the runtime and above: JIT kernels loaded into the current context, built
// at most once per key (memory), kept across processes as cubins (disk).
#pragma once

#include <cuda.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "flexjit/codegen/Variants.h"
#include "flexjit/compiler/PreparedMods.h"
#include "flexjit/runtime/Target.h"

namespace flexjit {

// A kernel whose ptxas build spills more than this many bytes (stores + loads, spill_bytes)
// at the template's launch bounds is replaced by its one-CTA-per-SM build, where the variant
// table gives it one (KernelVariant::one_cta_build: the sm_90a v2 forward, whose template
// asks for two CTAs per SM).
inline constexpr int kMaxSpillBytes = 64;

// The spill stores plus spill loads a ptxas log (ptxas -v, or the JIT's verbose info log)
// reports, over every function (codegen/PtxasLog.h reads it).
int spill_bytes(const std::string& ptxas_log);

namespace cuda {

// A kernel's launches that may not have finished: per stream (by cuStreamGetId, which no
// other stream ever gets), an event recorded after its latest launch there. `pinned`: a
// launch was captured into a CUDA graph, which may replay it at any time, so the kernel
// stays loaded until exit.
struct LaunchFences {
  std::mutex mutex;
  std::vector<std::pair<unsigned long long, CUevent>> events;
  std::atomic<bool> pinned{false};
};

// A loaded module and what a launch needs from it. Its module is unloaded after the last
// reference goes (the memory cache evicted it and no call holds it) and every launch it
// recorded has finished: the destructor hands module and events to the retired list,
// which a later kernel-cache miss sweeps.
struct LoadedKernel {
  std::string key;                        // the disk cache key (hash)
  const KernelVariant* variant = nullptr; // its row of the variant table
  CUcontext context = nullptr;            // the module's
  CUmodule module = nullptr;
  CUfunction function = nullptr; // variant->main
  CUfunction companions[2] = {}; // variant->companions, in table order
  int registers = 0;
  int local_bytes = 0;     // per-thread local memory: spills when nonzero
  int64_t image_bytes = 0; // the cubin (or PTX) the module was loaded from: its cache cost
  std::vector<std::string> warnings;
  mutable LaunchFences fences;

  LoadedKernel() = default;
  LoadedKernel(const LoadedKernel&) = delete;
  LoadedKernel& operator=(const LoadedKernel&) = delete;
  ~LoadedKernel();

  const char* entry() const { return variant->main.entry; }
  CUfunction companion(CompanionRole role) const;
};

// Queues kernel k's main entry, or its companion of `role`, on `stream` with the grid its
// shape's rule gives for `sizes`, and records the launch in k.fences (an Error names the
// entry). Every launch of a cached kernel goes through here.
void launch(const LoadedKernel& k, const LaunchSizes& sizes, CUstream stream, void** args);
void launch(const LoadedKernel& k, CompanionRole role, const LaunchSizes& sizes, CUstream stream,
            void** args);

// The kernel of `variant` with `mods` for `target` (the current context's device:
// current_target()), from memory (least recently used kernels past the memory limit,
// kernel_memory_cache_limit(), are evicted), disk or a build. It is shared by every pair of mods
// with the same key, which holds the signature's slots but not the params' defaults or the buffers'
// captured data: a call packs its FlexjitModArgs from its own PreparedMods (same slots), never from
// a kernel's. The target's arch must run the variant's. Dynamic shared memory limits are raised as
// the table says. Thread-safe; concurrent requests for one kernel wait for a single build.
std::shared_ptr<const LoadedKernel> get_kernel(const Target& target, const KernelVariant& variant,
                                               const PreparedMods& mods);

} // namespace cuda
} // namespace flexjit
