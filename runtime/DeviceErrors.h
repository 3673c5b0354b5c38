// Internal to the runtime and above: the word kernels report bad device data in. Kernels that
// read data the host cannot check without a synchronisation (a KV cache's lengths and page
// table) set bits in it instead of reading out of bounds; the host reads it without
// synchronising (host-mapped memory), so the call after the bad one, or a synchronising check
// (check_device_errors, Runtime.h), raises the Error. Capturable in a CUDA graph: the word's
// address never changes.
#pragma once

#include <cstdint>

namespace flexjit::cuda {

// The device address of the process's error word (pinned, mapped host memory, portable to
// every context; allocated on first use). Needs CUDA.
uint32_t* device_error_word();
// The bits set since the last call, cleared. 0 before any kernel could set one.
uint32_t take_device_errors();

} // namespace flexjit::cuda
