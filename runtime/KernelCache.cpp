// The kernel cache. Memory: loaded modules by (context, variant, prepared mods), then
// by (context, key). Disk: the cubin the driver's linker made
// from the PTX, keyed by the kernel key text plus the device's compute
// capability and the driver version (the cubin is the driver's ptxas output).
// A disk entry that does not verify (DiskCache) or that cuModuleLoadData
// rejects is a miss: the kernel is compiled again and the entry overwritten.
#include "flexjit/runtime/KernelCache.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <tuple>

#include "flexjit/codegen/Build.h"
#include "flexjit/codegen/PtxasLog.h"
#include "flexjit/runtime/Context.h"
#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/DiskCache.h"
#include "flexjit/runtime/LruBudget.h"
#include "flexjit/runtime/Runtime.h"
#include "flexjit/runtime/SingleFlight.h"
#include "flexjit/support/Error.h"
#include "flexjit/support/Hash.h"
#include "flexjit/support/Timing.h"

namespace flexjit {

int spill_bytes(const std::string& ptxas_log) {
  int64_t bytes = 0;
  for (const PtxasFunctionReport& f : parse_ptxas_log(ptxas_log))
    bytes += f.spill_bytes();
  return static_cast<int>(bytes);
}

namespace cuda {
namespace {

constexpr size_t kLogBytes = 16384;

// (context, variant row, prepared mods): both live until exit, so their addresses
// identify them, and a repeated call neither prints nor hashes the mods.
using FastKey = std::tuple<CUcontext, const KernelVariant*, const PreparedMods*>;

// The memory limit's start value: FLEXJIT_MEMORY_CACHE_MAX_BYTES, else the default.
int64_t memory_limit_from_environment() {
  const char* limit = std::getenv("FLEXJIT_MEMORY_CACHE_MAX_BYTES");
  return limit && *limit ? DiskCache::parse_size(limit, "FLEXJIT_MEMORY_CACHE_MAX_BYTES")
                         : kDefaultMemoryCacheMaxBytes;
}

struct Cache {
  // One build per (context, key); concurrent requests wait for it.
  SingleFlight<std::pair<CUcontext, std::string>, std::shared_ptr<const LoadedKernel>> kernels;
  std::mutex mutex; // guards the rest
  std::map<FastKey, std::shared_ptr<const LoadedKernel>> fast;
  LruBudget<const LoadedKernel*> budget{memory_limit_from_environment()};
  KernelCacheStats stats;
  std::vector<std::string> warnings;
  std::vector<KernelBuildTimes> builds;
  DiskCache disk = DiskCache::from_environment();
};

Cache& cache() {
  static Cache* c = new Cache; // never destroyed: modules outlive static destruction order
  return *c;
}

// Modules whose kernels are gone (evicted or cleared, and released by every call), with
// the events of their last launches per stream: unloaded once every event has completed.
struct Retired {
  CUcontext context = nullptr;
  CUmodule module = nullptr;
  std::vector<CUevent> events;
};
struct RetiredList {
  std::mutex mutex;
  std::vector<Retired> modules;
};
RetiredList& retired() {
  static RetiredList* r = new RetiredList; // never destroyed, like the cache
  return *r;
}

// Unloads the retired modules none of whose launches can still run; the others wait for a
// later sweep. An event that reports an error other than "not ready" (a failed context)
// counts as finished: nothing of that context runs any more.
void sweep_retired() {
  std::vector<Retired> done;
  {
    RetiredList& r = retired();
    std::lock_guard lock(r.mutex);
    if (r.modules.empty())
      return;
    const Driver& d = driver();
    std::erase_if(r.modules, [&](Retired& m) {
      for (CUevent e : m.events)
        if (d.cuEventQuery(e) == CUDA_ERROR_NOT_READY)
          return false;
      done.push_back(std::move(m));
      return true;
    });
  }
  const Driver& d = driver();
  for (const Retired& m : done) {
    d.cuCtxPushCurrent(m.context);
    for (CUevent e : m.events)
      d.cuEventDestroy(e);
    d.cuModuleUnload(m.module);
    CUcontext popped = nullptr;
    d.cuCtxPopCurrent(&popped);
  }
  if (!done.empty()) {
    Cache& c = cache();
    std::lock_guard lock(c.mutex);
    c.stats.unloads += done.size();
  }
}

std::string trim_log(const char* log) {
  std::string s(log);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0'))
    s.pop_back();
  return s;
}

// PTX -> cubin with the driver's linker; the JIT error log goes into the Error.
// The driver JIT's options: its info and error logs (verbose: registers and spills) and
// the optimization level.
struct JitOptions {
  static constexpr int kCount = 6;
  std::vector<char> info = std::vector<char>(kLogBytes, 0), error = std::vector<char>(kLogBytes, 0);
  CUjit_option options[kCount] = {CU_JIT_INFO_LOG_BUFFER,  CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
                                  CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                                  CU_JIT_LOG_VERBOSE,      CU_JIT_OPTIMIZATION_LEVEL};
  void* values[kCount] = {};
  JitOptions() {
    // FLEXJIT_JIT_OPT_LEVEL (0-4, default 4): the driver's PTX optimization level, for
    // telling a driver miscompile from ours (docs/ptxas_vimnmx3_neg). Part of no cache
    // key: use it with FLEXJIT_CACHE=0 or a fresh FLEXJIT_CACHE_DIR.
    const char* level_env = std::getenv("FLEXJIT_JIT_OPT_LEVEL");
    const unsigned level =
        level_env && *level_env ? static_cast<unsigned>(std::atoi(level_env)) : 4u;
    values[0] = info.data();
    values[1] = reinterpret_cast<void*>(kLogBytes);
    values[2] = error.data();
    values[3] = reinterpret_cast<void*>(kLogBytes);
    values[4] = reinterpret_cast<void*>(1);
    values[5] = reinterpret_cast<void*>(static_cast<uintptr_t>(std::min(level, 4u)));
  }
  // The JIT's outcome for kernel `entry`: Error with the driver's error log, or its info log.
  void finish(CUresult r, const std::string& entry, std::string* info_log) const {
    if (r != CUDA_SUCCESS) {
      const char* name = "?";
      driver().cuGetErrorName(r, &name);
      fail("the CUDA driver could not assemble kernel '{}' ({}); JIT error log:\n{}", entry, name,
           trim_log(error.data()));
    }
    *info_log = trim_log(info.data());
  }
};

// PTX -> a loaded module by the driver's JIT as one whole program (cuModuleLoadDataEx), for
// kernels that the linker's relocatable compilation would spill: it ignores setmaxnreg's
// register budgets (KernelVariant::whole_program). There is no cubin to keep: the disk
// cache keeps the PTX, which cuModuleLoadData takes too (the driver's own cache then
// serves its compilation).
void load_whole_program(const std::string& ptx, const std::string& entry, CUmodule* module,
                        std::string* info_log) {
  JitOptions jit;
  jit.finish(
      driver().cuModuleLoadDataEx(module, ptx.c_str(), JitOptions::kCount, jit.options, jit.values),
      entry, info_log);
}

std::string link_cubin(const std::string& ptx, const std::string& entry, std::string* info_log) {
  const Driver& d = driver();
  JitOptions jit;
  CUlinkState state = nullptr;
  check(d.cuLinkCreate(JitOptions::kCount, jit.options, jit.values, &state), "cuLinkCreate");
  struct Destroy {
    const Driver& d;
    CUlinkState s;
    ~Destroy() { d.cuLinkDestroy(s); }
  } destroy{d, state};
  CUresult r = d.cuLinkAddData(state, CU_JIT_INPUT_PTX, const_cast<char*>(ptx.c_str()),
                               ptx.size() + 1, entry.c_str(), 0, nullptr, nullptr);
  void* cubin = nullptr;
  size_t cubin_bytes = 0;
  if (r == CUDA_SUCCESS)
    r = d.cuLinkComplete(state, &cubin, &cubin_bytes);
  jit.finish(r, entry, info_log);
  return std::string(static_cast<const char*>(cubin), cubin_bytes);
}

// Loads a cubin; false (and nothing loaded) when the driver rejects it.
bool load_module(const std::string& cubin, CUmodule* module) {
  return driver().cuModuleLoadData(module, cubin.data()) == CUDA_SUCCESS;
}

void finish(LoadedKernel& k, const std::string& info_log) {
  const Driver& d = driver();
  check(d.cuModuleGetFunction(&k.function, k.module, k.entry()), "cuModuleGetFunction");
  check(d.cuFuncGetAttribute(&k.registers, CU_FUNC_ATTRIBUTE_NUM_REGS, k.function),
        "cuFuncGetAttribute(NUM_REGS)");
  check(d.cuFuncGetAttribute(&k.local_bytes, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, k.function),
        "cuFuncGetAttribute(LOCAL_SIZE_BYTES)");
  // The linker's verbose log names spills; a cubin from disk has only the attribute.
  if (const int bytes = spill_bytes(info_log); bytes > 0)
    k.warnings.push_back(
        fmt::format("kernel {} ({}) spills registers: {} bytes spill stores + loads", k.entry(),
                    k.key.substr(0, 12), bytes));
  else if (k.local_bytes > k.variant->local_array_bytes)
    k.warnings.push_back(fmt::format("kernel {} ({}) uses {} bytes of local memory per thread "
                                     "(register spills)",
                                     k.entry(), k.key.substr(0, 12), k.local_bytes));
}

// DSL -> PTX -> cubin (the driver's link) for one variant, timed.
struct Built {
  std::string cubin, info_log;
  double dsl_to_ptx_ms = 0, ptx_to_cubin_ms = 0;
};

Built build_cubin(const KernelVariant& variant, const PreparedMods& mods, int min_ctas_per_sm) {
  Built out;
  auto start = Clock::now();
  const CompiledKernel compiled = compile_variant(variant, mods, min_ctas_per_sm);
  out.dsl_to_ptx_ms = ms_since(start);
  start = Clock::now();
  out.cubin = link_cubin(compiled.ptx, compiled.entry, &out.info_log);
  out.ptx_to_cubin_ms = ms_since(start);
  return out;
}

// DSL -> PTX -> loaded, for a whole-program variant: the PTX is what the disk keeps.
std::string build_whole_program(const KernelVariant& variant, const PreparedMods& mods,
                                CUmodule* module, std::string* info_log, KernelBuildTimes* times) {
  auto start = Clock::now();
  CompiledKernel compiled = compile_variant(variant, mods);
  times->dsl_to_ptx_ms = ms_since(start);
  start = Clock::now();
  load_whole_program(compiled.ptx, compiled.entry, module, info_log);
  times->ptx_to_cubin_ms = ms_since(start);
  return std::move(compiled.ptx);
}

std::shared_ptr<const LoadedKernel> build(const KernelVariant& variant, const PreparedMods& mods,
                                          const std::string& key, bool* from_disk,
                                          KernelBuildTimes* times) {
  Cache& c = cache();
  auto start = Clock::now();
  auto k = std::make_shared<LoadedKernel>();
  k->key = key;
  k->variant = &variant;
  check(driver().cuCtxGetCurrent(&k->context), "cuCtxGetCurrent");
  std::string info_log;
  *from_disk = false;
  if (std::optional<std::string> cubin = c.disk.load(key);
      cubin && load_module(*cubin, &k->module)) {
    *from_disk = true;
    k->image_bytes = static_cast<int64_t>(cubin->size());
  }
  if (!*from_disk && variant.whole_program) {
    const std::string ptx = build_whole_program(variant, mods, &k->module, &info_log, times);
    k->image_bytes = static_cast<int64_t>(ptx.size());
    start = Clock::now();
    c.disk.store(key, ptx + '\0'); // cuModuleLoadData reads PTX up to its NUL
  } else if (!*from_disk) {
    start = Clock::now(); // a failed disk lookup is not load time
    // A kernel that spills more than kMaxSpillBytes at the template's CTAs per SM (sm_90a
    // attention: two, so at most 128 registers) is replaced by its build for one CTA per
    // SM (twice the registers). That build runs beside the first, in its own thread, so
    // the choice costs CPU time but no latency. The disk cache keeps the kernel chosen,
    // under the variant's key.
    std::future<Built> roomy;
    if (variant.one_cta_build) {
      CUcontext ctx = nullptr;
      check(driver().cuCtxGetCurrent(&ctx), "cuCtxGetCurrent");
      roomy = std::async(std::launch::async, [&variant, &mods, ctx] {
        check(driver().cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
        return build_cubin(variant, mods, /*min_ctas_per_sm=*/1);
      });
    }
    Built built = build_cubin(variant, mods, 0);
    times->dsl_to_ptx_ms = built.dsl_to_ptx_ms;
    times->ptx_to_cubin_ms = built.ptx_to_cubin_ms;
    if (roomy.valid()) {
      const auto waited = Clock::now();
      roomy.wait();
      if (const int bytes = spill_bytes(built.info_log); bytes > kMaxSpillBytes) {
        built = roomy.get();
        times->ptx_to_cubin_ms += ms_since(waited);
        k->warnings.push_back(fmt::format(
            "kernel {} ({}) spills {} bytes at the template's CTAs per SM; using its build for "
            "one CTA per SM ({} bytes spill)",
            k->entry(), key.substr(0, 12), bytes, spill_bytes(built.info_log)));
      }
    }
    info_log = built.info_log;
    const std::string& cubin = built.cubin;
    k->image_bytes = static_cast<int64_t>(cubin.size());
    start = Clock::now();
    if (!load_module(cubin, &k->module))
      check(driver().cuModuleLoadData(&k->module, cubin.data()), "cuModuleLoadData");
    c.disk.store(key, cubin);
  }
  finish(*k, info_log);
  for (int i = 0; i < variant.num_companions; ++i)
    check(driver().cuModuleGetFunction(&k->companions[i], k->module,
                                       variant.companions[i].shape.entry),
          "cuModuleGetFunction");
  if (variant.main.smem_bytes > 0)
    check(driver().cuFuncSetAttribute(k->function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                      variant.main.smem_bytes),
          "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
  times->entry = k->entry();
  times->from_disk = *from_disk;
  times->load_ms = ms_since(start);
  return k;
}

} // namespace

LoadedKernel::~LoadedKernel() {
  // A kernel a graph captured stays loaded until exit (the graph may replay it), even when
  // clear_kernel_memory_cache dropped it.
  if (module == nullptr || fences.pinned.load(std::memory_order_relaxed))
    return;
  Retired r{context, module, {}};
  for (const auto& [stream_id, event] : fences.events)
    r.events.push_back(event);
  RetiredList& list = retired();
  std::lock_guard lock(list.mutex);
  list.modules.push_back(std::move(r));
}

namespace {

// Records k's launch on `stream` (LaunchFences): pins k when the stream is capturing a
// graph, else re-records the stream's event (made at its first launch there).
void note_launch(const LoadedKernel& k, CUstream stream) {
  const Driver& d = driver();
  LaunchFences& f = k.fences;
  // A stream the driver cannot answer for pins the kernel too: staying loaded is safe.
  CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
  unsigned long long id = 0;
  if (d.cuStreamIsCapturing(stream, &capture) != CUDA_SUCCESS ||
      capture != CU_STREAM_CAPTURE_STATUS_NONE || d.cuStreamGetId(stream, &id) != CUDA_SUCCESS) {
    f.pinned.store(true, std::memory_order_relaxed);
    return;
  }
  std::lock_guard lock(f.mutex);
  auto it = std::find_if(f.events.begin(), f.events.end(),
                         [&](const auto& entry) { return entry.first == id; });
  if (it == f.events.end()) {
    CUevent event = nullptr;
    check(d.cuEventCreate(&event, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    f.events.emplace_back(id, event);
    it = f.events.end() - 1;
  }
  check(d.cuEventRecord(it->second, stream), "cuEventRecord");
}

void launch_function(const LoadedKernel& k, CUfunction function, const KernelShape& shape,
                     const LaunchSizes& sizes, CUstream stream, void** args) {
  const GridDims grid = grid_dims(shape, sizes);
  check(driver().cuLaunchKernel(function, grid.x, grid.y, grid.z,
                                static_cast<unsigned>(shape.threads), 1, 1,
                                static_cast<unsigned>(shape.smem_bytes), stream, args, nullptr),
        k.entry());
  note_launch(k, stream);
}

} // namespace

void launch(const LoadedKernel& k, const LaunchSizes& sizes, CUstream stream, void** args) {
  launch_function(k, k.function, k.variant->main, sizes, stream, args);
}

void launch(const LoadedKernel& k, CompanionRole role, const LaunchSizes& sizes, CUstream stream,
            void** args) {
  launch_function(k, k.companion(role), *k.variant->companion(role), sizes, stream, args);
}

CUfunction LoadedKernel::companion(CompanionRole role) const {
  for (int i = 0; i < variant->num_companions; ++i)
    if (variant->companions[i].role == role)
      return companions[i];
  FLEXJIT_ASSERT(false, "kernel {} has no companion of role {}", entry(), static_cast<int>(role));
}

namespace {

// Evicts least recently used kernels past the memory limit (never `keep`, nor a pinned
// one): out of the memory maps, so the next request loads them again (from disk). Their
// modules retire when the last call holding them lets go. Called with c.mutex held.
void evict_over_limit(Cache& c, const LoadedKernel* keep) {
  const std::vector<const LoadedKernel*> gone = c.budget.evict(keep, [](const LoadedKernel* k) {
    return !k->fences.pinned.load(std::memory_order_relaxed);
  });
  if (gone.empty())
    return;
  std::vector<std::shared_ptr<const LoadedKernel>> last; // released after the maps' entries
  for (const LoadedKernel* k : gone) {
    std::erase_if(c.fast, [&](const auto& entry) {
      if (entry.second.get() != k)
        return false;
      last.push_back(entry.second);
      return true;
    });
    c.kernels.erase_if({k->context, k->key},
                       [&](const std::shared_ptr<const LoadedKernel>& v) { return v.get() == k; });
  }
  c.stats.evictions += gone.size();
}

} // namespace

std::shared_ptr<const LoadedKernel> get_kernel(const Target& target, const KernelVariant& variant,
                                               const PreparedMods& mods) {
  FLEXJIT_ASSERT(runs_on(variant.arch, target.arch), "a {} kernel does not run on {}",
                 variant.describe(), to_string(target.arch));
  const CUcontext ctx = ensure_context();
  Cache& c = cache();
  const FastKey fast_key{ctx, &variant, &mods};
  {
    std::lock_guard lock(c.mutex);
    if (auto it = c.fast.find(fast_key); it != c.fast.end()) {
      ++c.stats.memory_hits;
      c.budget.use(it->second.get());
      return it->second;
    }
  }

  sweep_retired(); // a miss: the time to unload what earlier evictions retired
  const std::string key = hash_text(kernel_key_text(variant, mods) + target.key_text()).hex();
  bool from_disk = false;
  KernelBuildTimes times;
  const auto [value, built] =
      c.kernels.get({ctx, key}, [&] { return build(variant, mods, key, &from_disk, &times); });
  std::lock_guard lock(c.mutex);
  c.fast[fast_key] = value;
  // A waiter may get a kernel that another thread's eviction has taken out of the maps
  // meanwhile: inserting it again keeps every kernel in c.fast counted.
  c.budget.insert(value.get(), value->image_bytes);
  evict_over_limit(c, value.get());
  if (!built) {
    ++c.stats.memory_hits;
    return value;
  }
  ++(from_disk ? c.stats.disk_hits : c.stats.compiles);
  c.builds.push_back(times);
  for (const std::string& w : value->warnings) {
    c.warnings.push_back(w);
    std::fprintf(stderr, "flexjit warning: %s\n", w.c_str());
  }
  return value;
}

} // namespace cuda

std::vector<KernelBuildTimes> kernel_build_log() {
  cuda::Cache& c = cuda::cache();
  std::lock_guard lock(c.mutex);
  return c.builds;
}

KernelCacheStats kernel_cache_stats() {
  cuda::Cache& c = cuda::cache();
  std::lock_guard lock(c.mutex);
  return c.stats;
}

void clear_kernel_memory_cache() {
  cuda::Cache& c = cuda::cache();
  std::lock_guard lock(c.mutex);
  c.fast.clear();
  c.budget.clear();
  c.kernels.clear();
}

int64_t kernel_memory_cache_limit() {
  cuda::Cache& c = cuda::cache();
  std::lock_guard lock(c.mutex);
  return c.budget.max_bytes();
}

void set_kernel_memory_cache_limit(int64_t bytes) {
  if (bytes <= 0)
    fail("set_kernel_memory_cache_limit({}): the limit must be a positive number of bytes", bytes);
  cuda::Cache& c = cuda::cache();
  std::lock_guard lock(c.mutex);
  c.budget.set_max_bytes(bytes);
}

int64_t kernel_memory_cache_bytes() {
  cuda::Cache& c = cuda::cache();
  std::lock_guard lock(c.mutex);
  return c.budget.bytes();
}

std::string kernel_cache_directory() {
  return cuda::cache().disk.directory();
}

std::vector<std::string> kernel_warnings() {
  cuda::Cache& c = cuda::cache();
  std::lock_guard lock(c.mutex);
  return c.warnings;
}

} // namespace flexjit
