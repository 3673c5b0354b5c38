// Internal to the runtime and above: JIT kernels loaded into the current context, built
// at most once per key (memory), kept across processes as cubins (disk).
#pragma once

#include <cuda.h>

#include <memory>
#include <string>
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
// reports, over every function.
int spill_bytes(const std::string& ptxas_log);

namespace cuda {

struct LoadedKernel {
  std::string key;                        // the disk cache key (hash)
  const KernelVariant* variant = nullptr; // its row of the variant table
  CUmodule module = nullptr;
  CUfunction function = nullptr; // variant->main
  CUfunction companions[2] = {}; // variant->companions, in table order
  int registers = 0;
  int local_bytes = 0; // per-thread local memory: spills when nonzero
  std::vector<std::string> warnings;

  const char* entry() const { return variant->main.entry; }
  CUfunction companion(CompanionRole role) const;
};

// The kernel of `variant` with `mods` for `target` (the current context's device:
// current_target()). It is shared by every pair of mods with the same key, which holds the
// signature's slots but not the params' defaults or the buffers' captured data: a call
// packs its FlexjitModArgs from its own PreparedMods (same slots), never from a kernel's.
// The target's arch must run the variant's. Dynamic shared memory limits are raised as the
// table says. Thread-safe; concurrent requests for one kernel wait for a
// single build.
std::shared_ptr<const LoadedKernel> get_kernel(const Target& target, const KernelVariant& variant,
                                               const PreparedMods& mods);

} // namespace cuda
} // namespace flexjit
