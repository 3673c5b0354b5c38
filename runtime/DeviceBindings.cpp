#include "flexjit/runtime/DeviceBindings.h"

#include "flexjit/compiler/Passes.h"

namespace flexjit {

DeviceBindings to_device(const std::vector<Expr>& mod_bodies, const Bindings& host) {
  std::vector<Expr> optimized;
  for (const Expr& body : mod_bodies)
    optimized.push_back(optimize(body));
  const ModSignature sig = ModSignature::of(optimized);
  const ResolvedArgs args = resolve(sig, host);
  DeviceBindings out;
  out.bindings.params = host.params;
  for (size_t i = 0; i < args.buffers.size(); ++i) {
    TensorView view = args.buffers[i];
    if (view.device != Device::Cuda) {
      int64_t last = 0; // the furthest element the view reaches
      bool empty = false;
      for (int d = 0; d < view.rank; ++d) {
        empty = empty || view.sizes[d] <= 0;
        last += (view.sizes[d] - 1) * view.strides[d];
      }
      const size_t bytes = empty ? 0 : static_cast<size_t>(last + 1) * dtype_size(view.dtype);
      DeviceBuffer& copy = out.storage.emplace_back(bytes);
      copy.upload(view.data, bytes);
      view.data = copy.data();
      view.device = Device::Cuda;
    }
    out.bindings.buffers[sig.buffers[i]->name] = view;
  }
  return out;
}

} // namespace flexjit
