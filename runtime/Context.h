// Internal to the runtime: the CUDA context flexjit works in and its device.
#pragma once

#include <cuda.h>

namespace flexjit::cuda {

// Makes sure this thread has a current context: the caller's if one is
// current, else device 0's primary context (retained once per process).
// Returns it. Throws Error when CUDA is not available.
CUcontext ensure_context();

} // namespace flexjit::cuda
