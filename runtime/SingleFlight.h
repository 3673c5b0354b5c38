// A keyed cache whose values are made at most once per key at a time: the
// first caller for a key runs the producer, in its own thread and without any
// lock held; concurrent callers for that key wait for it and get its value or
// its exception. A value stays cached until clear() or erase_if(); a key whose producer threw
// is forgotten (every caller that waited on that run rethrows the producer's
// exception object), so a later call runs the producer again. The kernel
// cache's single-flight logic, kept apart from CUDA so that the CPU tests
// exercise it.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace flexjit {

template <class Key, class Value, class Compare = std::less<Key>> class SingleFlight {
public:
  struct Result {
    Value value;
    bool produced = false; // this call ran the producer (false: cached or waited)
  };

  // The value for `key`, from the cache or from `produce()` (called with no
  // lock held). A producer must not ask this cache for its own key.
  template <class Produce> Result get(const Key& key, Produce&& produce) {
    std::shared_ptr<Slot> slot;
    {
      std::unique_lock lock(mutex_);
      auto [it, inserted] = slots_.try_emplace(key);
      if (!inserted) {
        slot = it->second;
        ++slot->waiters;
        ready_.wait(lock, [&] { return slot->done; });
        --slot->waiters;
        if (slot->error)
          std::rethrow_exception(slot->error);
        return {*slot->value, false};
      }
      it->second = slot = std::make_shared<Slot>();
    }
    std::optional<Value> value;
    std::exception_ptr error;
    try {
      value.emplace(std::forward<Produce>(produce)());
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      slot->value = std::move(value);
      slot->error = error;
      slot->done = true;
      if (error)
        slots_.erase(key); // the waiters hold the slot and see the error
    }
    ready_.notify_all();
    if (error)
      std::rethrow_exception(error);
    return {*slot->value, true}; // a done slot is never written again
  }

  // Forgets every cached value; producers still running keep their keys.
  void clear() {
    std::lock_guard lock(mutex_);
    std::erase_if(slots_, [](const auto& kv) { return kv.second->done; });
  }

  // Forgets the cached value of `key` when `pred(value)` holds (a producer still running
  // keeps its key); true when it was forgotten.
  template <class Pred> bool erase_if(const Key& key, Pred&& pred) {
    std::lock_guard lock(mutex_);
    const auto it = slots_.find(key);
    if (it == slots_.end() || !it->second->done || !pred(*it->second->value))
      return false;
    slots_.erase(it);
    return true;
  }

  // How many callers are waiting for the producer of `key` (for tests).
  size_t waiters(const Key& key) const {
    std::lock_guard lock(mutex_);
    const auto it = slots_.find(key);
    return it == slots_.end() ? 0 : it->second->waiters;
  }

private:
  struct Slot {
    std::optional<Value> value;
    std::exception_ptr error;
    size_t waiters = 0;
    bool done = false;
  };
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::map<Key, std::shared_ptr<Slot>, Compare> slots_;
};

} // namespace flexjit
