// A directory of compiled artifacts keyed by text. Writes are atomic (a
// temporary file renamed into place), so a reader in another process never
// sees a half-written entry; every entry carries its full key, its length and
// a checksum, and anything that does not verify is treated as a miss.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flexjit {

class DiskCache {
public:
  // `directory` empty: caching disabled (every lookup misses, stores do nothing).
  explicit DiskCache(std::string directory);

  // The default: $FLEXJIT_CACHE_DIR, else $XDG_CACHE_HOME/flexjit, else
  // ~/.cache/flexjit; disabled when FLEXJIT_CACHE=0.
  static DiskCache from_environment();

  bool enabled() const { return !directory_.empty(); }
  const std::string& directory() const { return directory_; }

  // The stored bytes for `key`, or nothing when absent, corrupt, truncated or
  // stored under another key text (a hash collision).
  std::optional<std::string> load(std::string_view key) const;
  // Stores atomically; failures (read-only disk, full disk) are ignored: the
  // cache is an optimization, never a reason to fail a launch.
  void store(std::string_view key, std::string_view bytes) const;

  // The file an entry lives in (for tests that corrupt entries).
  std::string path_for(std::string_view key) const;

private:
  std::string directory_;
};

} // namespace flexjit
