#include <algorithm>

#include "flexjit/codegen/PackArgs.h"
#include "flexjit/support/Error.h"

namespace flexjit {

FlexjitModArgs pack_mod_args(const ModSignature& sig, const ResolvedArgs& args,
                             uint32_t* device_error) {
  FLEXJIT_ASSERT(args.buffers.size() == sig.buffers.size() &&
                     args.int_params.size() == sig.int_params.size() &&
                     args.float_params.size() == sig.float_params.size(),
                 "resolved args do not match the signature {}", sig.to_string());
  FlexjitModArgs packed{}; // unused slots stay zero
  for (size_t i = 0; i < args.buffers.size(); ++i) {
    const TensorView& view = args.buffers[i];
    FLEXJIT_ASSERT(view.rank >= 0 && view.rank <= FLEXJIT_MAX_RANK, "buffer '{}' has rank {}",
                   sig.buffers[i]->name, view.rank);
    FlexjitBufferArg& slot = packed.buffers[i];
    slot.data = view.data;
    std::copy_n(view.sizes.begin(), view.rank, slot.sizes);
    std::copy_n(view.strides.begin(), view.rank, slot.strides);
  }
  std::copy(args.int_params.begin(), args.int_params.end(), packed.int_params);
  std::copy(args.float_params.begin(), args.float_params.end(), packed.float_params);
  packed.device_error = device_error;
  return packed;
}

} // namespace flexjit
