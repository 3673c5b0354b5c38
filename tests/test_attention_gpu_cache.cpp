// flex_attention's kernels over a KV cache on a real device -- the decode kernel and the
// warp-specialized forward (prefill, both schedules) -- per-sequence lengths in device memory,
// K and V in page pools through a block table, against the float64 reference of each sequence
// alone; every slot no sequence owns (and every row past a sequence's
// length in its last page) holds NaN, so a kernel that reads one shows it. Bad lengths and
// page indices are device errors (check_device_errors), never out-of-bounds reads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <tuple>

#include <flexjit/flexjit.h>

#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/HalfFloat.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;
using namespace flexjit::testing;
using Catch::Contains;

namespace {

constexpr uint16_t kNanBits = 0xffff; // NaN in f16 and bf16

struct CacheCase {
  int B = 3, Hq = 8, Hkv = 2, q_len = 1, D = 128;
  int Dv = 0; // v's head dim (0: D)
  DType dtype = DType::BF16;
  int page_size = 0; // 0: contiguous [B, Hkv, capacity, D] with per-sequence lengths
  int capacity = 1024;
  std::vector<int32_t> kv_lens = {1000, 1, 333};
  int reserve = 0; // pages for this many keys past each length are in the table too
  MaskMod mask;    // with a block mask (built for the capacity) when set
  bool has_mask = false;
  ScoreMod score;
  FlexAttentionOptions::Schedule schedule = FlexAttentionOptions::Schedule::Auto;
  uint32_t seed = 1;
  int v_dim() const { return Dv ? Dv : D; }
};

// One sequence's K and V: logical [1, Hkv, kv_len, D] floats.
struct Sequence {
  std::vector<float> k, v;
};

struct CacheTensors {
  DeviceBuffer k, v, table, lens;
  TensorView k_view, v_view, table_view, lens_view;
  std::vector<Sequence> seqs;
  std::vector<int32_t> table_host;
  int num_pages = 0, max_pages = 0;
};

// Element index of (b, h, key j, d) in the pool or the contiguous cache of head dim D (k's:
// c.D, v's: c.v_dim()).
size_t element_at(const CacheCase& c, const CacheTensors& t, int b, int h, int j, int d, int D) {
  if (c.page_size == 0)
    return ((static_cast<size_t>(b) * c.Hkv + h) * c.capacity + j) * D + d;
  const int page = t.table_host[static_cast<size_t>(b) * t.max_pages + j / c.page_size];
  return ((static_cast<size_t>(page) * c.page_size + j % c.page_size) * c.Hkv + h) * D + d;
}
size_t element_at(const CacheCase& c, const CacheTensors& t, int b, int h, int j, int d) {
  return element_at(c, t, b, h, j, d, c.D);
}

// The cache of `c` with random K / V rows for each sequence's keys and NaN everywhere else;
// pages handed out in a random order.
CacheTensors make_cache(const CacheCase& c, std::mt19937& rng) {
  CacheTensors t;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const bool paged = c.page_size > 0;
  t.max_pages = paged ? c.capacity / c.page_size : 0;
  t.num_pages = paged ? c.B * t.max_pages + 3 : 0; // three pages nobody owns
  std::vector<int32_t> pages(static_cast<size_t>(t.num_pages));
  std::iota(pages.begin(), pages.end(), 0);
  std::shuffle(pages.begin(), pages.end(), rng);
  const size_t rows = paged ? static_cast<size_t>(t.num_pages) * c.page_size * c.Hkv
                            : static_cast<size_t>(c.B) * c.Hkv * c.capacity;
  const size_t elems = rows * c.D, v_elems = rows * c.v_dim();
  std::vector<uint16_t> kbits(elems, kNanBits), vbits(v_elems, kNanBits);
  if (paged) {
    t.table_host.assign(static_cast<size_t>(c.B) * t.max_pages, -1);
    for (int b = 0; b < c.B; ++b) // pages past a sequence's length stay -1 (never read)
      for (int p = 0; p < t.max_pages && p * c.page_size < c.kv_lens[b] + c.reserve; ++p)
        t.table_host[static_cast<size_t>(b) * t.max_pages + p] =
            pages[static_cast<size_t>(b) * t.max_pages + p];
  }
  for (int b = 0; b < c.B; ++b) {
    Sequence s;
    const int n = std::max(0, c.kv_lens[b]); // a bad (negative) length: no keys
    s.k.resize(static_cast<size_t>(c.Hkv) * n * c.D);
    s.v.resize(static_cast<size_t>(c.Hkv) * n * c.v_dim());
    for (int h = 0; h < c.Hkv; ++h)
      for (int j = 0; j < n; ++j) {
        for (int d = 0; d < c.D; ++d) {
          const uint16_t kb = to_half_bits(normal(rng), c.dtype);
          s.k[(static_cast<size_t>(h) * n + j) * c.D + d] = from_half_bits(kb, c.dtype);
          kbits[element_at(c, t, b, h, j, d, c.D)] = kb;
        }
        for (int d = 0; d < c.v_dim(); ++d) {
          const uint16_t vb = to_half_bits(normal(rng), c.dtype);
          s.v[(static_cast<size_t>(h) * n + j) * c.v_dim() + d] = from_half_bits(vb, c.dtype);
          vbits[element_at(c, t, b, h, j, d, c.v_dim())] = vb;
        }
      }
    t.seqs.push_back(std::move(s));
  }
  t.k = DeviceBuffer(elems * 2);
  t.v = DeviceBuffer(v_elems * 2);
  t.k.upload(kbits.data(), elems * 2);
  t.v.upload(vbits.data(), v_elems * 2);
  if (paged) {
    t.k_view = t.k.view(c.dtype, {t.num_pages, c.page_size, c.Hkv, c.D});
    t.v_view = t.v.view(c.dtype, {t.num_pages, c.page_size, c.Hkv, c.v_dim()});
    t.table = DeviceBuffer(t.table_host.size() * 4);
    t.table.upload(t.table_host.data(), t.table_host.size() * 4);
    t.table_view = t.table.view(DType::I32, {c.B, t.max_pages});
  } else {
    t.k_view = t.k.view(c.dtype, {c.B, c.Hkv, c.capacity, c.D});
    t.v_view = t.v.view(c.dtype, {c.B, c.Hkv, c.capacity, c.v_dim()});
  }
  t.lens = DeviceBuffer(static_cast<size_t>(c.B) * 4);
  t.lens.upload(c.kv_lens.data(), static_cast<size_t>(c.B) * 4);
  t.lens_view = t.lens.view(DType::I32, {c.B});
  return t;
}

KvCache cache_of(const CacheCase& c, const CacheTensors& t);

// Runs the case and compares each sequence with its own float64 reference: out (a row nothing
// attends must be 0), and lse (-inf for such a row).
void check_cache_case(const CacheCase& c) {
  INFO(to_string(c.dtype) << " d" << c.D << "/" << c.v_dim() << " B" << c.B << " Hq" << c.Hq
                          << " Hkv" << c.Hkv << " q" << c.q_len << " page " << c.page_size
                          << " capacity " << c.capacity << " schedule "
                          << static_cast<int>(c.schedule)
                          << (c.has_mask ? " mask " + c.mask.name() : "") << " score "
                          << c.score.name());
  std::mt19937 rng(c.seed * 977 + c.page_size + c.q_len);
  CacheTensors t = make_cache(c, rng);
  DeviceTensor q = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, false, rng, true);
  DeviceTensor out = make_tensor(c.B, c.Hq, c.q_len, c.v_dim(), c.dtype, false, rng, false);
  const size_t rows = static_cast<size_t>(c.B) * c.Hq * c.q_len;
  DeviceBuffer lse_buf(rows * 4);
  {
    const std::vector<float> poison(rows, 12345.0f); // every row's lse must be written
    lse_buf.upload(poison.data(), rows * 4);
  }
  const TensorView lse_view = lse_buf.view(DType::F32, {c.B, c.Hq, c.q_len});

  KvCache cache;
  cache.kv_lens = &t.lens_view;
  if (c.page_size > 0) {
    cache.block_table = &t.table_view;
    cache.page_size = c.page_size;
  }
  BlockMask bm;
  FlexAttentionOptions o;
  o.kv_cache = &cache;
  o.lse = &lse_view;
  o.score_mod = c.score;
  o.schedule = c.schedule;
  if (c.has_mask) {
    bm = create_block_mask(c.mask, 1, 1, c.q_len, c.capacity);
    o.block_mask = &bm;
  }
  flex_attention(q.view, t.k_view, t.v_view, out.view, o);
  check_device_errors();

  const int Dv = c.v_dim();
  std::vector<uint16_t> bits(rows * Dv);
  out.buffer.download(bits.data(), bits.size() * 2);
  std::vector<float> lse(rows);
  lse_buf.download(lse.data(), rows * 4);
  const size_t per_seq = static_cast<size_t>(c.Hq) * c.q_len * c.D;
  for (int b = 0; b < c.B; ++b) {
    AttentionInputs in{
        1,
        c.Hq,
        c.Hkv,
        c.q_len,
        c.kv_lens[b],
        c.D,
        std::vector<float>(q.logical.begin() + b * per_seq, q.logical.begin() + (b + 1) * per_seq),
        t.seqs[b].k,
        t.seqs[b].v,
        c.Dv};
    const AttentionRows ref = attention_reference(in, c.has_mask ? c.mask : MaskMod(), c.score,
                                                  1.0 / std::sqrt(double(c.D)), {});
    std::vector<double> got(ref.out.size()), got_lse, ref_lse;
    long nans = 0, empty_rows = 0, empty_wrong = 0;
    for (size_t i = 0; i < ref.rows.size(); ++i) {
      const size_t row = static_cast<size_t>(b) * c.Hq * c.q_len + ref.rows[i];
      bool nonzero = false;
      for (int d = 0; d < Dv; ++d) {
        got[i * Dv + d] = from_half_bits(bits[row * Dv + d], c.dtype);
        nans += std::isnan(got[i * Dv + d]);
        nonzero = nonzero || got[i * Dv + d] != 0.0;
      }
      if (!std::isinf(ref.lse[i])) {
        got_lse.push_back(lse[row]);
        ref_lse.push_back(ref.lse[i]);
      } else { // nothing attends: out 0, lse -inf
        ++empty_rows;
        empty_wrong += nonzero || !(std::isinf(lse[row]) && lse[row] < 0);
      }
    }
    INFO("sequence " << b << " of kv_len " << c.kv_lens[b] << ", " << empty_rows
                     << " rows with nothing to attend");
    CHECK(nans == 0);
    CHECK(empty_wrong == 0);
    CHECK(relative_error(got, ref.out) < (c.dtype == DType::BF16 ? 1e-2 : 3e-3));
    CHECK(relative_error(got_lse, ref_lse) < 1e-3);
  }
}

} // namespace

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

namespace {

KvCache cache_of(const CacheCase& c, const CacheTensors& t) {
  KvCache cache;
  cache.kv_lens = &t.lens_view;
  if (c.page_size > 0) {
    cache.block_table = &t.table_view;
    cache.page_size = c.page_size;
  }
  return cache;
}

std::vector<uint16_t> download_bits(const DeviceBuffer& b) {
  std::vector<uint16_t> bits(b.bytes() / 2);
  b.download(bits.data(), b.bytes());
  return bits;
}

// Appends n_new random tokens (BSHD or BHSD) to the cache of `c` and compares every element of
// both pools with what they held before plus the new rows at each sequence's length, and the
// lengths with theirs plus n_new; sequences in `bad` (whose tokens would pass the capacity or
// land on a page outside the pool) must be left alone and reported.
void check_append_case(const CacheCase& c, int n_new, bool bshd, std::vector<int> bad = {}) {
  INFO(to_string(c.dtype) << " d" << c.D << " page " << c.page_size << " n_new " << n_new
                          << (bshd ? " bshd" : " bhsd"));
  std::mt19937 rng(c.seed * 131 + n_new);
  CacheTensors t = make_cache(c, rng);
  DeviceTensor kn = make_tensor(c.B, c.Hkv, n_new, c.D, c.dtype, bshd, rng, true);
  DeviceTensor vn = make_tensor(c.B, c.Hkv, n_new, c.D, c.dtype, bshd, rng, true);
  std::vector<uint16_t> k_want = download_bits(t.k), v_want = download_bits(t.v);
  std::vector<int32_t> lens_want = c.kv_lens;
  for (int b = 0; b < c.B; ++b) {
    if (std::find(bad.begin(), bad.end(), b) != bad.end())
      continue;
    for (int h = 0; h < c.Hkv; ++h)
      for (int j = 0; j < n_new; ++j)
        for (int d = 0; d < c.D; ++d) {
          const size_t src = ((static_cast<size_t>(b) * c.Hkv + h) * n_new + j) * c.D + d;
          const size_t dst = element_at(c, t, b, h, c.kv_lens[b] + j, d);
          k_want[dst] = to_half_bits(kn.logical[src], c.dtype);
          v_want[dst] = to_half_bits(vn.logical[src], c.dtype);
        }
    lens_want[b] += n_new;
  }
  const KvCache cache = cache_of(c, t);
  append_kv_cache(kn.view, vn.view, t.k_view, t.v_view, cache);
  if (bad.empty())
    CHECK_NOTHROW(check_device_errors());
  else
    CHECK_THROWS_WITH(check_device_errors(), Contains("kv_cache."));
  const std::vector<uint16_t> k_got = download_bits(t.k), v_got = download_bits(t.v);
  std::vector<int32_t> lens(c.B);
  t.lens.download(lens.data(), lens.size() * 4);
  CHECK(lens == lens_want);
  long k_diff = 0, v_diff = 0;
  for (size_t i = 0; i < k_got.size(); ++i) {
    k_diff += k_got[i] != k_want[i];
    v_diff += v_got[i] != v_want[i];
  }
  CHECK(k_diff == 0);
  CHECK(v_diff == 0);
}

} // namespace

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
