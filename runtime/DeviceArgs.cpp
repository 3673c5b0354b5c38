#include "flexjit/runtime/DeviceArgs.h"

#include "flexjit/support/Error.h"

namespace flexjit {

ResolvedArgs resolve_device_args(const ModSignature& sig, const Bindings& bindings,
                                 const char* what) {
  ResolvedArgs args = resolve(sig, bindings);
  for (size_t i = 0; i < args.buffers.size(); ++i) {
    const TensorView& view = args.buffers[i];
    const std::string& name = sig.buffers[i]->name;
    if (!view.data && view.numel() > 0) // an empty view reads nothing: null is fine
      fail("{}: buffer '{}' has no data (a null pointer)", what, name);
    if (view.device != Device::Cuda)
      fail("{}: buffer '{}' is host memory; the GPU kernel needs device memory (bind a "
           "Device::Cuda view, e.g. from DeviceBuffer::view or to_device)",
           what, name);
  }
  return args;
}

} // namespace flexjit
