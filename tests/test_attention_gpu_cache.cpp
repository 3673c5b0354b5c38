// flex_attention's kernels over a KV cache on a real device -- the decode kernel and the
// warp-specialized forward (prefill, both schedules) -- per-sequence lengths in device memory,
// K and V in page pools through a block table, against the float64 reference of each sequence
// alone; every slot no sequence owns (and every row past a sequence's
// length in its last page) holds NaN, so a kernel that reads one shows it. Bad lengths and
// page indices are device errors (check_device_errors), never out-of-bounds reads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>

#include <flexjit/flexjit.h>

#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/HalfFloat.h"
#include "flexjit/testing/SeedMods.h"

#include "CacheCases.h"

using namespace flexjit;
using namespace flexjit::testing;
using Catch::Contains;

TEST_CASE("gpu: decoding through a paged KV cache with per-sequence lengths",
          "[gpu][attention][decode][cache]") {
  SKIP_WITHOUT_CUDA();
  uint32_t seed = 1;
  for (int page_size : {16, 64, 128, 256})
    for (int q_len : {1, 4}) {
      CacheCase c;
      c.page_size = page_size;
      c.q_len = q_len;
      c.seed = seed++;
      check_cache_case(c);
      c.dtype = DType::F16;
      c.D = 64;
      c.Hkv = 8; // no GQA
      c.has_mask = true;
      c.mask = seeds::prefix_lm(100);
      check_cache_case(c);
    }
}

// Prefill (q_len > 64: the warp-specialized forward, in each schedule) through a KV cache: page
// pools of every size in a shuffled order (NaN wherever no sequence's key is), sequences of
// lengths 0 (out 0, lse -inf), 1, 129, 333 and the whole capacity; GQA; block masks built for
// the capacity (causal, a sliding window) and a score_mod; head dims whose kv tiles are 128 rows
// (64, 128, (192, 128)) and 64 (256).
TEST_CASE("gpu: prefill through a paged KV cache with per-sequence lengths",
          "[gpu][attention][cache][prefill]") {
  SKIP_WITHOUT_CUDA();
  using Schedule = FlexAttentionOptions::Schedule;
  uint32_t seed = 100;
  for (Schedule schedule : {Schedule::OneTilePerCta, Schedule::Persistent})
    for (int page_size : {16, 64, 128, 256}) {
      CacheCase c;
      c.schedule = schedule;
      c.page_size = page_size;
      c.B = 5;
      c.capacity = 512;
      c.kv_lens = {129, 0, 512, 1, 333};
      c.seed = seed++;
      // bf16, D 128, causal (query i sees keys 0..i of its sequence).
      c.q_len = 300;
      c.has_mask = true;
      c.mask = seeds::causal();
      check_cache_case(c);
      // f16, D 64, a sliding window and ALiBi.
      c.dtype = DType::F16;
      c.D = 64;
      c.q_len = 129;
      c.mask = seeds::sliding_window(100);
      c.score = seeds::alibi(c.Hq);
      check_cache_case(c);
      // bf16, D 64, no block mask (every key below each length), a soft cap.
      c.dtype = DType::BF16;
      c.q_len = 65;
      c.has_mask = false;
      c.score = seeds::soft_cap(20.0f);
      check_cache_case(c);
    }
  // Wider heads: (192, 128) (kv tiles of 128 rows) and 256 (kv tiles of 64 rows: a page of 128
  // or 256 is one box per tile, 16 four).
  for (Schedule schedule : {Schedule::OneTilePerCta, Schedule::Persistent})
    for (int page_size : {16, 256}) {
      CacheCase c;
      c.schedule = schedule;
      c.page_size = page_size;
      c.capacity = 512;
      c.kv_lens = {333, 0, 512};
      c.q_len = 150;
      c.has_mask = true;
      c.mask = seeds::causal();
      c.seed = seed++;
      c.D = 192;
      c.Dv = 128;
      check_cache_case(c);
      c.dtype = DType::F16;
      c.D = 256;
      c.Dv = 0;
      c.score = seeds::alibi(c.Hq);
      check_cache_case(c);
    }
  // Contiguous [B, Hkv, capacity, D] with per-sequence lengths (NaN past each length).
  for (Schedule schedule : {Schedule::OneTilePerCta, Schedule::Persistent}) {
    CacheCase c;
    c.schedule = schedule;
    c.B = 4;
    c.capacity = 640;
    c.kv_lens = {0, 1, 640, 129};
    c.q_len = 200;
    c.has_mask = true;
    c.mask = seeds::causal();
    c.seed = seed++;
    check_cache_case(c);
  }
}

// Small shapes for compute-sanitizer (memcheck, racecheck: bench/results/session19/run19b.sh):
// both schedules, a page of 16 (several boxes per tile) and of 128 (one), a ragged tile first
// and last in the walk, an empty sequence and a full one.
TEST_CASE("gpu: prefill through a paged KV cache, small shapes",
          "[gpu][attention][cache][prefill][small]") {
  SKIP_WITHOUT_CUDA();
  using Schedule = FlexAttentionOptions::Schedule;
  for (Schedule schedule : {Schedule::OneTilePerCta, Schedule::Persistent})
    for (int page_size : {16, 128}) {
      CacheCase c;
      c.schedule = schedule;
      c.page_size = page_size;
      c.B = 4;
      c.capacity = 256;
      c.kv_lens = {1, 0, 256, 129};
      c.q_len = 100;
      c.D = 64;
      c.seed = static_cast<uint32_t>(page_size) + (schedule == Schedule::Persistent);
      c.has_mask = true;
      c.mask = seeds::causal();
      check_cache_case(c);
      c.has_mask = false;
      check_cache_case(c);
    }
}

// A bad page index and a bad length in prefill (both schedules): device errors, with the page 0
// / capacity read instead (compute-sanitizer's memcheck over this test: no out-of-bounds read).
TEST_CASE("gpu: bad cache lengths and page indices in prefill are device errors",
          "[gpu][attention][cache][prefill]") {
  SKIP_WITHOUT_CUDA();
  using Schedule = FlexAttentionOptions::Schedule;
  for (Schedule schedule : {Schedule::OneTilePerCta, Schedule::Persistent}) {
    INFO("schedule " << static_cast<int>(schedule));
    CacheCase c;
    c.page_size = 16;
    c.q_len = 200;
    std::mt19937 rng(7);
    CacheTensors t = make_cache(c, rng);
    DeviceTensor q = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, false, rng, true);
    DeviceTensor out = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, false, rng, false);
    const KvCache cache = cache_of(c, t);
    FlexAttentionOptions o;
    o.kv_cache = &cache;
    o.schedule = schedule;
    const BlockMask bm = create_block_mask(seeds::causal(), 1, 1, c.q_len, c.capacity);
    o.block_mask = &bm;
    std::vector<int32_t> table = t.table_host;
    for (int32_t bad : {t.num_pages, -1, INT32_MAX}) {
      table[2] = bad; // sequence 0's third page (keys 32..47)
      t.table.upload(table.data(), table.size() * 4);
      flex_attention(q.view, t.k_view, t.v_view, out.view, o);
      REQUIRE_THROWS_WITH(check_device_errors(),
                          Contains("block_table entry outside [0, num_pages)"));
    }
    t.table.upload(t.table_host.data(), t.table_host.size() * 4);
    for (int32_t bad : {c.capacity + 1, -5}) {
      std::vector<int32_t> lens = c.kv_lens;
      lens[1] = bad;
      t.lens.upload(lens.data(), lens.size() * 4);
      flex_attention(q.view, t.k_view, t.v_view, out.view, o);
      // The capacity is read, whose pages sequence 1's table lacks (-1): both bits.
      REQUIRE_THROWS_WITH(check_device_errors(), Contains("kv_lens entry outside"));
    }
    t.lens.upload(c.kv_lens.data(), c.kv_lens.size() * 4);
    flex_attention(q.view, t.k_view, t.v_view, out.view, o);
    CHECK_NOTHROW(check_device_errors());
  }
}

TEST_CASE("gpu: decoding a contiguous cache with per-sequence lengths",
          "[gpu][attention][decode][cache]") {
  SKIP_WITHOUT_CUDA();
  CacheCase c;
  c.kv_lens = {1024, 129, 0}; // a full sequence, a short one, an empty one (out 0)
  check_cache_case(c);
  c.has_mask = true;
  c.mask = seeds::sliding_window(300); // causal: only key 0 for q 0; q_len 4 sees 0..3
  c.q_len = 4;
  c.kv_lens = {700, 3, 1000};
  check_cache_case(c);
}

TEST_CASE("gpu: bad cache lengths and page indices are device errors",
          "[gpu][attention][decode][cache]") {
  SKIP_WITHOUT_CUDA();
  CacheCase c;
  c.page_size = 64;
  std::mt19937 rng(5);
  CacheTensors t = make_cache(c, rng);
  DeviceTensor q = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, false, rng, true);
  DeviceTensor out = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, false, rng, false);
  KvCache cache;
  cache.kv_lens = &t.lens_view;
  cache.block_table = &t.table_view;
  cache.page_size = c.page_size;
  FlexAttentionOptions o;
  o.kv_cache = &cache;
  // A page index past the pool in sequence 0's table.
  std::vector<int32_t> table = t.table_host;
  table[3] = t.num_pages + 5;
  t.table.upload(table.data(), table.size() * 4);
  flex_attention(q.view, t.k_view, t.v_view, out.view, o);
  REQUIRE_THROWS_WITH(check_device_errors(), Contains("block_table entry outside [0, num_pages)"));
  CHECK_NOTHROW(check_device_errors()); // reported once
  table[3] = -1;
  t.table.upload(table.data(), table.size() * 4);
  flex_attention(q.view, t.k_view, t.v_view, out.view, o);
  Stream{}.synchronize();
  // The next call raises what the last one found, before launching.
  REQUIRE_THROWS_WITH(flex_attention(q.view, t.k_view, t.v_view, out.view, o),
                      Contains("block_table entry outside"));
  t.table.upload(t.table_host.data(), t.table_host.size() * 4);
  // A length past the capacity.
  std::vector<int32_t> lens = c.kv_lens;
  lens[2] = c.capacity + 1;
  t.lens.upload(lens.data(), lens.size() * 4);
  flex_attention(q.view, t.k_view, t.v_view, out.view, o);
  REQUIRE_THROWS_WITH(check_device_errors(), Contains("kv_lens entry outside"));
  lens[2] = -7;
  t.lens.upload(lens.data(), lens.size() * 4);
  flex_attention(q.view, t.k_view, t.v_view, out.view, o);
  REQUIRE_THROWS_WITH(check_device_errors(), Contains("kv_lens entry outside"));
  // Good data again: no error.
  t.lens.upload(c.kv_lens.data(), c.kv_lens.size() * 4);
  flex_attention(q.view, t.k_view, t.v_view, out.view, o);
  CHECK_NOTHROW(check_device_errors());
}

TEST_CASE("gpu: appending tokens to a KV cache", "[gpu][attention][decode][cache]") {
  SKIP_WITHOUT_CUDA();
  for (int page_size : {0, 16, 64, 256})
    for (int n_new : {1, 5, 70}) {
      CacheCase c;
      c.page_size = page_size;
      c.reserve = n_new;
      c.kv_lens = {900, 0, 333};
      c.seed = static_cast<uint32_t>(page_size + n_new);
      check_append_case(c, n_new, n_new == 5);
      c.dtype = DType::F16;
      c.D = 64;
      c.Hkv = 1;
      check_append_case(c, n_new, n_new != 5);
    }
  // Bad device data: a length whose tokens would pass the capacity, a negative one, a page
  // outside the pool (reserve 0: the pages past each length are -1).
  CacheCase c;
  c.kv_lens = {1020, 1, -3};
  check_append_case(c, 5, false, {0, 2});
  c.page_size = 64;
  c.kv_lens = {1000, 1, 320}; // 320 + 5 lands on page 5: -1
  check_append_case(c, 5, false, {2});
}

TEST_CASE("gpu: 100 decode steps with appends captured in one CUDA graph",
          "[gpu][attention][decode][cache][graph]") {
  SKIP_WITHOUT_CUDA();
  constexpr int kSteps = 100;
  for (int page_size : {0, 64}) {
    CacheCase c;
    c.page_size = page_size;
    c.kv_lens = {100, 1, 500};
    c.reserve = kSteps;
    INFO("page " << page_size);
    std::mt19937 rng(17 + page_size);
    CacheTensors t = make_cache(c, rng);
    const KvCache cache = cache_of(c, t);
    // Every step's inputs and outputs in their own slices: q [B, Hq, 1, D], the new token's K
    // and V [B, Hkv, 1, D], out [B, Hq, 1, D].
    DeviceTensor q = make_tensor(kSteps * c.B, c.Hq, 1, c.D, c.dtype, false, rng, true);
    DeviceTensor kn = make_tensor(kSteps * c.B, c.Hkv, 1, c.D, c.dtype, false, rng, true);
    DeviceTensor vn = make_tensor(kSteps * c.B, c.Hkv, 1, c.D, c.dtype, false, rng, true);
    DeviceTensor out = make_tensor(kSteps * c.B, c.Hq, 1, c.D, c.dtype, false, rng, false);
    auto slice = [&](const DeviceTensor& x, int heads, int step) {
      const size_t elems = static_cast<size_t>(c.B) * heads * c.D;
      return TensorView::contiguous(static_cast<const uint16_t*>(x.view.data) + step * elems,
                                    c.dtype, {c.B, heads, 1, c.D}, Device::Cuda);
    };
    const auto& drv = cuda::driver();
    CUstream stream = nullptr;
    cuda::check(drv.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    FlexAttentionOptions o;
    o.kv_cache = &cache;
    o.stream = stream;
    auto step = [&](int s) {
      append_kv_cache(slice(kn, c.Hkv, s), slice(vn, c.Hkv, s), t.k_view, t.v_view, cache, stream);
      flex_attention(slice(q, c.Hq, s), t.k_view, t.v_view, slice(out, c.Hq, s), o);
    };
    // One step outside the capture loads the kernels and grows the workspace; then the
    // lengths go back.
    step(0);
    Stream{stream}.synchronize();
    t.lens.upload(c.kv_lens.data(), c.kv_lens.size() * 4);
    CUgraph graph = nullptr;
    CUgraphExec exec = nullptr;
    cuda::check(drv.cuStreamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL),
                "cuStreamBeginCapture");
    for (int s = 0; s < kSteps; ++s)
      step(s);
    cuda::check(drv.cuStreamEndCapture(stream, &graph), "cuStreamEndCapture");
    cuda::check(drv.cuGraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiate");
    // Capturing ran nothing: the lengths are the initial ones until the replay.
    std::vector<int32_t> lens(c.B);
    t.lens.download(lens.data(), lens.size() * 4);
    CHECK(lens == c.kv_lens);
    cuda::check(drv.cuGraphLaunch(exec, stream), "cuGraphLaunch");
    check_device_errors(stream);
    t.lens.download(lens.data(), lens.size() * 4);
    for (int b = 0; b < c.B; ++b)
      CHECK(lens[b] == c.kv_lens[b] + kSteps);
    std::vector<uint16_t> bits(out.logical.size());
    out.buffer.download(bits.data(), bits.size() * 2);
    // Each step against the reference of each sequence's keys so far.
    std::vector<Sequence> seqs = t.seqs;
    const size_t q_per = static_cast<size_t>(c.Hq) * c.D, kv_per = static_cast<size_t>(c.Hkv) * c.D;
    double worst = 0;
    long nans = 0;
    for (int s = 0; s < kSteps; ++s)
      for (int b = 0; b < c.B; ++b) {
        const int n = c.kv_lens[b] + s + 1;
        Sequence& seq = seqs[b]; // [Hkv, n - 1, D] -> [Hkv, n, D]
        Sequence grown;
        for (const auto& [from, to, add] :
             {std::tuple{&seq.k, &grown.k, &kn}, std::tuple{&seq.v, &grown.v, &vn}}) {
          for (int h = 0; h < c.Hkv; ++h) {
            to->insert(to->end(), from->begin() + static_cast<size_t>(h) * (n - 1) * c.D,
                       from->begin() + static_cast<size_t>(h + 1) * (n - 1) * c.D);
            const auto row = add->logical.begin() + (s * c.B + b) * kv_per + h * c.D;
            to->insert(to->end(), row, row + c.D);
          }
        }
        seq = std::move(grown);
        const size_t q0 = (static_cast<size_t>(s) * c.B + b) * q_per;
        AttentionInputs in{
            1,
            c.Hq,
            c.Hkv,
            1,
            n,
            c.D,
            std::vector<float>(q.logical.begin() + q0, q.logical.begin() + q0 + q_per),
            seq.k,
            seq.v};
        const AttentionRows ref =
            attention_reference(in, MaskMod(), ScoreMod(), 1.0 / std::sqrt(double(c.D)), {});
        std::vector<double> got(ref.out.size());
        for (size_t i = 0; i < ref.rows.size(); ++i)
          for (int d = 0; d < c.D; ++d) {
            got[i * c.D + d] = from_half_bits(bits[q0 + ref.rows[i] * c.D + d], c.dtype);
            nans += std::isnan(got[i * c.D + d]);
          }
        worst = std::max(worst, relative_error(got, ref.out));
      }
    CHECK(nans == 0);
    CHECK(worst < 1e-2);
    cuda::check(drv.cuGraphExecDestroy(exec), "cuGraphExecDestroy");
    cuda::check(drv.cuGraphDestroy(graph), "cuGraphDestroy");
    cuda::check(drv.cuStreamDestroy(stream), "cuStreamDestroy");
  }
}
