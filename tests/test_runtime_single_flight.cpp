// The kernel cache's single flight (runtime/SingleFlight.h) on the CPU: 16
// threads asking for overlapping sets of real compiles get one compile per
// distinct key and the same result; a failing build reaches every waiter and
// the key can be retried. Run under ThreadSanitizer by scripts/test.sh.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flexjit/codegen/Codegen.h"
#include "flexjit/codegen/Variants.h"
#include "flexjit/runtime/SingleFlight.h"
#include "flexjit/support/Error.h"
#include "flexjit/testing/SeedCatalog.h"

using namespace flexjit;
using flexjit::testing::SeedCatalog;

namespace {

constexpr int kThreads = 16;

using KernelFlight = SingleFlight<std::string, std::shared_ptr<const CompiledKernel>>;

// Blocks (a producer) until `n` callers wait for `key`; false after a minute.
bool wait_for_waiters(const KernelFlight& flight, const std::string& key, size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (flight.waiters(key) < n) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

} // namespace

TEST_CASE("single flight: 16 threads, overlapping compiles, one compile per key",
          "[runtime][concurrency]") {
  const SeedCatalog seeds;
  std::vector<KernelSpec> specs;
  for (size_t i = 0; i < 6; ++i)
    specs.push_back({i % 2 ? TemplateKind::CreateMask : TemplateKind::BlockClassify, Arch::SM80,
                     seeds.masks[i], seeds.scores[i % seeds.scores.size()]});
  std::vector<std::string> keys;
  for (const KernelSpec& s : specs)
    keys.push_back(kernel_key(s));
  for (size_t i = 0; i < keys.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      REQUIRE(keys[i] != keys[j]);

  KernelFlight flight;
  std::vector<std::atomic<int>> compiles(specs.size());
  std::atomic<bool> first_waited{true};
  struct Got {
    size_t spec;
    std::shared_ptr<const CompiledKernel> kernel;
    bool produced;
  };
  std::vector<std::vector<Got>> got(kThreads);
  std::vector<std::string> errors(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      // Every thread asks for spec 0 first (its producer holds until all 15
      // others wait), then three more that overlap with other threads' picks.
      const size_t u = static_cast<size_t>(t);
      const size_t picks[] = {0, 1 + u % 5, 1 + (u + 2) % 5, 1 + (u * 3 + 1) % 5};
      start.arrive_and_wait();
      try {
        for (size_t i : picks) {
          auto [kernel, produced] = flight.get(keys[i], [&] {
            if (i == 0 && !wait_for_waiters(flight, keys[0], kThreads - 1))
              first_waited = false;
            ++compiles[i];
            return std::make_shared<const CompiledKernel>(compile_to_ptx(specs[i]));
          });
          got[t].push_back({i, kernel, produced});
        }
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  for (std::thread& t : threads)
    t.join();

  for (const std::string& e : errors)
    REQUIRE(e.empty());
  CHECK(first_waited.load());
  std::map<size_t, std::shared_ptr<const CompiledKernel>> first;
  std::map<size_t, int> produced;
  for (const std::vector<Got>& thread : got) {
    REQUIRE(thread.size() == 4);
    for (const Got& g : thread) {
      REQUIRE(g.kernel);
      auto [it, inserted] = first.try_emplace(g.spec, g.kernel);
      CHECK(it->second == g.kernel); // one object per key, shared by every caller
      produced[g.spec] += g.produced;
    }
  }
  REQUIRE(first.size() == specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    INFO("spec " << i << " " << to_string(specs[i].kind) << " " << specs[i].mask.name());
    CHECK(compiles[i].load() == 1);
    CHECK(produced[i] == 1);
    CHECK(first[i]->key == keys[i]);
    CHECK(first[i]->ptx.find(".entry") != std::string::npos);
  }
  // Cached: no further compile.
  CHECK(flight
            .get(keys[3],
                 [&]() -> std::shared_ptr<const CompiledKernel> {
                   ++compiles[3];
                   return nullptr;
                 })
            .value == first[3]);
  CHECK(compiles[3].load() == 1);
  // clear() forgets the values: the next request compiles again.
  flight.clear();
  const auto again = flight.get(keys[3], [&] {
    ++compiles[3];
    return std::make_shared<const CompiledKernel>(compile_to_ptx(specs[3]));
  });
  CHECK(again.produced);
  CHECK(compiles[3].load() == 2);
  CHECK(again.value->ptx == first[3]->ptx);
}

TEST_CASE("single flight: a failing build reaches every waiter, then the key is retried",
          "[runtime][concurrency]") {
  const SeedCatalog seeds;
  KernelSpec bad{TemplateKind::AttentionForward, Arch::SM80, seeds.masks[0], seeds.scores[0]};
  bad.head_dim = 48; // no template instantiation: compile_to_ptx throws Error
  const std::string key = "attention d48";
  KernelFlight flight;
  std::atomic<int> runs{0};
  std::atomic<bool> all_waited{true};
  std::vector<std::string> errors(kThreads);
  std::vector<int> results(kThreads, 0);
  // Every thread catches the one exception object the producer threw; the last
  // handler to finish frees it, ordered by a reference count in libsupc++, which
  // ThreadSanitizer does not see (libstdc++ is not instrumented). Holding
  // `handling` from each handler's start to past its end makes that order
  // visible to TSan too.
  std::mutex handling;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::unique_lock hold(handling, std::defer_lock);
      start.arrive_and_wait();
      try {
        flight.get(key, [&] {
          ++runs;
          if (!wait_for_waiters(flight, key, kThreads - 1))
            all_waited = false;
          return std::make_shared<const CompiledKernel>(compile_to_ptx(bad));
        });
        results[t] = 1;
      } catch (const Error& e) {
        hold.lock();
        errors[t] = e.what();
      } catch (...) {
        results[t] = 2;
      }
    });
  for (std::thread& t : threads)
    t.join();

  CHECK(all_waited.load());
  CHECK(runs.load() == 1);
  for (int t = 0; t < kThreads; ++t) {
    INFO("thread " << t);
    CHECK(results[t] == 0);
    CHECK(errors[t] == errors[0]);
  }
  CHECK_THAT(errors[0], Catch::Contains("head dim 48"));
  CHECK(flight.waiters(key) == 0);

  // The failure was not cached: the next request runs its producer.
  KernelSpec good = bad;
  good.head_dim = 64;
  const auto retried = flight.get(key, [&] {
    ++runs;
    return std::make_shared<const CompiledKernel>(compile_to_ptx(good));
  });
  CHECK(retried.produced);
  CHECK(runs.load() == 2);
  CHECK(retried.value->entry == find_variant(good).main.entry);
}
