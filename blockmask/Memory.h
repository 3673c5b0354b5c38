// Internal to blockmask: memory checks before the big allocations of block masks
// and dense masks, so that a shape the machine cannot hold fails with an Error
// naming the bytes needed and available instead of std::bad_alloc, the OOM
// killer or a bare CUDA_ERROR_OUT_OF_MEMORY.
#pragma once

#include <cstdint>
#include <string>

namespace flexjit {

// "1073872896 bytes (1.00 GiB)".
std::string bytes_text(int64_t bytes);

// Bytes of host memory this process can still allocate: /proc/meminfo's
// MemAvailable, capped by the cgroup v2 limit (memory.max - memory.current);
// INT64_MAX when neither is readable.
int64_t host_memory_available();

// Throws Error "<what> needs N bytes (X GiB) of host memory<detail>; M bytes (Y GiB) are
// available" when `needed` exceeds host_memory_available().
void require_host_memory(const std::string& what, int64_t needed, const std::string& detail = "");

// Throws Error "<what> needs N bytes (X GiB) of device memory; F bytes (Y GiB) of T bytes
// are free" when `needed` exceeds the current device's free memory (cuMemGetInfo). Needs CUDA.
void require_device_memory(const std::string& what, int64_t needed);

} // namespace flexjit
