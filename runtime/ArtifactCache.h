// Compiled artifacts (PTX, cubin) by key, in memory and on disk, built at most
// once per key: concurrent requests for a key being built wait for that build
// instead of starting their own.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "runtime/DiskCache.h"

namespace flexjit {

struct CacheStats {
  uint64_t memory_hits = 0;
  uint64_t disk_hits = 0;
  uint64_t builds = 0;
};

class ArtifactCache {
public:
  explicit ArtifactCache(DiskCache disk);

  using Builder = std::function<std::string()>;
  // The artifact for `key`: from memory, else from disk, else from `build`
  // (stored to both). If `build` throws, the error reaches every waiter and
  // nothing is cached, so a later call tries again.
  std::shared_ptr<const std::string> get(const std::string& key, const Builder& build);

  CacheStats stats() const;
  void clear_memory();
  const DiskCache& disk() const { return disk_; }

private:
  struct Slot {
    std::shared_ptr<const std::string> value;
    std::exception_ptr error;
    bool ready = false;
  };
  DiskCache disk_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::unordered_map<std::string, std::shared_ptr<Slot>> slots_;
  CacheStats stats_;
};

} // namespace flexjit
