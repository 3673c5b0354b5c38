// Device copies of the host buffers some mods read, and the bindings that point
// the mods at them: to run mods written against host data on the GPU.
#pragma once

#include <vector>

#include "flexjit/compiler/Signature.h"
#include "flexjit/runtime/Runtime.h"

namespace flexjit {

struct DeviceBindings {
  std::vector<DeviceBuffer> storage; // owns the copies
  Bindings bindings;                 // every buffer bound to its device copy; params kept
};

// For every buffer the mods read (resolved from `host`, else the captured
// data): a device copy of the memory its view spans, bound under its name with
// the same sizes and strides. Buffers already in device memory are bound as they are.
DeviceBindings to_device(const std::vector<Expr>& mod_bodies, const Bindings& host = {});

} // namespace flexjit
