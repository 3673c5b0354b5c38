// The kernel cache. Memory: loaded modules by (context, mods' node identity,
// variant), then by (context, key). Disk: the cubin the driver's linker made
// from the PTX, keyed by the kernel key text plus the device's compute
// capability and the driver version (the cubin is the driver's ptxas output).
// A disk entry that does not verify (DiskCache) or that cuModuleLoadData
// rejects is a miss: the kernel is compiled again and the entry overwritten.
#include "runtime/KernelCache.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <regex>
#include <tuple>

#include "codegen/KernelKey.h"
#include "codegen/templates/attention_abi.h"
#include "compiler/Passes.h"
#include "dsl/Error.h"
#include "runtime/Context.h"
#include "runtime/CudaDriver.h"
#include "runtime/DiskCache.h"
#include "runtime/Runtime.h"
#include "runtime/SingleFlight.h"

namespace flexjit {
namespace cuda {
namespace {

constexpr size_t kLogBytes = 16384;

// (context, mask node, score node, template, arch, dtype, head dim): the
// hash-consed nodes make structurally equal mods pointer-equal, so a repeated
// call skips optimizing and printing the mods. The Exprs are kept alive so
// their addresses are never reused.
using FastKey = std::tuple<CUcontext, const void*, const void*, int, int, int, int>;
struct FastEntry {
  Expr mask, score;
  std::shared_ptr<const LoadedKernel> kernel;
};

struct Cache {
  // One build per (context, key); concurrent requests wait for it.
  SingleFlight<std::pair<CUcontext, std::string>, std::shared_ptr<const LoadedKernel>> kernels;
  std::mutex mutex; // guards the rest
  std::map<FastKey, FastEntry> fast;
  KernelCacheStats stats;
  std::vector<std::string> warnings;
  std::vector<KernelBuildTimes> builds;
  DiskCache disk = DiskCache::from_environment();
};

Cache& cache() {
  static Cache* c = new Cache; // never destroyed: modules outlive static destruction order
  return *c;
}

std::string trim_log(const char* log) {
  std::string s(log);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0'))
    s.pop_back();
  return s;
}

// PTX -> cubin with the driver's linker; the JIT error log goes into the Error.
std::string link_cubin(const std::string& ptx, const std::string& entry, std::string* info_log) {
  const Driver& d = driver();
  std::vector<char> info(kLogBytes, 0), error(kLogBytes, 0);
  // FLEXJIT_JIT_OPT_LEVEL (0-4, default 4): the driver's PTX optimization level, for
  // telling a driver miscompile from ours (docs/ptxas_vimnmx3_neg). Part of no cache key:
  // use it with FLEXJIT_CACHE=0 or a fresh FLEXJIT_CACHE_DIR.
  const char* level_env = std::getenv("FLEXJIT_JIT_OPT_LEVEL");
  const unsigned level = level_env && *level_env ? static_cast<unsigned>(std::atoi(level_env)) : 4u;
  CUjit_option options[] = {CU_JIT_INFO_LOG_BUFFER,  CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
                            CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                            CU_JIT_LOG_VERBOSE,      CU_JIT_OPTIMIZATION_LEVEL};
  void* values[] = {info.data(),
                    reinterpret_cast<void*>(kLogBytes),
                    error.data(),
                    reinterpret_cast<void*>(kLogBytes),
                    reinterpret_cast<void*>(1),
                    reinterpret_cast<void*>(static_cast<uintptr_t>(std::min(level, 4u)))};
  CUlinkState state = nullptr;
  check(d.cuLinkCreate(6, options, values, &state), "cuLinkCreate");
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
  if (r != CUDA_SUCCESS) {
    const char* name = "?";
    d.cuGetErrorName(r, &name);
    fail("the CUDA driver could not assemble kernel '{}' ({}); JIT error log:\n{}", entry, name,
         trim_log(error.data()));
  }
  *info_log = trim_log(info.data());
  return std::string(static_cast<const char*>(cubin), cubin_bytes);
}

// Loads a cubin; false (and nothing loaded) when the driver rejects it.
bool load_module(const std::string& cubin, CUmodule* module) {
  return driver().cuModuleLoadData(module, cubin.data()) == CUDA_SUCCESS;
}

// The spill stores ptxas reported in a verbose link log (0 when none).
int spill_store_bytes(const std::string& info_log) {
  static const std::regex spills(R"(([1-9]\d*) bytes spill stores)");
  std::smatch m;
  return std::regex_search(info_log, m, spills) ? std::stoi(m[1].str()) : 0;
}

void finish(LoadedKernel& k, const std::string& info_log) {
  const Driver& d = driver();
  check(d.cuModuleGetFunction(&k.function, k.module, k.entry.c_str()), "cuModuleGetFunction");
  check(d.cuFuncGetAttribute(&k.registers, CU_FUNC_ATTRIBUTE_NUM_REGS, k.function),
        "cuFuncGetAttribute(NUM_REGS)");
  check(d.cuFuncGetAttribute(&k.local_bytes, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, k.function),
        "cuFuncGetAttribute(LOCAL_SIZE_BYTES)");
  // The linker's verbose log names spills; a cubin from disk has only the attribute.
  if (const int bytes = spill_store_bytes(info_log); bytes > 0)
    k.warnings.push_back(fmt::format("kernel {} ({}) spills registers: {} bytes spill stores",
                                     k.entry, k.key.substr(0, 12), bytes));
  else if (k.local_bytes > 0)
    k.warnings.push_back(fmt::format("kernel {} ({}) uses {} bytes of local memory per thread "
                                     "(register spills)",
                                     k.entry, k.key.substr(0, 12), k.local_bytes));
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// DSL -> PTX -> cubin (the driver's link) for one spec, timed.
struct Built {
  std::string cubin, info_log;
  double dsl_to_ptx_ms = 0, ptx_to_cubin_ms = 0;
};

Built build_cubin(const KernelSpec& spec) {
  Built out;
  auto start = std::chrono::steady_clock::now();
  const CompiledKernel compiled = compile_to_ptx(spec);
  out.dsl_to_ptx_ms = ms_since(start);
  start = std::chrono::steady_clock::now();
  out.cubin = link_cubin(compiled.ptx, compiled.entry, &out.info_log);
  out.ptx_to_cubin_ms = ms_since(start);
  return out;
}

std::shared_ptr<const LoadedKernel> build(const KernelSpec& spec, const ModSignature& sig,
                                          const std::string& key, bool* from_disk,
                                          KernelBuildTimes* times) {
  Cache& c = cache();
  auto start = std::chrono::steady_clock::now();
  auto k = std::make_shared<LoadedKernel>();
  k->key = key;
  k->entry = kernel_entry(spec);
  k->arch = spec.arch;
  k->signature = sig;
  std::string info_log;
  *from_disk = false;
  if (std::optional<std::string> cubin = c.disk.load(key); cubin && load_module(*cubin, &k->module))
    *from_disk = true;
  if (!*from_disk) {
    start = std::chrono::steady_clock::now(); // a failed disk lookup is not load time
    // A kernel that spills more than kMaxSpillBytes at the template's CTAs per SM (sm_90a
    // attention: two, so at most 128 registers) is replaced by its build for one CTA per
    // SM (twice the registers). That build runs beside the first, in its own thread, so
    // the choice costs CPU time but no latency. The disk cache keeps the kernel chosen,
    // under the spec's key.
    std::future<Built> roomy;
    if (const std::optional<KernelSpec> one_cta = one_cta_variant(spec)) {
      CUcontext ctx = nullptr;
      check(driver().cuCtxGetCurrent(&ctx), "cuCtxGetCurrent");
      roomy = std::async(std::launch::async, [one_cta = *one_cta, ctx] {
        check(driver().cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
        return build_cubin(one_cta);
      });
    }
    Built built = build_cubin(spec);
    times->dsl_to_ptx_ms = built.dsl_to_ptx_ms;
    times->ptx_to_cubin_ms = built.ptx_to_cubin_ms;
    if (roomy.valid()) {
      const auto waited = std::chrono::steady_clock::now();
      roomy.wait();
      if (const int bytes = spill_store_bytes(built.info_log); bytes > kMaxSpillBytes) {
        built = roomy.get();
        times->ptx_to_cubin_ms += ms_since(waited);
        k->warnings.push_back(fmt::format(
            "kernel {} ({}) spills {} bytes at the template's CTAs per SM; using its build for "
            "one CTA per SM ({} bytes spill)",
            k->entry, key.substr(0, 12), bytes, spill_store_bytes(built.info_log)));
      }
    }
    info_log = built.info_log;
    const std::string& cubin = built.cubin;
    start = std::chrono::steady_clock::now();
    if (!load_module(cubin, &k->module))
      check(driver().cuModuleLoadData(&k->module, cubin.data()), "cuModuleLoadData");
    c.disk.store(key, cubin);
  }
  finish(*k, info_log);
  if (spec.kind == TemplateKind::AttentionBackward) {
    for (const char* suffix : {"_pre", "_dq"}) {
      CUfunction f = nullptr;
      check(driver().cuModuleGetFunction(&f, k->module, (k->entry + suffix).c_str()),
            "cuModuleGetFunction");
      k->companions.push_back(f);
    }
    check(driver().cuFuncSetAttribute(
              k->function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
              flexjit_bwd_launch(spec.arch == Arch::SM90a, spec.head_dim).smem_bytes),
          "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
  }
  if (spec.kind == TemplateKind::AttentionForward)
    check(driver().cuFuncSetAttribute(
              k->function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
              flexjit_fwd_launch(spec.arch == Arch::SM90a, spec.head_dim).smem_bytes),
          "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)");
  times->entry = k->entry;
  times->from_disk = *from_disk;
  times->load_ms = ms_since(start);
  return k;
}

} // namespace

std::shared_ptr<const LoadedKernel> get_kernel(KernelSpec spec) {
  const CUcontext ctx = ensure_context();
  const DeviceInfo& device = current_device();
  // The device's architecture, or sm_80 where the caller asks for it (it runs everywhere).
  if (spec.arch != Arch::SM80)
    spec.arch = device.arch;
  Cache& c = cache();
  const FastKey fast_key{ctx,
                         spec.mask.body().get(),
                         spec.score.body().get(),
                         static_cast<int>(spec.kind),
                         static_cast<int>(spec.arch),
                         is_attention(spec.kind) ? static_cast<int>(spec.dtype) : 0,
                         is_attention(spec.kind) ? spec.head_dim : 0};
  {
    std::lock_guard lock(c.mutex);
    if (auto it = c.fast.find(fast_key); it != c.fast.end()) {
      ++c.stats.memory_hits;
      return it->second.kernel;
    }
  }

  type_check(spec.mask);
  type_check(spec.score);
  const Expr mask = optimize(spec.mask.body());
  const Expr score = optimize(spec.score.body());
  const ModSignature sig = ModSignature::of({mask, score});
  const std::string key = hash_text(fmt::format("{}device sm_{}{}\ndriver {}\n",
                                                kernel_key_text(spec, mask, score, sig),
                                                device.major, device.minor, device.driver_version))
                              .hex();

  bool from_disk = false;
  KernelBuildTimes times;
  const auto [value, built] =
      c.kernels.get({ctx, key}, [&] { return build(spec, sig, key, &from_disk, &times); });
  std::lock_guard lock(c.mutex);
  c.fast[fast_key] = {spec.mask.body(), spec.score.body(), value};
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
  {
    std::lock_guard lock(c.mutex);
    c.fast.clear();
  }
  c.kernels.clear();
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
