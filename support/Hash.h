// A 128-bit hash of text: the kernel cache's keys, the disk cache's file names and
// checksums, the templates' bitcode digests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace flexjit {

struct Hash128 {
  uint64_t hi = 0, lo = 0;
  std::string hex() const; // 32 lowercase hex digits
  bool operator==(const Hash128&) const = default;
};
Hash128 hash_text(std::string_view text);

} // namespace flexjit
