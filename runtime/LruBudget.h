// The in-memory kernel cache's size rule, kept apart from CUDA so that the CPU tests
// exercise it (as SingleFlight is): entries with a size in bytes, ordered by last use;
// past the limit, the least recently used entries that may go are named for eviction.
// Not thread-safe: the kernel cache calls it under its own mutex.
#pragma once

#include <cstdint>
#include <iterator>
#include <list>
#include <unordered_map>
#include <vector>

namespace flexjit {

template <class Key> class LruBudget {
public:
  explicit LruBudget(int64_t max_bytes) : max_bytes_(max_bytes) {}

  int64_t max_bytes() const { return max_bytes_; }
  void set_max_bytes(int64_t max_bytes) { max_bytes_ = max_bytes; }
  // The bytes of the entries held now, and how many there are.
  int64_t bytes() const { return bytes_; }
  size_t size() const { return entries_.size(); }
  bool contains(const Key& key) const { return entries_.count(key) != 0; }

  // Adds `key` as the most recently used entry (an entry already held is only used).
  void insert(const Key& key, int64_t bytes) {
    if (use(key))
      return;
    order_.push_front(key);
    entries_.emplace(key, Entry{order_.begin(), bytes});
    bytes_ += bytes;
  }
  // Marks `key` as just used; false when it is not held.
  bool use(const Key& key) {
    const auto it = entries_.find(key);
    if (it == entries_.end())
      return false;
    order_.splice(order_.begin(), order_, it->second.position);
    return true;
  }
  void erase(const Key& key) {
    const auto it = entries_.find(key);
    if (it == entries_.end())
      return;
    bytes_ -= it->second.bytes;
    order_.erase(it->second.position);
    entries_.erase(it);
  }
  void clear() {
    entries_.clear();
    order_.clear();
    bytes_ = 0;
  }

  // While more than max_bytes are held: removes the least recently used entry for which
  // `may_go(key)` is true, other than `keep` (the entry just added: it always stays), and
  // returns the removed keys, oldest first. Entries that may not go still count: with
  // enough of them the budget stays exceeded.
  template <class MayGo> std::vector<Key> evict(const Key& keep, MayGo&& may_go) {
    std::vector<Key> gone;
    for (auto it = order_.end(); bytes_ > max_bytes_ && it != order_.begin();) {
      --it;
      if (*it == keep || !may_go(*it))
        continue;
      const Key key = *it;
      it = std::next(it); // erase invalidates only the erased entry's position
      erase(key);
      gone.push_back(key);
    }
    return gone;
  }

private:
  struct Entry {
    typename std::list<Key>::iterator position;
    int64_t bytes = 0;
  };
  int64_t max_bytes_ = 0;
  int64_t bytes_ = 0;
  std::list<Key> order_; // most recently used first
  std::unordered_map<Key, Entry> entries_;
};

} // namespace flexjit
