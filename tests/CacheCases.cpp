#include "CacheCases.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "flexjit/attention/AttentionChecks.h"
#include "flexjit/runtime/Target.h"
#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/HalfFloat.h"

using Catch::Contains;

namespace flexjit::testing {

namespace {

constexpr uint16_t kNanBits = 0xffff; // NaN in f16 and bf16

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

std::vector<uint16_t> download_bits(const DeviceBuffer& b) {
  std::vector<uint16_t> bits(b.bytes() / 2);
  b.download(bits.data(), b.bytes());
  return bits;
}

} // namespace

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

KvCache cache_of(const CacheCase& c, const CacheTensors& t) {
  KvCache cache;
  cache.kv_lens = &t.lens_view;
  if (c.page_size > 0) {
    cache.block_table = &t.table_view;
    cache.page_size = c.page_size;
  }
  return cache;
}

const KernelVariant* check_cache_case(const CacheCase& c) {
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

  const KvCache cache = cache_of(c, t);
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
  const KernelVariant& variant =
      select_variant(TemplateKind::AttentionForward, current_target(),
                     check_attention(q.view, t.k_view, t.v_view, out.view, o));
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
  return &variant;
}

void check_append_case(const CacheCase& c, int n_new, bool bshd, std::vector<int> bad) {
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

} // namespace flexjit::testing
