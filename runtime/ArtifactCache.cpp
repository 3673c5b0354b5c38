#include "runtime/ArtifactCache.h"

namespace flexjit {

ArtifactCache::ArtifactCache(DiskCache disk) : disk_(std::move(disk)) {}

std::shared_ptr<const std::string> ArtifactCache::get(const std::string& key,
                                                      const Builder& build) {
  std::shared_ptr<Slot> slot;
  {
    std::unique_lock lock(mutex_);
    auto [it, inserted] = slots_.try_emplace(key);
    if (!inserted) {
      slot = it->second;
      ready_.wait(lock, [&] { return slot->ready; });
      if (slot->error)
        std::rethrow_exception(slot->error);
      ++stats_.memory_hits;
      return slot->value;
    }
    it->second = slot = std::make_shared<Slot>();
  }
  // This thread owns the build; others wait on `ready_`.
  std::shared_ptr<const std::string> value;
  std::exception_ptr error;
  bool from_disk = false;
  try {
    if (auto bytes = disk_.load(key)) {
      value = std::make_shared<const std::string>(std::move(*bytes));
      from_disk = true;
    } else {
      value = std::make_shared<const std::string>(build());
      disk_.store(key, *value);
    }
  } catch (...) {
    error = std::current_exception();
  }
  {
    std::lock_guard lock(mutex_);
    slot->value = value;
    slot->error = error;
    slot->ready = true;
    if (error)
      slots_.erase(key); // waiters still hold the slot and see the error
    else
      ++(from_disk ? stats_.disk_hits : stats_.builds);
  }
  ready_.notify_all();
  if (error)
    std::rethrow_exception(error);
  return value;
}

CacheStats ArtifactCache::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void ArtifactCache::clear_memory() {
  std::lock_guard lock(mutex_);
  std::erase_if(slots_, [](const auto& kv) { return kv.second->ready; });
}

} // namespace flexjit
