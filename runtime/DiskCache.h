// A directory of compiled artifacts keyed by text. Writes are atomic (a
// temporary file renamed into place), so a reader in another process never
// sees a half-written entry; every entry carries its full key, its length and
// a checksum, and anything that does not verify is treated as a miss.
// Bounded: after each store the entries past `max_bytes` are removed, least recently
// used first (a hit refreshes an entry's modification time), by whichever process
// stored; a reader with the file open keeps reading it (POSIX unlink), so concurrent
// processes at worst miss an entry and compile it again.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flexjit {

// The disk cache's size limit without FLEXJIT_CACHE_MAX_BYTES: 1 GiB (cubins are
// 0.1-1 MB: thousands of kernels).
inline constexpr int64_t kDefaultDiskCacheMaxBytes = int64_t{1} << 30;

class DiskCache {
public:
  // `directory` empty: caching disabled (every lookup misses, stores do nothing).
  // At most `max_bytes` of entries are kept (the newest entry always stays).
  explicit DiskCache(std::string directory, int64_t max_bytes = kDefaultDiskCacheMaxBytes);

  // The default: $FLEXJIT_CACHE_DIR, else $XDG_CACHE_HOME/flexjit, else
  // ~/.cache/flexjit; disabled when FLEXJIT_CACHE=0; the limit from
  // FLEXJIT_CACHE_MAX_BYTES (bytes, or with a K, M or G suffix: "512M"), else
  // kDefaultDiskCacheMaxBytes. Error for a limit that is not such a size.
  static DiskCache from_environment();
  // The size a FLEXJIT_CACHE_MAX_BYTES value names ("4096", "64K", "512M", "2G"; the
  // suffixes are powers of 1024); Error naming `variable` for anything else or a size of 0.
  // Also the rule of FLEXJIT_MEMORY_CACHE_MAX_BYTES (the kernel cache's memory limit).
  static int64_t parse_size(std::string_view text,
                            std::string_view variable = "FLEXJIT_CACHE_MAX_BYTES");

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
  int64_t max_bytes() const { return max_bytes_; }
  // Bytes of the entries in the directory now.
  int64_t size_bytes() const;

private:
  // Removes entries, least recently used first, until at most max_bytes_ remain (`keep`,
  // the entry just stored, last of all: never); also temporary files of stores that died.
  void evict(const std::string& keep) const;

  std::string directory_;
  int64_t max_bytes_ = kDefaultDiskCacheMaxBytes;
};

} // namespace flexjit
