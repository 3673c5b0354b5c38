#include "flexjit/blockmask/Memory.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>

#include "flexjit/runtime/Runtime.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

constexpr int64_t kUnknown = std::numeric_limits<int64_t>::max();

// The first integer on the line of `path` that starts with `key` ("" reads the
// first line), or -1.
int64_t read_number(const char* path, const char* key) {
  std::FILE* f = std::fopen(path, "r");
  if (!f)
    return -1;
  int64_t value = -1;
  char line[256];
  const size_t key_len = std::strlen(key);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, key, key_len) == 0) {
      if (std::sscanf(line + key_len, " %" SCNd64, &value) != 1)
        value = -1;
      break;
    }
  std::fclose(f);
  return value;
}

} // namespace

std::string bytes_text(int64_t bytes) {
  return fmt::format("{} bytes ({:.2f} GiB)", bytes, static_cast<double>(bytes) / (1 << 30));
}

int64_t host_memory_available() {
  int64_t available = kUnknown;
  if (const int64_t kib = read_number("/proc/meminfo", "MemAvailable:"); kib >= 0)
    available = kib * 1024;
  // "max" (no limit) does not parse as a number.
  const int64_t limit = read_number("/sys/fs/cgroup/memory.max", "");
  const int64_t used = read_number("/sys/fs/cgroup/memory.current", "");
  if (limit >= 0 && used >= 0)
    available = std::min(available, std::max<int64_t>(limit - used, 0));
  return available;
}

void require_host_memory(const std::string& what, int64_t needed, const std::string& detail) {
  const int64_t available = host_memory_available();
  if (needed <= available)
    return;
  fail("{} needs {} of host memory{}; {} are available", what, bytes_text(needed), detail,
       bytes_text(available));
}

void require_device_memory(const std::string& what, int64_t needed) {
  const DeviceMemoryInfo info = device_memory_info();
  if (needed <= static_cast<int64_t>(info.free_bytes))
    return;
  fail("{} needs {} of device memory; {} of {} bytes are free", what, bytes_text(needed),
       bytes_text(static_cast<int64_t>(info.free_bytes)), info.total_bytes);
}

} // namespace flexjit
