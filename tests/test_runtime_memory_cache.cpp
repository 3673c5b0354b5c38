// The kernel cache's memory limit on the CPU: its size rule (runtime/LruBudget.h: least
// recently used first, the newest and the pinned kept), SingleFlight::erase_if (how an
// evicted kernel leaves the build map), the limit's API and its environment variable's
// errors. The GPU side (modules unloaded after their launches, graphs) is in
// test_attention_gpu.cpp, tag [cache-limit].
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/runtime/DiskCache.h"
#include "flexjit/runtime/LruBudget.h"
#include "flexjit/runtime/SingleFlight.h"

using namespace flexjit;
using Catch::Contains;

TEST_CASE("memory cache: least recently used entries go first, the newest stays",
          "[runtime][cache][cache-limit]") {
  LruBudget<int> budget(100);
  budget.insert(1, 40);
  budget.insert(2, 40);
  CHECK(budget.bytes() == 80);
  CHECK(budget.evict(2, [](int) { return true; }).empty()); // within the limit
  budget.insert(3, 40);                                     // 120 > 100
  CHECK(budget.evict(3, [](int) { return true; }) == std::vector<int>{1});
  CHECK(budget.bytes() == 80);
  CHECK(!budget.contains(1));

  // A use moves an entry to the front: 2 was used after 3, so 3 goes.
  CHECK(budget.use(2));
  CHECK(!budget.use(1));
  budget.insert(4, 40);
  CHECK(budget.evict(4, [](int) { return true; }) == std::vector<int>{3});

  // Inserting a held key only uses it (no double count).
  budget.insert(4, 40);
  CHECK(budget.bytes() == 80);
  CHECK(budget.size() == 2);

  // Entries that may not go (pinned) stay and still count; the rest go oldest first.
  budget.set_max_bytes(10);
  budget.insert(5, 40);
  budget.insert(6, 40);
  const std::vector<int> gone = budget.evict(6, [](int key) { return key != 4; });
  CHECK(gone == std::vector<int>{2, 5});
  CHECK(budget.bytes() == 80); // 4 (pinned) and 6 (newest): over the limit, and kept
  CHECK(budget.contains(4));
  CHECK(budget.contains(6));

  // The newest entry stays even when it alone passes the limit.
  budget.set_max_bytes(1);
  CHECK(budget.evict(6, [](int) { return true; }) == std::vector<int>{4});
  CHECK(budget.size() == 1);
  CHECK(budget.bytes() == 40);

  budget.erase(6);
  budget.erase(6); // erasing a key not held does nothing
  CHECK(budget.bytes() == 0);
  CHECK(budget.size() == 0);
}

TEST_CASE("memory cache: a long run of inserts and uses keeps the byte count and LRU order",
          "[runtime][cache][cache-limit]") {
  // Against a plain model: a vector in use order.
  LruBudget<int> budget(1000);
  std::vector<std::pair<int, int64_t>> model; // most recently used last
  uint32_t x = 12345;
  auto next = [&] { return x = x * 1664525u + 1013904223u; };
  for (int step = 0; step < 5000; ++step) {
    const int key = static_cast<int>(next() % 40);
    const int64_t bytes = 1 + static_cast<int64_t>(next() % 200);
    const auto it = std::find_if(model.begin(), model.end(),
                                 [&](const auto& entry) { return entry.first == key; });
    if (it != model.end()) {
      const auto entry = *it;
      model.erase(it);
      model.push_back(entry);
    } else {
      model.emplace_back(key, bytes);
    }
    budget.insert(key, bytes);
    const std::vector<int> gone = budget.evict(key, [](int k) { return k % 7 != 0; });
    // The model's eviction: oldest first, skipping the newest and multiples of 7.
    int64_t total = 0;
    for (const auto& entry : model)
      total += entry.second;
    std::vector<int> expected;
    for (auto e = model.begin(); total > 1000 && e != model.end();) {
      if (e->first == key || e->first % 7 == 0) {
        ++e;
        continue;
      }
      total -= e->second;
      expected.push_back(e->first);
      e = model.erase(e);
    }
    REQUIRE(gone == expected);
    REQUIRE(budget.bytes() == total);
    REQUIRE(budget.size() == model.size());
  }
}

TEST_CASE("memory cache: SingleFlight::erase_if forgets one key when its value matches",
          "[runtime][cache][cache-limit]") {
  SingleFlight<std::string, int> flight;
  int runs = 0;
  auto make = [&](int value) {
    return [&runs, value] {
      ++runs;
      return value;
    };
  };
  CHECK(flight.get("a", make(1)).value == 1);
  CHECK(flight.get("b", make(2)).value == 2);
  CHECK(!flight.erase_if("a", [](int v) { return v == 7; })); // another value: kept
  CHECK(flight.get("a", make(3)).value == 1);
  CHECK(flight.erase_if("a", [](int v) { return v == 1; }));
  CHECK(!flight.erase_if("a", [](int) { return true; })); // gone already
  CHECK(!flight.erase_if("zzz", [](int) { return true; }));
  const auto again = flight.get("a", make(4));
  CHECK(again.value == 4);
  CHECK(again.produced);
  CHECK(flight.get("b", make(5)).value == 2); // untouched
  CHECK(runs == 3);
}

TEST_CASE("memory cache: the limit's API and FLEXJIT_MEMORY_CACHE_MAX_BYTES errors",
          "[runtime][cache][cache-limit][errors]") {
  const int64_t saved = kernel_memory_cache_limit();
  CHECK(saved > 0);
  set_kernel_memory_cache_limit(12345);
  CHECK(kernel_memory_cache_limit() == 12345);
  for (int64_t bad : {int64_t{0}, int64_t{-5}})
    CHECK_THROWS_WITH(set_kernel_memory_cache_limit(bad),
                      Contains("set_kernel_memory_cache_limit(" + std::to_string(bad) +
                               "): the limit must be a positive number of bytes"));
  CHECK(kernel_memory_cache_limit() == 12345);
  set_kernel_memory_cache_limit(saved);
  CHECK(kernel_memory_cache_bytes() >= 0);
  CHECK(DiskCache::parse_size("64M", "FLEXJIT_MEMORY_CACHE_MAX_BYTES") == int64_t{64} << 20);
  CHECK_THROWS_WITH(DiskCache::parse_size("big", "FLEXJIT_MEMORY_CACHE_MAX_BYTES"),
                    Contains("FLEXJIT_MEMORY_CACHE_MAX_BYTES=big is not a size"));
}
