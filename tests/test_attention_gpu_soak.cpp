// The soak (issue 15 item 4): FLEXJIT_SOAK_CALLS (default 20,000) mixed attention calls --
// forward, backward and decode (AttentionFuzzRun.h's soak_call: small random calls, random
// pairs from a pool) -- from 4 threads, each round-robin over 4 CUstreams of its own (16 in
// all), every result checked on 4 sampled rows (and the backward's dv in full) against the
// float64 reference by run_fuzz_call, the fuzzer's own rule. The pool is larger than the
// kernel memory cache: the warm-up (the first 1,000 calls, the memory cache cleared before it)
// draws only its 8 hot pairs; then the cache's limit becomes 1.5x what their kernels take
// (kernel_memory_cache_bytes), and one call in 32 takes one of the 16 cold pairs, whose kernels
// evict others -- modules are unloaded while the other threads' launches run. Device free
// memory (cuMemGetInfo) and host RSS (/proc/self/statm) after the warm-up and at the end: free
// memory may drop by at most 64 MiB plus the cache limit, RSS grow by at most 128 MiB. At the
// end the cache has evicted and unloaded (kernel_cache_stats).
//   FLEXJIT_SOAK_CALLS (default 20000), FLEXJIT_SOAK_SEED (default 1). Pairs f16 d64 and bf16
//   d128 alternate (each pair's kernels: forward, decode, backward, the GPU block mask's).
// Hidden from the default run ("[.]"): `flexjit_tests "[gpu][soak]"`. It needs the disk cache
// (every eviction reloads from it): with FLEXJIT_CACHE=0 it skips, saying so. With
// CUDA_CACHE_DISABLE=1 each reload of a kernel the driver JITs from PTX (the sm_90a
// warp-specialized forward and decode) runs ptxas again: slower (README).
// NOT YET RUN ON A GPU (written without a device): its time is an estimate (README).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <flexjit/flexjit.h>

#include "AttentionCases.h"
#include "AttentionFuzzRun.h"
#include "flexjit/runtime/Context.h"
#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/Target.h"
#include "flexjit/testing/AttentionFuzz.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/RandomMods.h"

using namespace flexjit;
using namespace flexjit::testing;

namespace {

constexpr int kThreads = 4, kStreamsPerThread = 4;
constexpr int64_t kMiB = int64_t{1} << 20;

// The host's resident set, in bytes (/proc/self/statm's second field, in pages).
int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

struct MemoryPoint {
  int64_t device_free = 0, rss = 0;
};
MemoryPoint memory_now() {
  return {static_cast<int64_t>(device_memory_info().free_bytes), resident_bytes()};
}

// What the workers report, counted and kept under a mutex (Catch2's macros are for the main
// thread only).
struct Tally {
  std::atomic<int> run{0}, rows{0}, skipped{0}, refused{0}, failures{0};
  std::array<std::atomic<int>, 3> per_path{}; // forward, backward, decode
  std::mutex mutex;
  std::vector<std::string> first_failures; // at most 5, with their corpus cases

  void fail(const std::string& text) {
    ++failures;
    std::lock_guard lock(mutex);
    if (first_failures.size() < 5)
      first_failures.push_back(text);
  }
};

} // namespace

TEST_CASE("gpu: a soak of mixed attention calls from 4 threads on 16 streams under a small "
          "kernel cache",
          "[.][gpu][soak]") {
  SKIP_WITHOUT_CUDA();
  if (kernel_cache_directory().empty()) {
    WARN("skipped: the disk cache is disabled (FLEXJIT_CACHE=0), and every eviction would "
         "recompile");
    return;
  }
  const int calls = static_cast<int>(std::max<int64_t>(env_int("FLEXJIT_SOAK_CALLS", 20000), 8));
  const auto seed = static_cast<uint32_t>(env_int("FLEXJIT_SOAK_SEED", 1));
  const int warm_up = std::min(1000, calls / 2);
  const Arch arch = current_target().arch;
  const ModPool pool = soak_pool(24, 8);
  const char* driver_cache = std::getenv("CUDA_CACHE_DISABLE");
  if (driver_cache && std::string(driver_cache) == "1")
    WARN("CUDA_CACHE_DISABLE=1: each reload of an evicted kernel the driver JITs from PTX runs "
         "ptxas again (slower)");

  cuda::ensure_context();
  const auto& drv = cuda::driver();
  std::array<std::array<CUstream, kStreamsPerThread>, kThreads> streams{};
  for (auto& own : streams)
    for (CUstream& s : own)
      cuda::check(drv.cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");

  const MemoryLimit restore(kernel_memory_cache_limit()); // the limit set below, undone after
  clear_kernel_memory_cache();                            // the pool's kernels alone, from here on
  const KernelCacheStats before = kernel_cache_stats();
  const auto start = std::chrono::steady_clock::now();

  // Two phases of the global call index: [0, warm_up) (hot pairs, the default limit), then
  // [warm_up, calls). Between them every worker waits at the barrier while the main thread
  // sets the limit and measures (nothing queued: each call returns after its work).
  const int ends[] = {warm_up, calls};
  std::atomic<int> next{0};
  std::barrier sync(kThreads + 1);
  Tally tally;
  auto one_call = [&](int i, CUstream stream) {
    std::mt19937 rng(seed * 1000003u + static_cast<uint32_t>(i));
    size_t index = 0;
    const FuzzCall c = soak_call(rng, arch, pool, i < warm_up, &index);
    const RandomMod& m = pool.mods[index];
    FuzzOutcome r;
    try {
      r = run_fuzz_call(c, m, stream, 4);
    } catch (const Error& e) {
      if (documented_refusal(e)) {
        ++tally.refused;
        return;
      }
      r.failure = fmt::format("Error: {}", e.what());
    } catch (const std::exception& e) {
      r.failure = fmt::format("exception: {}", e.what());
    }
    ++tally.run;
    ++tally.per_path[static_cast<size_t>(c.path)];
    tally.rows += r.rows;
    tally.skipped += r.skipped;
    if (!r.failure.empty())
      tally.fail(fmt::format("call {}: {}\n# save as tests/fuzz_corpus_attention/<name>.fza:\n{}",
                             i, r.failure, format_attention_case(c, m, r.failure)));
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t)
    workers.emplace_back([&, t] {
      int mine = 0; // this thread's calls: the round robin over its streams
      for (int end : ends) {
        for (int i = next.fetch_add(1); i < end; i = next.fetch_add(1))
          one_call(
              i, streams[static_cast<size_t>(t)][static_cast<size_t>(mine++ % kStreamsPerThread)]);
        sync.arrive_and_wait(); // the phase is done
        sync.arrive_and_wait(); // the main thread's work between phases is done
      }
    });

  int64_t limit = 0, hot_bytes = 0;
  MemoryPoint warm, end;
  KernelCacheStats at_warm; // the evictions and unloads checked are the soak's own, after it
  double warm_seconds = 0;
  for (int phase = 0; phase < 2; ++phase) {
    sync.arrive_and_wait();
    next = ends[phase];
    if (phase == 0) { // the hot pairs' kernels are loaded: the cache gets 1.5x their bytes
      hot_bytes = kernel_memory_cache_bytes();
      limit = std::max<int64_t>(1, hot_bytes * 3 / 2);
      set_kernel_memory_cache_limit(limit);
      warm = memory_now();
      at_warm = kernel_cache_stats();
      warm_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } else {
      end = memory_now();
    }
    sync.arrive_and_wait();
  }
  for (std::thread& w : workers)
    w.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto& own : streams)
    for (CUstream s : own)
      cuda::check(drv.cuStreamDestroy(s), "cuStreamDestroy");

  const KernelCacheStats after = kernel_cache_stats();
  const uint64_t evictions = after.evictions - at_warm.evictions,
                 unloads = after.unloads - at_warm.unloads;
  WARN(fmt::format("soak: {} calls in {:.1f} s (the warm-up's {} in {:.1f} s) on {} threads x {} "
                   "streams (forward {}, backward {}, decode {}; {} refused), {} rows compared, {} "
                   "skipped, {} failures",
                   tally.run.load(), seconds, warm_up, warm_seconds, kThreads, kStreamsPerThread,
                   tally.per_path[0].load(), tally.per_path[1].load(), tally.per_path[2].load(),
                   tally.refused.load(), tally.rows.load(), tally.skipped.load(),
                   tally.failures.load()));
  WARN(fmt::format("soak kernel cache: pool of {} pairs ({} hot), the hot ones' kernels {:.2f} "
                   "MiB, limit {:.2f} MiB; {} compiles, {} disk hits, {} memory hits; after "
                   "the warm-up {} evictions, {} unloads",
                   pool.seeds.size(), pool.hot, hot_bytes / double(kMiB), limit / double(kMiB),
                   after.compiles - before.compiles, after.disk_hits - before.disk_hits,
                   after.memory_hits - before.memory_hits, evictions, unloads));
  WARN(fmt::format("soak memory after the warm-up ({} calls) and at the end: device free {:.1f} "
                   "-> {:.1f} MiB ({:+.1f}), host RSS {:.1f} -> {:.1f} MiB ({:+.1f})",
                   warm_up, warm.device_free / double(kMiB), end.device_free / double(kMiB),
                   (end.device_free - warm.device_free) / double(kMiB), warm.rss / double(kMiB),
                   end.rss / double(kMiB), (end.rss - warm.rss) / double(kMiB)));
  for (const std::string& f : tally.first_failures)
    FAIL_CHECK(f);
  CHECK(tally.failures.load() == 0);
  CHECK(tally.refused.load() * 10 <= calls);       // the pool's pairs fit the calls
  CHECK(tally.rows.load() > tally.run.load() * 2); // most of the 4 rows per call are compared
  CHECK(evictions > 0);                            // the pool does not fit the cache ...
  CHECK(unloads > 0);                              // ... and evicted modules were unloaded
  CHECK(warm.device_free - end.device_free <= 64 * kMiB + limit);
  CHECK(end.rss - warm.rss <= 128 * kMiB);
}
