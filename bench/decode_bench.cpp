// Decoding: flex_attention with a few query rows over a long KV cache, the split-KV decode
// kernel (Schedule Auto takes it for q_len <= 16 on sm_90a) against the forward kernel
// (Schedule OneTilePerCta), per shape: median time of --reps single launches (CUDA events),
// GB/s of K and V read once (B * Hkv * kv_len * (Dqk + Dv) * 2 bytes / t), and the relative
// error against the float64 reference on 8 sampled rows. The output is poisoned (NaN) first.
// Then the same K and V through a paged KV cache (options.kv_cache: page pools of 16 and 128
// rows in a shuffled order, per-sequence lengths all kv_len): schedules "paged16", "paged128",
// whose last column is their time over "auto"'s (contiguous), and (not with --grid) the same
// pools stored head-major, [num_pages, Hkv, page, D] viewed through strides: "paged16-hnd",
// "paged128-hnd". bench/torch_decode.py times torch's
// flex_attention (FlexDecoding) and F.sdpa on the same shapes.
// --prefill: prefill through a paged KV cache instead (B 4, Hq 32, Hkv 8, q_len = kv_len 4096,
// D 128, bf16, causal block mask): contiguous (Auto: the persistent forward; and one tile per
// CTA), then paged 16 and paged 128 (Auto) with their time over contiguous Auto's; TFLOP/s of
// the causal half (2 * 2 * B * Hq * q_len * kv_len * D / 2) in the rate column.
// --grid: issue 13's decode grid instead (B 1/8/32/64 x kv_len 2048/8192/32768, Hq 32, Hkv 8,
// D 128, bf16; contiguous and paged): q, K and V of sequence 0 copied to every sequence (the
// same bytes move; hosts make GBs of random K / V slowly), checked on rows of all sequences.
//   flexjit_decode_bench [--json FILE] [--reps N] [--quick] [--grid | --prefill]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/HalfFloat.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

namespace {

struct Shape {
  int B, Hq, Hkv, q_len, kv_len, D;
  DType dtype;
  bool replicated = false; // sequence 0's data in every sequence (--grid)
};

// `one` ([1, H, S, D], BHSD) copied to each of B sequences; `logical` stays sequence 0's.
testing::DeviceTensor replicate(testing::DeviceTensor one, int B, DType dtype) {
  const size_t bytes = one.buffer.bytes();
  std::vector<uint16_t> bits(bytes / 2);
  one.buffer.download(bits.data(), bytes);
  testing::DeviceTensor t;
  t.buffer = DeviceBuffer(bytes * B);
  for (int b = 0; b < B; ++b)
    t.buffer.upload(bits.data(), bytes, bytes * b);
  const TensorView& v = one.view;
  t.view = t.buffer.view(dtype, {B, v.sizes[1], v.sizes[2], v.sizes[3]});
  t.logical = std::move(one.logical);
  return t;
}

// K or V of `t` ([B, H, S, D], its device bits) in a page pool [num_pages, page, H, D] whose
// page table[b][j] holds keys j * page .. of sequence b (rows moved as bits: no conversion);
// `hnd` stores it as [num_pages, H, page, D] (a head's rows of a page contiguous), which
// flex_attention reads through the strides of pool_view.
DeviceBuffer page_pool(const testing::DeviceTensor& t, const Shape& sh, int page,
                       const std::vector<int32_t>& table, int num_pages, bool hnd) {
  const int max_pages = sh.kv_len / page;
  const size_t row_bytes = static_cast<size_t>(sh.D) * 2;
  std::vector<uint16_t> src(static_cast<size_t>(sh.B) * sh.Hkv * sh.kv_len * sh.D);
  t.buffer.download(src.data(), src.size() * 2);
  std::vector<uint16_t> bits(static_cast<size_t>(num_pages) * page * sh.Hkv * sh.D);
  for (int b = 0; b < sh.B; ++b)
    for (int h = 0; h < sh.Hkv; ++h)
      for (int j = 0; j < sh.kv_len; ++j) {
        const size_t pg = static_cast<size_t>(table[static_cast<size_t>(b) * max_pages + j / page]);
        const size_t slot = static_cast<size_t>(j % page);
        std::memcpy(
            &bits[(hnd ? (pg * sh.Hkv + h) * page + slot : (pg * page + slot) * sh.Hkv + h) * sh.D],
            &src[((static_cast<size_t>(b) * sh.Hkv + h) * sh.kv_len + j) * sh.D], row_bytes);
      }
  DeviceBuffer buf(bits.size() * 2);
  buf.upload(bits.data(), bits.size() * 2);
  return buf;
}

// The [num_pages, page, H, D] view of a page_pool.
TensorView pool_view(const DeviceBuffer& pool, const Shape& sh, int page, int num_pages, bool hnd) {
  TensorView v = pool.view(sh.dtype, {num_pages, page, sh.Hkv, sh.D});
  if (hnd)
    v.strides = {int64_t{sh.Hkv} * page * sh.D, sh.D, int64_t{page} * sh.D, 1};
  return v;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : v[v.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  std::string json_path;
  int reps = 30;
  bool quick = false, grid = false, prefill = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json" && i + 1 < argc)
      json_path = argv[++i];
    else if (a == "--reps" && i + 1 < argc)
      reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--quick")
      quick = true;
    else if (a == "--grid")
      grid = true;
    else if (a == "--prefill")
      prefill = true;
    else {
      std::fprintf(stderr, "usage: flexjit_decode_bench [--json FILE] [--reps N] [--quick] "
                           "[--grid | --prefill]\n");
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0); // each row as it is measured
  if (!cuda_available()) {
    std::printf("flexjit_decode_bench: no CUDA device: skipped execution\n");
    return 0;
  }
  std::vector<Shape> shapes = {
      {32, 32, 8, 1, 8192, 128, DType::BF16},  // issue 13's decode step
      {8, 32, 8, 1, 32768, 128, DType::BF16},  // longer context, fewer sequences
      {1, 32, 8, 1, 131072, 128, DType::BF16}, // one long sequence: many splits
      {32, 32, 8, 4, 8192, 128, DType::BF16},  // four rows (speculative decoding)
      {64, 32, 4, 1, 4096, 128, DType::BF16},  // GQA 8
      {32, 16, 16, 1, 8192, 64, DType::F16},   // no GQA, D = 64
  };
  if (grid) {
    shapes.clear();
    for (int B : {1, 8, 32, 64})
      for (int kv_len : {2048, 8192, 32768})
        shapes.push_back({B, 32, 8, 1, kv_len, 128, DType::BF16, true});
  }
  if (prefill)
    shapes = {{4, 32, 8, 4096, 4096, 128, DType::BF16}};
  if (quick)
    shapes.resize(1);
  // Prefill's causal mask (built once per shape below), else no mask.
  const MaskMod mask = prefill ? seeds::causal() : MaskMod();
  FILE* json = json_path.empty() ? nullptr : std::fopen(json_path.c_str(), "w");
  fmt::print("{:5} {:>4} {:>3} {:>3} {:>3} {:>7} {:>4} {:>10} {:>9} {:>8} {:>9} {:>8} {:>9}\n",
             "dtype", "B", "Hq", "Hkv", "q", "kv_len", "D", "schedule", "ms",
             prefill ? "TFLOP/s" : "GB/s", "rel err", "cold ms", prefill ? "x contig" : "speedup");
  using Schedule = FlexAttentionOptions::Schedule;
  for (const Shape& sh : shapes) {
    std::mt19937 rng(1234 + sh.kv_len + sh.q_len);
    const int B_data = sh.replicated ? 1 : sh.B; // sequences with data of their own
    auto make = [&](int H, int S, bool random) {
      auto t = testing::make_tensor(B_data, H, S, sh.D, sh.dtype, false, rng, random);
      return sh.replicated ? replicate(std::move(t), sh.B, sh.dtype) : std::move(t);
    };
    auto q = make(sh.Hq, sh.q_len, true);
    auto k = make(sh.Hkv, sh.kv_len, true);
    auto v = make(sh.Hkv, sh.kv_len, true);
    auto out = make(sh.Hq, sh.q_len, false);
    const int64_t rows = int64_t{sh.B} * sh.Hq * sh.q_len;
    const int64_t data_rows = int64_t{B_data} * sh.Hq * sh.q_len;
    std::vector<int64_t> pick;
    std::uniform_int_distribution<int64_t> any(0, data_rows - 1);
    for (int i = 0; i < 8; ++i)
      pick.push_back(any(rng));
    const testing::AttentionInputs inputs{B_data, sh.Hq,     sh.Hkv,    sh.q_len,  sh.kv_len,
                                          sh.D,   q.logical, k.logical, v.logical, sh.D};
    const testing::AttentionRows ref = testing::attention_reference(
        inputs, mask, ScoreMod(), 1.0 / std::sqrt(static_cast<double>(sh.D)), {}, pick);
    BlockMask bm;
    if (prefill)
      bm = create_block_mask(mask, 1, 1, sh.q_len, sh.kv_len);
    // The output row checked against reference row i: itself, or (replicated) the same row of
    // sequence i % B.
    auto out_row = [&](size_t i) {
      return ref.rows[i] + (sh.replicated ? static_cast<int64_t>(i % sh.B) * data_rows : 0);
    };
    // GB/s of K and V read once, or (prefill) GFLOP / ms of the causal half.
    const double bytes =
        prefill ? 2.0 * sh.B * sh.Hq * static_cast<double>(sh.q_len) * sh.kv_len * sh.D * 1e-3
                : 2.0 * sh.B * sh.Hkv * static_cast<double>(sh.kv_len) * (2 * sh.D);
    double split_ms = NAN;
    // auto, one-tile, paged 16, paged 128, and the paged pools stored head-major (HND)
    for (int run = 0; run < 6; ++run) {
      if (grid && (run == 1 || run >= 4))
        continue;
      const Schedule schedule = run == 1 ? Schedule::OneTilePerCta : Schedule::Auto;
      const int page = run == 2 || run == 4 ? 16 : run == 3 || run == 5 ? 128 : 0;
      const bool hnd = run >= 4;
      FlexAttentionOptions o;
      o.schedule = schedule;
      if (prefill)
        o.block_mask = &bm;
      DeviceBuffer k_pool, v_pool, table_buf, lens_buf;
      TensorView k_view = k.view, v_view = v.view, table_view, lens_view;
      KvCache cache;
      if (page > 0) {
        const int max_pages = sh.kv_len / page, num_pages = sh.B * max_pages;
        std::vector<int32_t> table(static_cast<size_t>(num_pages));
        std::iota(table.begin(), table.end(), 0);
        std::shuffle(table.begin(), table.end(), rng);
        k_pool = page_pool(k, sh, page, table, num_pages, hnd);
        v_pool = page_pool(v, sh, page, table, num_pages, hnd);
        k_view = pool_view(k_pool, sh, page, num_pages, hnd);
        v_view = pool_view(v_pool, sh, page, num_pages, hnd);
        table_buf = DeviceBuffer(table.size() * 4);
        table_buf.upload(table.data(), table.size() * 4);
        table_view = table_buf.view(DType::I32, {sh.B, max_pages});
        const std::vector<int32_t> lens(static_cast<size_t>(sh.B), sh.kv_len);
        lens_buf = DeviceBuffer(lens.size() * 4);
        lens_buf.upload(lens.data(), lens.size() * 4);
        lens_view = lens_buf.view(DType::I32, {sh.B});
        cache.kv_lens = &lens_view;
        cache.block_table = &table_view;
        cache.page_size = page;
        o.kv_cache = &cache;
      }
      auto call = [&] { flex_attention(q.view, k_view, v_view, out.view, o); };
      out.buffer.fill(0xff);
      const auto t0 = std::chrono::steady_clock::now();
      call();
      Stream{}.synchronize();
      const double cold =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::vector<double> times;
      for (int i = 0; i < reps; ++i)
        times.push_back(time_on_stream(Stream{}, call, 1));
      const double ms = median(times);
      std::vector<uint16_t> bits(static_cast<size_t>(rows) * sh.D);
      out.buffer.download(bits.data(), bits.size() * 2);
      std::vector<double> got;
      for (size_t i = 0; i < ref.rows.size(); ++i)
        for (int d = 0; d < sh.D; ++d)
          got.push_back(
              testing::from_half_bits(bits[static_cast<size_t>(out_row(i)) * sh.D + d], sh.dtype));
      const double err = testing::relative_error(got, ref.out);
      const char* names[] = {"auto",     "one-tile",    "paged16",
                             "paged128", "paged16-hnd", "paged128-hnd"};
      const char* name = names[run];
      if (run == 0)
        split_ms = ms;
      fmt::print("{:5} {:>4} {:>3} {:>3} {:>3} {:>7} {:>4} {:>10} {:>9.4f} {:>8.0f} {:>9.2e} "
                 "{:>8.1f} {:>9.2f}\n",
                 to_string(sh.dtype), sh.B, sh.Hq, sh.Hkv, sh.q_len, sh.kv_len, sh.D, name, ms,
                 bytes / ms / 1e6, err, cold, ms / split_ms);
      if (json)
        std::fprintf(json,
                     "{\"dtype\":\"%s\",\"B\":%d,\"Hq\":%d,\"Hkv\":%d,\"q_len\":%d,\"kv_len\":%d,"
                     "\"D\":%d,\"schedule\":\"%s\",\"ms\":%.5f,\"gbps\":%.1f,\"rel_err\":%.3e,"
                     "\"cold_ms\":%.1f}\n",
                     std::string(to_string(sh.dtype)).c_str(), sh.B, sh.Hq, sh.Hkv, sh.q_len,
                     sh.kv_len, sh.D, name, ms, bytes / ms / 1e6, err, cold);
    }
  }
  if (json)
    std::fclose(json);
  return 0;
}
