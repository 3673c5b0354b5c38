// flex_attention on a real device, against the float64 CPU reference, and the kernel
// cache (memory, disk, concurrent callers) it goes through. The GPU block-mask builder
// alone is in test_blockmask_gpu.cpp. Every test skips cleanly without a CUDA device.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <limits>
#include <random>
#include <set>
#include <thread>

#include <flexjit/flexjit.h>

#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/DeviceBindings.h"
#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/HalfFloat.h"
#include "flexjit/testing/SeedMods.h"

#include "AttentionCases.h"
#include "Instantiations.h"

using namespace flexjit;
using Catch::Contains;
using namespace flexjit::testing;

namespace {

FlexAttentionOptions::Schedule schedule_of(const Instantiation& kernel) {
  return kernel.persistent ? FlexAttentionOptions::Schedule::Persistent
                           : FlexAttentionOptions::Schedule::OneTilePerCta;
}

struct Variant {
  std::string name;
  MaskMod mask;
  ScoreMod score;
  bool use_block_mask = true;
};

} // namespace

namespace {

void check_variants(const Instantiation& kernel) {
  const int S = 384;
  std::vector<int32_t> doc_ids(S);
  for (int i = 0; i < S; ++i)
    doc_ids[i] = i < 100 ? 0 : (i < 250 ? 1 : 2);
  const std::vector<float> slopes = seeds::alibi_slopes(4);
  const std::vector<Variant> variants = {
      {"noop", MaskMod(), ScoreMod(), false},
      {"causal", seeds::causal(), ScoreMod(), true},
      {"sliding_window(64)", seeds::sliding_window(64), ScoreMod(), true},
      {"prefix_lm(100)", seeds::prefix_lm(100), ScoreMod(), true},
      {"document", seeds::document(doc_ids), ScoreMod(), true},
      {"sasa(16, 2)", seeds::sasa(16, 2), ScoreMod(), true},
      {"natten(16, 24, 5, 5)", seeds::natten(16, 24, 5, 5), ScoreMod(), true},
      {"alibi (functional), causal", seeds::causal(), seeds::alibi(4), true},
      {"alibi (buffer), causal", seeds::causal(), seeds::alibi_buffer(slopes), true},
      {"soft cap tanh", MaskMod(), seeds::soft_cap(20.0f, false), false},
      {"soft cap tanh_approx", seeds::causal(), seeds::soft_cap(20.0f, true), true},
      {"checkerboard", MaskMod(), seeds::checkerboard(), false},
      {"document + alibi buffer", seeds::document(doc_ids), seeds::alibi_buffer(slopes), true},
  };
  for (const Variant& var : variants) {
    Case c;
    c.q_len = c.kv_len = S;
    c.D = kernel.head_dim;
    c.Dv = kernel.head_dim_v;
    c.dtype = kernel.dtype;
    c.schedule = schedule_of(kernel);
    c.mask = var.mask;
    c.score = var.score;
    c.use_block_mask = var.use_block_mask;
    check(c, var.name);
  }
}

} // namespace

// Every seed-003 variant on every forward instantiation of the variant table, one
// generated case (a section named "<dtype> d<head dim>") at a time.
TEST_CASE("gpu: every seed-003 variant matches the float64 reference", "[gpu][attention]") {
  SKIP_WITHOUT_CUDA();
  const Instantiation kernel = GENERATE(from_range(instantiations(TemplateKind::AttentionForward)));
  SECTION(kernel.name()) {
    check_variants(kernel);
  }
}

// Ragged ends on every forward instantiation: lengths 1, 127, 129 and 1000 (tiles of 128
// rows: one row, one short, one over, many tiles and a partial last one), Q != KV both ways,
// GQA 32 / 4, BHSD and BSHD, with and without a block mask.
TEST_CASE("gpu: lengths 1, 127, 129 and 1000 with GQA 32/4 on every head dim", "[gpu][attention]") {
  SKIP_WITHOUT_CUDA();
  const Instantiation kernel = GENERATE(from_range(instantiations(TemplateKind::AttentionForward)));
  SECTION(kernel.name()) {
    const std::pair<int, int> lengths[] = {{1, 1}, {1, 1000}, {127, 129}, {129, 127}, {1000, 1000}};
    int i = 0;
    for (auto [Q, KV] : lengths) {
      Case c;
      c.B = 1;
      c.Hq = 32;
      c.Hkv = 4;
      c.q_len = Q;
      c.kv_len = KV;
      c.D = kernel.head_dim;
      c.Dv = kernel.head_dim_v;
      c.dtype = kernel.dtype;
      c.schedule = schedule_of(kernel);
      c.bshd = i % 2 == 1;
      c.mask = i % 3 == 0 ? MaskMod() : seeds::causal();
      c.use_block_mask = i % 3 != 0;
      c.score = i % 2 ? seeds::soft_cap(20.0f) : ScoreMod();
      c.sample_rows = Q > 256 ? 96 : 0;
      c.seed = static_cast<uint32_t>(40 + i++);
      check(c, "ragged GQA 32/4");
    }
  }
}

// Each token's sequence, for sequences packed back to back from `offsets` (their starts and the
// total).
static std::vector<int32_t> sequence_of_tokens(const std::vector<int32_t>& offsets) {
  std::vector<int32_t> seq_idx;
  for (size_t s = 0; s + 1 < offsets.size(); ++s)
    seq_idx.insert(seq_idx.end(), static_cast<size_t>(offsets[s + 1] - offsets[s]),
                   static_cast<int32_t>(s));
  return seq_idx;
}

TEST_CASE("gpu: jagged sequences packed with offsets", "[gpu][attention]") {
  SKIP_WITHOUT_CUDA();
  const std::vector<int32_t> offsets = {0, 100, 250, 600, 1000};
  const std::vector<int32_t> seq_idx = sequence_of_tokens(offsets);
  const DType dtype = GENERATE(values({DType::F16, DType::BF16}));
  SECTION(std::string(to_string(dtype))) {
    Case c;
    c.B = 1;
    c.q_len = c.kv_len = 1000;
    c.dtype = dtype;
    c.D = dtype == DType::F16 ? 64 : 128;
    c.mask = seeds::jagged_causal(offsets, seq_idx);
    check(c, "jagged causal");
  }
}

// jagged_causal reads offsets[seq_idx[q]]: with sequence ids outside offsets, the CPU builder
// raises, the GPU builder and the kernel read 0 and report through the device error word
// (a predicated load: never outside the buffer), and the next call or check_device_errors
// raises it, once.
TEST_CASE("gpu: a data-indexed load outside its buffer is a device error", "[gpu][attention]") {
  SKIP_WITHOUT_CUDA();
  const std::vector<int32_t> offsets = {0, 100, 250, 600, 1000};
  const std::vector<int32_t> good = sequence_of_tokens(offsets);
  std::vector<int32_t> bad = good;
  bad[700] = 5; // offsets has entries 0..4
  bad[901] = -3;
  std::mt19937 rng(11);
  auto [q, k, v, out] = make_attention_tensors(1, 2, 2, 1000, 1000, 64, 64, DType::F16, false, rng);
  const MaskMod mask = seeds::jagged_causal(offsets, bad);
  CHECK_THROWS_WITH(create_block_mask(mask, 1, 1, 1000, 1000),
                    Contains("buffer 'offsets' is read at index "));

  // The ids on the device in a buffer of their own, bound over the copy to_device made.
  DeviceBindings device = to_device({mask.body()});
  DeviceBuffer ids(1000 * 4);
  device.bindings.buffers["seq_idx"] = ids.view(DType::I32, {1000});
  // A block mask built on the GPU from `mask_ids`, then flex_attention reading `kernel_ids`.
  auto run = [&, &q = q, &k = k, &v = v, &out = out](const std::vector<int32_t>& mask_ids,
                                                     const std::vector<int32_t>& kernel_ids) {
    ids.upload(mask_ids.data(), mask_ids.size() * 4);
    BlockMaskOptions bo;
    bo.device = Device::Cuda;
    bo.bindings = device.bindings;
    const BlockMask bm = create_block_mask(mask, 1, 1, 1000, 1000, bo);
    ids.upload(kernel_ids.data(), kernel_ids.size() * 4);
    FlexAttentionOptions o;
    o.block_mask = &bm;
    o.bindings = device.bindings;
    flex_attention(q.view, k.view, v.view, out.view, o);
  };
  const char* reported = "a mod's load at an index read from buffer data";
  run(good, good);
  CHECK_NOTHROW(check_device_errors());
  // The block mask's kernel reports; flex_attention, the next call, raises before launching
  // when the mask's kernel has run by then (a read of the word, no synchronisation), else the
  // synchronising check after it.
  bool raised = false;
  try {
    run(bad, bad);
  } catch (const Error& e) {
    raised = true;
    CHECK_THAT(e.what(),
               Contains("flex_attention: a kernel of an earlier call found") && Contains(reported));
  }
  if (!raised)
    CHECK_THROWS_WITH(check_device_errors(), Contains(reported));
  CHECK_NOTHROW(check_device_errors()); // raised once
  // A block mask of good ids, the kernel reading bad ones (a partial tile evaluates every
  // point): check_device_errors raises after the kernel.
  run(good, bad);
  CHECK_THROWS_WITH(check_device_errors(), Contains(reported));
  run(good, good);
  CHECK_NOTHROW(check_device_errors());
}

TEST_CASE("gpu: Flamingo cross attention - Q != KV - fully masked rows", "[gpu][attention]") {
  SKIP_WITHOUT_CUDA();
  std::vector<int32_t> image_of_token;
  for (int i = 0; i < 4 * 16; ++i)
    image_of_token.push_back(i / 16);
  // Text rows [0, 10) see no image: out 0, lse -inf.
  const std::vector<int32_t> intervals = {10, 50, 50, 120, 120, 200, 200, 300};
  // Every forward instantiation of the variant table, one at a time.
  const Instantiation kernel = GENERATE(from_range(instantiations(TemplateKind::AttentionForward)));
  SECTION(kernel.name()) {
    Case c;
    c.q_len = 300;
    c.kv_len = 64;
    c.D = kernel.head_dim;
    c.Dv = kernel.head_dim_v;
    c.dtype = kernel.dtype;
    c.schedule = schedule_of(kernel);
    c.mask = seeds::vision_cross_attention(image_of_token, intervals);
    const Outcome r = run_case(c);
    CHECK(r.empty_rows == 10 * c.B * c.Hq);
    check(c, "flamingo");
  }
}

TEST_CASE("gpu: GQA - odd lengths and BSHD strides", "[gpu][attention]") {
  SKIP_WITHOUT_CUDA();
  const std::pair<int, int> lengths[] = {{37, 37}, {300, 517}, {517, 300}, {37, 517}, {129, 65}};
  int i = 0;
  for (auto [Q, KV] : lengths)
    for (bool bshd : {false, true}) {
      Case c;
      c.B = 2;
      c.Hq = 6;
      c.Hkv = i % 2 ? 3 : 1;
      c.q_len = Q;
      c.kv_len = KV;
      c.D = i % 3 == 0 ? 128 : 64;
      c.dtype = i % 2 ? DType::BF16 : DType::F16;
      c.bshd = bshd;
      c.mask = i % 2 ? seeds::causal() : seeds::sliding_window(50);
      c.score = i % 4 == 1 ? seeds::soft_cap(20.0f) : ScoreMod();
      c.seed = static_cast<uint32_t>(i++);
      check(c, bshd ? "GQA BSHD" : "GQA BHSD");
    }
}

// Split-KV decoding (codegen/templates/attention_decode_ws.cu) on every head dim of the table:
// q_len 1 to 16 with the query heads of a kv head packed into one tile (groups of 4 and 8, no
// GQA), kv lengths that are not tile multiples, BHSD and BSHD, many splits (the combine) and
// one (B * Hq fills the SMs: the kernel's own epilogue), with and without a block mask,
// score_mods that read the head (ALiBi: each packed row has its own), a per-head block mask
// (one head per CTA) with q_block 16 and a head nothing attends (out 0, lse -inf).
TEST_CASE("gpu: split-KV decoding on every head dim", "[gpu][attention][decode]") {
  SKIP_WITHOUT_CUDA();
  const Instantiation kernel =
      GENERATE(filter([](const Instantiation& i) { return !i.persistent; },
                      from_range(instantiations(TemplateKind::AttentionForward))));
  SECTION(kernel.name()) {
    struct Shape {
      int B, Hq, Hkv, q_len, kv_len;
      bool bshd;
    };
    const Shape shapes[] = {{3, 8, 2, 1, 1000, false},
                            {2, 8, 1, 5, 300, true},
                            {40, 4, 4, 16, 129, false},
                            {1, 8, 2, 3, 700, true}};
    int i = 0;
    for (const Shape& sh : shapes) {
      Case c;
      c.B = sh.B;
      c.Hq = sh.Hq;
      c.Hkv = sh.Hkv;
      c.q_len = sh.q_len;
      c.kv_len = sh.kv_len;
      c.bshd = sh.bshd;
      c.D = kernel.head_dim;
      c.Dv = kernel.head_dim_v;
      c.dtype = kernel.dtype;
      c.schedule = FlexAttentionOptions::Schedule::SplitKv;
      c.seed = static_cast<uint32_t>(70 + i);
      switch (i++) {
      case 0:
        c.use_block_mask = false;
        break;
      case 1:
        c.mask = seeds::prefix_lm(100);
        c.score = seeds::alibi(sh.Hq);
        break;
      case 2:
        c.mask = seeds::causal();
        c.score = seeds::soft_cap(20.0f);
        break;
      default: // head 1 attends nothing; the others the last 500 keys
        c.mask =
            mask_mod("head_window", [](Idx, Idx h, Idx, Idx kv) { return h != 1 && kv >= 200; });
        c.per_head_mask = true;
        c.q_block = 16;
        c.score = seeds::alibi(sh.Hq);
        break;
      }
      const Outcome r = run_case(c);
      if (i == 4)
        CHECK(r.empty_rows == c.B * c.q_len);
      check_outcome(c, "decode", r);
    }
  }
}

// The decode step of issue 13's measurement (B 32, Hq 32, Hkv 8, one query row, kv_len 8192,
// bf16 D = 128) as Auto schedules it, on sampled rows.
TEST_CASE("gpu: a decode step at kv_len 8192 as Auto schedules it", "[gpu][attention][decode]") {
  SKIP_WITHOUT_CUDA();
  Case c;
  c.B = 32;
  c.Hq = 32;
  c.Hkv = 8;
  c.q_len = 1;
  c.kv_len = 8192;
  c.D = 128;
  c.dtype = DType::BF16;
  c.use_block_mask = false;
  c.sample_rows = 64;
  check(c, "decode step");
}

TEST_CASE("gpu: a new param value runs without recompiling", "[gpu][attention][runtime]") {
  SKIP_WITHOUT_CUDA();
  Case c;
  c.q_len = c.kv_len = 512;
  c.mask = seeds::sliding_window(64);
  c.host_bindings.params["window"] = 64;
  check(c, "sliding window 64");
  const KernelCacheStats before = kernel_cache_stats();
  for (int window : {0, 200, 511}) {
    c.host_bindings.params["window"] = window;
    check(c, fmt::format("sliding window {}", window));
  }
  const KernelCacheStats after = kernel_cache_stats();
  CHECK(after.compiles == before.compiles);
  CHECK(after.disk_hits == before.disk_hits);
  CHECK(after.memory_hits > before.memory_hits);
}

TEST_CASE("gpu: the kernel cache serves memory - then disk", "[gpu][attention][runtime]") {
  SKIP_WITHOUT_CUDA();
  Case c;
  c.q_len = c.kv_len = 128;
  c.mask = seeds::prefix_lm(17);
  check(c, "prefix_lm (first)");
  clear_kernel_memory_cache();
  const KernelCacheStats before = kernel_cache_stats();
  const auto start = std::chrono::steady_clock::now();
  check(c, "prefix_lm (after clearing memory)");
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const KernelCacheStats after = kernel_cache_stats();
  WARN("cache dir '" << kernel_cache_directory() << "'; reload + run after clearing memory: " << ms
                     << " ms; compiles " << after.compiles << ", disk hits " << after.disk_hits
                     << ", memory hits " << after.memory_hits);
  if (!kernel_cache_directory().empty()) {
    CHECK(after.disk_hits == before.disk_hits + 1);
    CHECK(after.compiles == before.compiles);
  }
  const std::vector<std::string> warnings = kernel_warnings();
  for (const std::string& w : warnings)
    WARN("kernel warning: " << w);
}

// A kernel per prefix: kv <= prefix || q >= kv with the prefix a literal of the mask's body
// (seeds::prefix_lm makes it a param: one kernel for every prefix).
MaskMod literal_prefix_lm(int prefix) {
  return mask_mod(fmt::format("prefix_lm_literal_{}", prefix),
                  [=](Idx, Idx, Idx q, Idx kv) { return kv <= prefix || q >= kv; });
}

Case prefix_case(int prefix, uint32_t seed) {
  Case c;
  c.q_len = c.kv_len = 256;
  c.mask = literal_prefix_lm(prefix);
  c.seed = seed;
  return c;
}
constexpr int kPrefixes[] = {16, 48, 80, 112};

TEST_CASE("gpu: past the memory limit the least recently used kernels are evicted and unloaded",
          "[gpu][attention][runtime][cache-limit]") {
  SKIP_WITHOUT_CUDA();
  Stream{}.synchronize();
  const MemoryLimit limit(1); // only the newest kernel stays
  const KernelCacheStats before = kernel_cache_stats();
  int64_t first_bytes = 0;
  for (uint32_t round = 0; round < 2; ++round)
    for (int prefix : kPrefixes) {
      check(prefix_case(prefix, round), fmt::format("prefix_lm({}) round {}", prefix, round));
      const int64_t held = kernel_memory_cache_bytes();
      INFO("memory cache " << held << " bytes after prefix " << prefix);
      CHECK(held > 0);
      if (first_bytes == 0)
        first_bytes = held;
      CHECK(held < 2 * first_bytes); // one kernel's image, never two
    }
  const KernelCacheStats after = kernel_cache_stats();
  INFO("evictions " << after.evictions - before.evictions << ", unloads "
                    << after.unloads - before.unloads << ", compiles "
                    << after.compiles - before.compiles << ", disk hits "
                    << after.disk_hits - before.disk_hits);
  // Every call's kernel was evicted by the call before: eight loads, no memory hit.
  CHECK(after.memory_hits == before.memory_hits);
  CHECK((after.compiles - before.compiles) + (after.disk_hits - before.disk_hits) == 8);
  CHECK(after.evictions - before.evictions >= 7);
  // Each miss unloads what the eviction before it retired (its launches had finished).
  CHECK(after.unloads - before.unloads >= 6);

  // Under the default limit all four stay: the second round is memory hits only.
  set_kernel_memory_cache_limit(kDefaultMemoryCacheMaxBytes);
  for (int prefix : kPrefixes)
    check(prefix_case(prefix, 2), "warm");
  const KernelCacheStats warm = kernel_cache_stats();
  for (int prefix : kPrefixes)
    check(prefix_case(prefix, 3), "hit");
  CHECK(kernel_cache_stats().memory_hits - warm.memory_hits == 4);
  CHECK(kernel_cache_stats().evictions == warm.evictions);
}

TEST_CASE("gpu: an evicted kernel's module stays loaded until its queued launch has run",
          "[gpu][attention][runtime][cache-limit]") {
  SKIP_WITHOUT_CUDA();
  // Under CUDA's lazy loading (the default), loading a module may wait for the context's
  // running kernels -- here the held stream, released only by the watchdog after 30 s (run22a,
  // an H100: the first evicting call took 30.3 s, a disk hit whose load waited). The window
  // needs loads, so the test runs with CUDA_MODULE_LOADING=EAGER (set before the process
  // starts CUDA) and says so otherwise.
  const char* loading = std::getenv("CUDA_MODULE_LOADING");
  if (!loading || std::string_view(loading) != "EAGER") {
    WARN("skipped: run with CUDA_MODULE_LOADING=EAGER (lazy loading waits for the held stream)");
    return;
  }
  const auto& drv = cuda::driver();
  // A stream held back by the host: it waits for a flag in mapped host memory. Nothing in
  // the window below frees device memory (cuMemFree waits for the device), and a watchdog
  // releases the stream after 30 s should a call wait for it anyway.
  void* host_flag = nullptr;
  cuda::check(drv.cuMemHostAlloc(&host_flag, 4, CU_MEMHOSTALLOC_DEVICEMAP), "cuMemHostAlloc");
  auto* flag = static_cast<volatile uint32_t*>(host_flag);
  *flag = 0;
  CUdeviceptr device_flag = 0;
  cuda::check(drv.cuMemHostGetDevicePointer(&device_flag, host_flag, 0),
              "cuMemHostGetDevicePointer");
  CUstream held = nullptr;
  cuda::check(drv.cuStreamCreate(&held, CU_STREAM_NON_BLOCKING), "cuStreamCreate");

  std::mt19937 rng(5);
  const Case a = prefix_case(200, 9);
  auto [q, k, v, out] =
      make_attention_tensors(a.B, a.Hq, a.Hkv, a.q_len, a.kv_len, a.D, a.D, a.dtype, false, rng);
  DeviceTensor other_out = make_tensor(a.B, a.Hq, a.q_len, a.D, a.dtype, false, rng, false);
  std::vector<BlockMask> masks; // a's, then three kernels that evict it
  for (int prefix : {200, 16, 48, 80})
    masks.push_back(create_block_mask(literal_prefix_lm(prefix), 1, 1, a.q_len, a.kv_len));
  FlexAttentionOptions o;
  o.block_mask = &masks[0];
  o.stream = held;
  FlexAttentionOptions a_on_legacy = o;
  a_on_legacy.stream = nullptr;
  auto run_other = [&](int i) { // on the legacy stream, which does not wait for `held`
    FlexAttentionOptions other;
    other.block_mask = &masks[static_cast<size_t>(i)];
    flex_attention(q.view, k.view, v.view, other_out.view, other);
    Stream{}.synchronize();
  };

  // Every mask's device copy made now, not inside the window (a copy replaced is freed). No
  // module may be unloaded inside the window either (cuModuleUnload may wait for the whole
  // device): the one miss that sweeps retired modules runs before it, and inside it the only
  // retired module at a sweep is a's, whose launch is still queued.
  for (int i = 0; i < 4; ++i)
    run_other(i);
  clear_kernel_memory_cache();                                   // retires every module
  flex_attention(q.view, k.view, v.view, out.view, a_on_legacy); // a miss: unloads them all; a's
  Stream{}.synchronize();                                        // kernel alone is loaded
  const MemoryLimit limit(1);
  std::atomic<bool> released{false}, watchdog_fired{false};
  cuda::check(drv.cuStreamWaitValue32(held, device_flag, 1, CU_STREAM_WAIT_VALUE_GEQ),
              "cuStreamWaitValue32");
  std::thread watchdog([&] {
    for (int i = 0; i < 3000 && !released; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!released) {
      watchdog_fired = true;
      *flag = 1;
    }
  });
  // Each step's seconds: which one waited, should the watchdog have had to release the stream.
  std::vector<double> seconds;
  auto timed = [&](const std::function<void()>& step) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
  const KernelCacheStats before = kernel_cache_stats();
  timed([&] { flex_attention(q.view, k.view, v.view, out.view, o); }); // a hit, queued
  timed([&] { run_other(1); }); // a miss: nothing to sweep; loads prefix 16's, evicts a's
  timed([&] { run_other(2); }); // a miss: the sweep must leave a's module (its launch waits)
  const uint64_t unloaded_while_held = kernel_cache_stats().unloads - before.unloads;
  released = true;
  *flag = 1;
  watchdog.join();
  INFO("seconds of the queued call and the two evicting calls: "
       << fmt::format("{:.3f} {:.3f} {:.3f}", seconds[0], seconds[1], seconds[2]));
  REQUIRE_FALSE(watchdog_fired); // else a call above waited for the held stream
  Stream{held}.synchronize();
  const std::vector<uint16_t> first = download_bits(out);
  run_other(3); // a miss: the sweep unloads a's module and prefix 16's
  const KernelCacheStats after = kernel_cache_stats();
  CHECK(after.evictions - before.evictions == 3); // a's, 16's, 48's
  CHECK(unloaded_while_held == 0);
  CHECK(after.unloads - before.unloads == 2);

  // a's output against the same kernel on the same inputs, run again now (bits: deterministic).
  out.buffer.fill(0xff);
  flex_attention(q.view, k.view, v.view, out.view, o);
  Stream{held}.synchronize();
  CHECK(first == download_bits(out));
  long nans = 0;
  for (uint16_t b : first)
    nans += std::isnan(from_half_bits(b, a.dtype));
  CHECK(nans == 0);
  cuda::check(drv.cuStreamDestroy(held), "cuStreamDestroy");
}

TEST_CASE("gpu: a kernel launched in a CUDA graph capture stays loaded past the memory limit",
          "[gpu][attention][runtime][cache-limit][graph]") {
  SKIP_WITHOUT_CUDA();
  const auto& drv = cuda::driver();
  CUstream stream = nullptr;
  cuda::check(drv.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  std::mt19937 rng(7);
  const Case a = prefix_case(176, 3);
  auto [q, k, v, out] =
      make_attention_tensors(a.B, a.Hq, a.Hkv, a.q_len, a.kv_len, a.D, a.D, a.dtype, false, rng);
  const BlockMask bm = create_block_mask(a.mask, 1, 1, a.q_len, a.kv_len);
  FlexAttentionOptions o;
  o.block_mask = &bm;
  o.stream = stream;

  const MemoryLimit limit(1);
  flex_attention(q.view, k.view, v.view, out.view, o); // loads the kernel (not in a capture)
  Stream{stream}.synchronize();
  const std::vector<uint16_t> eager = download_bits(out);
  CUgraph graph = nullptr;
  CUgraphExec exec = nullptr;
  cuda::check(drv.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
              "cuStreamBeginCapture");
  flex_attention(q.view, k.view, v.view, out.view, o);
  cuda::check(drv.cuStreamEndCapture(stream, &graph), "cuStreamEndCapture");
  cuda::check(drv.cuGraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiate");
  const KernelCacheStats before = kernel_cache_stats();
  for (int prefix : kPrefixes) // each would evict every older kernel, but the captured one
    check(prefix_case(prefix, 4), fmt::format("prefix_lm({}) after the capture", prefix));
  CHECK(kernel_cache_stats().evictions - before.evictions >= 3);
  out.buffer.fill(0xff);
  cuda::check(drv.cuGraphLaunch(exec, stream), "cuGraphLaunch");
  Stream{stream}.synchronize();
  CHECK(download_bits(out) == eager);
  // Still the cache's: a call with its mods is a memory hit.
  const KernelCacheStats hit = kernel_cache_stats();
  flex_attention(q.view, k.view, v.view, out.view, o);
  Stream{stream}.synchronize();
  CHECK(kernel_cache_stats().memory_hits == hit.memory_hits + 1);
  cuda::check(drv.cuGraphExecDestroy(exec), "cuGraphExecDestroy");
  cuda::check(drv.cuGraphDestroy(graph), "cuGraphDestroy");
  cuda::check(drv.cuStreamDestroy(stream), "cuStreamDestroy");
}

TEST_CASE("gpu: a corrupt disk cache entry is a miss and recompiles",
          "[gpu][attention][runtime][corrupt]") {
  SKIP_WITHOUT_CUDA();
  const std::string dir = kernel_cache_directory();
  if (dir.empty()) {
    SUCCEED("skipped: disk cache disabled");
    return;
  }
  Case c;
  c.q_len = c.kv_len = 128;
  c.mask = seeds::prefix_lm(33);
  c.score = seeds::soft_cap(25.0f);
  check(c, "before corruption");
  // Flip bytes in the middle of every entry (the test runs alone: see its tag).
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file() || entry.file_size() < 64)
      continue;
    std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(entry.file_size() / 2));
    f.write("corrupt!", 8);
  }
  clear_kernel_memory_cache();
  const KernelCacheStats before = kernel_cache_stats();
  check(c, "after corruption");
  const KernelCacheStats after = kernel_cache_stats();
  CHECK(after.compiles == before.compiles + 1);
  CHECK(after.disk_hits == before.disk_hits);
}

// The persistent grid against one tile per CTA: the same kernel code per work tile, so the
// same bits, over many work tiles per CTA (the ring, Q's refill and the work records cycle
// through both parities many times), sections of the (b, h) planes smaller than the problem
// (S = 32768: one GQA group's K and V fill half the L2), GQA, uneven documents (partial and
// full tiles, rows of every length), BSHD and Q != KV; and against the reference on rows.
TEST_CASE("gpu: the persistent grid gives one tile per CTA's bits", "[gpu][attention]") {
  SKIP_WITHOUT_CUDA();
  std::vector<Case> cases;
  auto documents = [](int S, int first) {
    std::vector<int32_t> ids(static_cast<size_t>(S));
    int doc = 0, end = first;
    for (int i = 0; i < S; ++i) {
      if (i == end)
        end += first + 997 * ++doc % 1531; // uneven lengths
      ids[static_cast<size_t>(i)] = doc;
    }
    return ids;
  };
  const std::vector<int32_t> long_docs = documents(32768, 700), short_docs = documents(1500, 90);
  const std::vector<float> slopes = seeds::alibi_slopes(6);
  {
    Case c; // 512 work tiles over the SMs, GQA 16 / 4
    c.B = 2, c.Hq = 16, c.Hkv = 4, c.q_len = c.kv_len = 2048, c.D = 64;
    c.mask = seeds::causal();
    c.sample_rows = 200;
    cases.push_back(c);
  }
  {
    Case c; // 2048 work tiles, sections of one GQA group (4 of the 8 planes)
    c.B = 1, c.Hq = 8, c.Hkv = 2, c.q_len = c.kv_len = 32768, c.D = 128;
    c.dtype = DType::BF16;
    c.mask = seeds::document(long_docs);
    c.sample_rows = 64;
    cases.push_back(c);
  }
  {
    Case c; // Dqk != Dv, BSHD, Q != KV, a score_mod reading a buffer
    c.B = 3, c.Hq = 6, c.Hkv = 3, c.q_len = 1000, c.kv_len = 1500, c.D = 192, c.Dv = 128;
    c.bshd = true;
    c.mask = seeds::document(short_docs);
    c.score = seeds::alibi_buffer(slopes);
    c.sample_rows = 150;
    cases.push_back(c);
  }
  for (Case& c : cases) {
    std::vector<uint16_t> out[2];
    std::vector<float> lse[2];
    c.schedule = FlexAttentionOptions::Schedule::OneTilePerCta;
    run_case(c, &out[0], &lse[0]);
    c.schedule = FlexAttentionOptions::Schedule::Persistent;
    const Outcome r = run_case(c, &out[1], &lse[1]);
    check_outcome(c, "persistent", r);
    CHECK(out[1] == out[0]);
    CHECK(std::memcmp(lse[1].data(), lse[0].data(), lse[0].size() * 4) == 0);
  }
}

TEST_CASE("gpu: S = 2048 spot check on random rows", "[gpu][attention]") {
  SKIP_WITHOUT_CUDA();
  const DType dtype = GENERATE(values({DType::F16, DType::BF16}));
  SECTION(std::string(to_string(dtype))) {
    Case c;
    c.B = 1;
    c.Hq = 4;
    c.Hkv = 2;
    c.q_len = c.kv_len = 2048;
    c.D = 128;
    c.dtype = dtype;
    c.mask = seeds::causal();
    c.score = seeds::soft_cap(30.0f);
    c.sample_rows = 300;
    check(c, "causal + soft cap, S=2048");
  }
}

TEST_CASE("gpu: 16 threads share the kernel cache - one build per kernel",
          "[gpu][attention][runtime][concurrency]") {
  SKIP_WITHOUT_CUDA();
  // Six (mask, score, dtype, head dim) variants over four masks; each of 16
  // threads runs three of them (GPU block mask + flex_attention), overlapping
  // with the other threads' picks, all starting at once. With the memory cache
  // cleared first, each distinct kernel must be built (compiled, or loaded from
  // disk) exactly once and every other request must be a memory hit.
  std::vector<int32_t> doc_ids(320);
  for (int i = 0; i < 320; ++i)
    doc_ids[i] = i < 90 ? 0 : (i < 200 ? 1 : 2);
  const MaskMod masks[] = {seeds::causal(), seeds::sliding_window(48), seeds::document(doc_ids),
                           seeds::natten(16, 20, 5, 3)};
  struct Pick {
    int mask;
    ScoreMod score;
    DType dtype;
    int D;
  };
  const std::vector<Pick> picks = {
      {0, ScoreMod(), DType::F16, 64},  {0, seeds::soft_cap(20.0f), DType::BF16, 128},
      {1, ScoreMod(), DType::BF16, 64}, {2, seeds::alibi(4), DType::F16, 128},
      {3, ScoreMod(), DType::F16, 64},  {3, seeds::checkerboard(), DType::BF16, 64},
  };
  const size_t distinct_kernels = std::size(masks) + picks.size(); // classify + attention
  constexpr int kThreads = 16, kPerThread = 3;
  std::vector<Case> cases;
  for (const Pick& p : picks) {
    Case c;
    c.B = 1;
    c.Hq = 4;
    c.Hkv = 2;
    c.q_len = c.kv_len = 320;
    c.D = p.D;
    c.dtype = p.dtype;
    c.mask = masks[p.mask];
    c.score = p.score;
    c.sample_rows = 48;
    c.gpu_block_mask = true;
    cases.push_back(c);
  }

  clear_kernel_memory_cache();
  const KernelCacheStats before = kernel_cache_stats();
  std::vector<std::vector<std::pair<size_t, Outcome>>> outcomes(kThreads);
  std::vector<std::string> errors(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      try {
        for (int i = 0; i < kPerThread; ++i) {
          const size_t pick = static_cast<size_t>(t * 5 + i * 7) % cases.size();
          Case c = cases[pick];
          c.seed = static_cast<uint32_t>(t * kPerThread + i);
          outcomes[t].emplace_back(pick, run_case(c));
        }
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  for (std::thread& t : threads)
    t.join();
  const KernelCacheStats after = kernel_cache_stats();

  for (const std::string& e : errors)
    REQUIRE(e.empty());
  std::set<size_t> used;
  for (const auto& thread : outcomes)
    for (const auto& [pick, outcome] : thread) {
      used.insert(pick);
      check_outcome(cases[pick], fmt::format("concurrent pick {}", pick), outcome);
    }
  REQUIRE(used.size() == picks.size()); // every kernel was asked for
  const uint64_t built = (after.compiles - before.compiles) + (after.disk_hits - before.disk_hits);
  INFO("compiles " << after.compiles - before.compiles << ", disk hits "
                   << after.disk_hits - before.disk_hits << ", memory hits "
                   << after.memory_hits - before.memory_hits);
  CHECK(built == distinct_kernels);
  // Two requests per run (the classify kernel, the attention kernel).
  CHECK(built + (after.memory_hits - before.memory_hits) == 2u * kThreads * kPerThread);
}
