// The attention module's errors (attention/AttentionChecks.cpp): flex_attention's and
// flex_attention_backward's argument checks run before any CUDA call, so they are
// tested here without a GPU: views with Device::Cuda and fake, aligned pointers.
#include <catch2/catch.hpp>

#include <limits>

#include <flexjit/flexjit.h>

#include "flexjit/testing/SeedMods.h"

using namespace flexjit;
using Catch::Contains;

namespace {

const void* fake(uintptr_t address) {
  return reinterpret_cast<const void*>(address);
}

TensorView tensor(uintptr_t address, int B, int H, int S, int D, DType dtype = DType::F16) {
  return TensorView::contiguous(fake(address), dtype, {B, H, S, D}, Device::Cuda);
}

struct Problem {
  TensorView q = tensor(0x100000, 2, 4, 256, 64);
  TensorView k = tensor(0x200000, 2, 2, 320, 64);
  TensorView v = tensor(0x300000, 2, 2, 320, 64);
  TensorView out = tensor(0x400000, 2, 4, 256, 64);
};

void expect_error(const Problem& p, const FlexAttentionOptions& o, const std::string& a,
                  const std::string& b = "") {
  REQUIRE_THROWS_WITH(flex_attention(p.q, p.k, p.v, p.out, o), Contains(a) && Contains(b));
}

} // namespace

TEST_CASE("flex_attention: dtypes and head dims", "[errors][attention]") {
  Problem p;
  p.k.dtype = DType::BF16;
  expect_error(p, {}, "mismatched dtypes", "bf16");
  p = Problem();
  p.q.dtype = p.k.dtype = p.v.dtype = p.out.dtype = DType::F32;
  expect_error(p, {}, "f32", "f16 or bf16");
  p = Problem();
  p.v.sizes[3] = 128;
  expect_error(p, {}, "head dim mismatch", "128"); // out is 64
  p = Problem();
  p.v = tensor(0x300000, 2, 2, 320, 128);
  p.out = tensor(0x400000, 2, 4, 256, 128);
  expect_error(p, {}, "q/k head dim 64 with v head dim 128 is not supported",
               "supported (q/k, v) head dims: (32, 32), (64, 64), (80, 80), (96, 96), (128, 128), "
               "(192, 128), (192, 192) and (256, 256)");
  p.out.sizes[2] = 255;
  expect_error(p, {},
               "out shape [2, 4, 255, 128] does not match q's [2, 4, 256] and v's head dim "
               "128");
  p = Problem();
  for (TensorView* t : {&p.q, &p.k, &p.v, &p.out})
    *t = tensor(reinterpret_cast<uintptr_t>(t->data), static_cast<int>(t->sizes[0]),
                static_cast<int>(t->sizes[1]), static_cast<int>(t->sizes[2]), 48);
  expect_error(p, {}, "head dim 48 is not supported",
               "supported head dims: 32, 64, 80, 96, 128, 192 and 256");
}

TEST_CASE("flex_attention: shapes", "[errors][attention]") {
  Problem p;
  p.k.sizes[0] = 3;
  expect_error(p, {}, "batch size mismatch", "3");
  p = Problem();
  p.q.sizes[1] = p.out.sizes[1] = 3;
  expect_error(p, {}, "Hq = 3", "Hkv = 2");
  p = Problem();
  p.v.sizes[2] = 300;
  expect_error(p, {}, "kv length mismatch", "300");
  p = Problem();
  p.out.sizes[2] = 255;
  expect_error(p, {}, "out shape", "255");
  p = Problem();
  p.q.rank = 3;
  expect_error(p, {}, "q must be a 4-D");
}

TEST_CASE("flex_attention: pointers, memory, strides and alignment", "[errors][attention]") {
  Problem p;
  p.k.data = nullptr;
  expect_error(p, {}, "k is a null pointer");
  p = Problem();
  p.v.device = Device::Host;
  expect_error(p, {}, "v is host memory");
  p = Problem();
  p.out.data = fake(0x400008);
  expect_error(p, {}, "out pointer", "16-byte aligned");
  p = Problem();
  p.q.strides[3] = 2;
  expect_error(p, {}, "q has head-dim stride 2");
  p = Problem();
  p.k.strides[2] = 68; // not a multiple of 8
  expect_error(p, {}, "k stride 68", "multiple of 8");
  // BSHD through strides is fine as far as the checks go (no copies).
  p = Problem();
  p.q.strides = {256 * 4 * 64, 64, 4 * 64, 1};
  FlexAttentionOptions o;
  TensorView lse = TensorView::contiguous(fake(0x500000), DType::F16, {2, 4, 256}, Device::Cuda);
  o.lse = &lse;
  expect_error(p, o, "lse has dtype f16", "f32");
  lse = TensorView::contiguous(fake(0x500000), DType::F32, {2, 4, 255}, Device::Cuda);
  expect_error(p, o, "lse must be [B, Hq, q_len] = [2, 4, 256]");
  lse = TensorView::contiguous(fake(0x500000), DType::F32, {2, 4, 256}, Device::Host);
  expect_error(p, o, "lse is host memory");
}

TEST_CASE("flex_attention: block masks built for something else", "[errors][attention]") {
  Problem p;
  FlexAttentionOptions o;
  BlockMask other_len = create_block_mask(seeds::causal(), 1, 1, 256, 256);
  o.block_mask = &other_len;
  expect_error(p, o, "q_len 256 and kv_len 256", "kv_len 320");
  BlockMaskOptions small;
  small.q_block = 64;
  BlockMask small_q = create_block_mask(seeds::causal(), 1, 1, 256, 320, small);
  o.block_mask = &small_q;
  expect_error(p, o, "q_block 64", "multiple of 128");
  BlockMaskOptions small_kv;
  small_kv.kv_block = 32;
  BlockMask small_k = create_block_mask(seeds::causal(), 1, 1, 256, 320, small_kv);
  o.block_mask = &small_k;
  expect_error(p, o, "kv_block 32");
  BlockMask bad_b = create_block_mask(seeds::causal(), 3, 1, 256, 320);
  o.block_mask = &bad_b;
  expect_error(p, o, "block mask B 3", "batch size 2");
  BlockMask bad_h = create_block_mask(seeds::causal(), 1, 2, 256, 320);
  o.block_mask = &bad_h;
  expect_error(p, o, "block mask H 2", "4");
}

TEST_CASE("flex_attention: the mods' buffers", "[errors][attention]") {
  Problem p;
  // A captured host buffer: the GPU needs device memory.
  const std::vector<float> slopes = seeds::alibi_slopes(4);
  FlexAttentionOptions o;
  o.score_mod = seeds::alibi_buffer(slopes);
  expect_error(p, o, "alibi_slopes", "host memory");
  // Bound to device memory but too short for the heads that index it.
  o.bindings.buffers["alibi_slopes"] =
      TensorView::contiguous(fake(0x600000), DType::F32, {3}, Device::Cuda);
  expect_error(p, o, "alibi_slopes", "indexed by h");
  // A document id buffer indexed by q_idx and kv_idx needs max(q_len, kv_len) ids.
  const std::vector<int32_t> ids(512, 0);
  BlockMask bm = create_block_mask(seeds::document(ids), 1, 1, 256, 320);
  FlexAttentionOptions od;
  od.block_mask = &bm;
  od.bindings.buffers["document_id"] =
      TensorView::contiguous(fake(0x700000), DType::I32, {300}, Device::Cuda);
  expect_error(p, od, "document_id", "kv_len is 320");
  od.bindings.buffers["document_id"] =
      TensorView::contiguous(fake(0x700000), DType::I32, {200}, Device::Cuda);
  expect_error(p, od, "document_id", "q_len is 256");
  od.bindings.buffers["document_id"] =
      TensorView::contiguous(nullptr, DType::I32, {400}, Device::Cuda);
  expect_error(p, od, "document_id", "null");
}

TEST_CASE("flex_attention: sizes, lse layout, scale and a modified block mask",
          "[errors][attention]") {
  Problem p;
  p.q.sizes[2] = 0;
  expect_error(p, {}, "q size 0 in dimension 2 must be in [1, 2^31)");
  p = Problem();
  p.v.sizes[1] = 1;
  expect_error(p, {}, "number of kv heads mismatch: v has 1, k has 2");
  p = Problem();
  for (TensorView* t : {&p.q, &p.k, &p.v, &p.out})
    *t = tensor(reinterpret_cast<uintptr_t>(t->data), 70000, static_cast<int>(t->sizes[1]),
                static_cast<int>(t->sizes[2]), 64);
  expect_error(p, {}, "B = 70000 and Hq = 4 must be at most 65535");
  p = Problem();
  FlexAttentionOptions o;
  o.scale = std::numeric_limits<float>::infinity();
  expect_error(p, o, "scale inf is not finite");
  o = FlexAttentionOptions();
  TensorView lse = TensorView::contiguous(nullptr, DType::F32, {2, 4, 256}, Device::Cuda);
  o.lse = &lse;
  expect_error(p, o, "lse is a null pointer (pass lse = nullptr for no lse)");
  lse = TensorView::contiguous(fake(0x500000), DType::F32, {2, 4, 256}, Device::Cuda);
  lse.strides = {256 * 4 * 2, 256 * 2, 2, 0};
  expect_error(p, o, "lse has stride 2 over q; expected 1");
  lse = TensorView::contiguous(fake(0x500002), DType::F32, {2, 4, 256}, Device::Cuda);
  expect_error(p, o, "lse pointer", "is not 4-byte aligned");
  BlockMask modified = create_block_mask(seeds::causal(), 1, 1, 256, 320);
  modified.kv_indices.pop_back();
  o = FlexAttentionOptions();
  o.block_mask = &modified;
  expect_error(p, o,
               "the block mask's arrays do not match its shape [1, 1, 2, 3] (was it "
               "modified?)");
}

TEST_CASE("flex_attention: a valid call without a GPU fails only at the CUDA step",
          "[errors][attention]") {
  if (cuda_available()) {
    SUCCEED("skipped: a CUDA device is present");
    return;
  }
  // The block mask builder's side (Device::Cuda, Device::Auto) is in
  // test_blockmask_errors.cpp.
  Problem p;
  REQUIRE_THROWS_WITH(flex_attention(p.q, p.k, p.v, p.out, {}), Contains("CUDA is not available"));
}

TEST_CASE("flex_attention_backward: the logsumexp and gradient shapes", "[errors][attention]") {
  Problem p;
  const TensorView d_out = tensor(0x500000, 2, 4, 256, 64);
  const TensorView dq = tensor(0x600000, 2, 4, 256, 64);
  const TensorView dk = tensor(0x700000, 2, 2, 320, 64);
  const TensorView dv = tensor(0x800000, 2, 2, 320, 64);
  const TensorView lse =
      TensorView::contiguous(fake(0x900000), DType::F32, {2, 4, 256}, Device::Cuda);
  auto expect = [&](const TensorView& g_out, const TensorView& g_q, const TensorView& g_k,
                    const TensorView& g_v, const FlexAttentionOptions& o, const std::string& a,
                    const std::string& b) {
    REQUIRE_THROWS_WITH(flex_attention_backward(p.q, p.k, p.v, p.out, g_out, g_q, g_k, g_v, o),
                        Contains(a) && Contains(b));
  };
  FlexAttentionOptions o;
  expect(d_out, dq, dk, dv, o, "options.lse is null", "logsumexp");
  o.lse = &lse;
  expect(tensor(0x500000, 2, 4, 255, 64), dq, dk, dv, o, "d_out shape [2, 4, 255, 64]",
         "out's [2, 4, 256, 64]");
  expect(d_out, tensor(0x600000, 2, 4, 256, 64, DType::BF16), dk, dv, o, "dq has dtype bf16",
         "q's dtype f16");
  expect(d_out, dq, tensor(0x700000, 2, 4, 320, 64), dv, o, "dk shape [2, 4, 320, 64]",
         "k's [2, 2, 320, 64]");
  expect(d_out, dq, dk, tensor(0x800004, 2, 2, 320, 64), o, "dv pointer", "aligned");
  const TensorView short_lse =
      TensorView::contiguous(fake(0x900000), DType::F32, {2, 4, 255}, Device::Cuda);
  o.lse = &short_lse;
  expect(d_out, dq, dk, dv, o, "lse must be [B, Hq, q_len]", "[2, 4, 256]");
}

// The forward has more head dims than the backward: the backward names its own.
TEST_CASE("flex_attention_backward: a head dim only the forward has", "[errors][attention]") {
  Problem p;
  for (TensorView* t : {&p.q, &p.k, &p.v, &p.out})
    *t = tensor(reinterpret_cast<uintptr_t>(t->data), static_cast<int>(t->sizes[0]),
                static_cast<int>(t->sizes[1]), static_cast<int>(t->sizes[2]), 96);
  const TensorView lse =
      TensorView::contiguous(fake(0x900000), DType::F32, {2, 4, 256}, Device::Cuda);
  FlexAttentionOptions o;
  o.lse = &lse;
  REQUIRE_THROWS_WITH(flex_attention_backward(p.q, p.k, p.v, p.out, p.out, p.q, p.k, p.v, o),
                      Contains("(q/k, v) head dims (96, 96) have no backward kernel") &&
                          Contains("the backward supports (64, 64) and (128, 128)"));
}

TEST_CASE("flex_attention: KV cache arguments", "[errors][attention][cache]") {
  Problem p; // q [2, 4, 256, 64] (made q_len 3 below: the decode kernel; prefill at the end)
  p.q = tensor(0x100000, 2, 4, 3, 64);
  p.out = tensor(0x400000, 2, 4, 3, 64);
  const TensorView lens = TensorView::contiguous(fake(0x500000), DType::I32, {2}, Device::Cuda);
  const TensorView table = TensorView::contiguous(fake(0x600000), DType::I32, {2, 8}, Device::Cuda);
  KvCache cache;
  FlexAttentionOptions o;
  o.kv_cache = &cache;
  // Lengths: int32 [B] in device memory, stride 1.
  TensorView bad = lens;
  bad.dtype = DType::F32;
  cache.kv_lens = &bad;
  expect_error(p, o, "kv_cache.kv_lens has dtype f32; expected i32");
  bad = TensorView::contiguous(fake(0x500000), DType::I32, {3}, Device::Cuda);
  expect_error(p, o, "kv_cache.kv_lens must be [B] of [2], got rank 1 [3]");
  bad = TensorView::contiguous(fake(0x500000), DType::I32, {2}, Device::Host);
  expect_error(p, o, "kv_cache.kv_lens is host memory");
  bad = TensorView::contiguous(nullptr, DType::I32, {2}, Device::Cuda);
  expect_error(p, o, "kv_cache.kv_lens is a null pointer");
  bad = TensorView::contiguous(fake(0x500000), DType::I32, {2}, Device::Cuda);
  bad.strides[0] = 2;
  expect_error(p, o,
               "kv_cache.kv_lens must be 4-byte aligned with stride 1 over its last "
               "dimension (stride 2)");
  cache.kv_lens = &lens;
  cache.page_size = 64;
  expect_error(p, o, "kv_cache.page_size 64 without a block_table");
  // Pages: a power of two from 16 to 256; the pools' dimension 1 is the page size.
  cache.block_table = &table;
  for (int bad_size : {8, 48, 512}) {
    cache.page_size = bad_size;
    expect_error(
        p, o, fmt::format("kv_cache.page_size {} must be a power of two from 16 to 256", bad_size));
  }
  cache.page_size = 64;
  p.k = tensor(0x200000, 20, 32, 2, 64); // [num_pages, page_size 32, Hkv, D]
  p.v = tensor(0x300000, 20, 32, 2, 64);
  expect_error(p, o, "k is a page pool [num_pages, page_size, Hkv, D] with page_size 64",
               "its dimension 1 has 32");
  p.k = tensor(0x200000, 20, 64, 2, 64);
  p.v = tensor(0x300000, 21, 64, 2, 64);
  expect_error(p, o, "number of pages mismatch: v has 21, k has 20");
  p.v = tensor(0x300000, 20, 64, 3, 64);
  expect_error(p, o, "number of kv heads mismatch: v has 3, k has 2");
  p.v = tensor(0x300000, 20, 64, 2, 64);
  const TensorView table3 =
      TensorView::contiguous(fake(0x600000), DType::I32, {3, 8}, Device::Cuda);
  cache.block_table = &table3;
  expect_error(p, o, "kv_cache.block_table must be [B, max_pages] of [2, 8], got rank 2 [3, 8]");
  const TensorView huge =
      TensorView::contiguous(fake(0x600000), DType::I32, {2, 1 << 25}, Device::Cuda);
  cache.block_table = &huge;
  expect_error(p, o, "kv_cache capacity max_pages * page_size = 2147483648 must be below 2^31");
  cache.block_table = &table;
  // A block mask is built for the capacity, max_pages * page_size = 512.
  const BlockMask bm = create_block_mask(seeds::causal(), 1, 1, 3, 500);
  o.block_mask = &bm;
  expect_error(p, o, "the block mask was built for q_len 3 and kv_len 500",
               "q_len 3 and kv_len 512");
  o.block_mask = nullptr;
  // The warp-specialized forward reads a cache too (prefill: a long q, or a schedule that is not
  // decoding); the kernels that do not -- the sm_90a wgmma forward a block mask of 64-row kv
  // blocks takes, the sm_80 forward, the backward -- name themselves.
  p.q = tensor(0x100000, 2, 4, 256, 64);
  p.out = tensor(0x400000, 2, 4, 256, 64);
  BlockMaskOptions fine;
  fine.kv_block = 64;
  const BlockMask bm64 = create_block_mask(seeds::causal(), 1, 1, 256, 512, fine);
  o.block_mask = &bm64;
  expect_error(p, o,
               "a KV cache (options.kv_cache) is read by the sm_90a warp-specialized forward (one "
               "tile per CTA or persistent; a block mask's kv_block a multiple of its kv tile) and "
               "split-KV decode kernels only",
               "not by attention_fwd f16 d64 sm_80 (the sm_80 mma.sync forward)");
  o.block_mask = nullptr;
  const TensorView lse =
      TensorView::contiguous(fake(0x700000), DType::F32, {2, 4, 256}, Device::Cuda);
  o.lse = &lse;
  // (dk and dv the pools' shapes: the shape checks pass, the kernel's choice fails.)
  REQUIRE_THROWS_WITH(
      flex_attention_backward(p.q, p.k, p.v, p.out, p.out, p.q, p.k, p.v, o),
      Contains("a KV cache (options.kv_cache) is read by the sm_90a warp-specialized forward") &&
          Contains("not by attention_bwd f16 d64") && Contains("(the backward)"));
  o.lse = nullptr;
  p.q = tensor(0x100000, 2, 4, 3, 64);
  p.out = tensor(0x400000, 2, 4, 3, 64);
  o.schedule = FlexAttentionOptions::Schedule::OneTilePerCta;
  if (!cuda_available())
    expect_error(p, o, "CUDA is not available");
  // Everything well formed: the call gets as far as the device.
  o.schedule = FlexAttentionOptions::Schedule::Auto;
  if (!cuda_available())
    expect_error(p, o, "CUDA is not available");
}

TEST_CASE("append_kv_cache: arguments", "[errors][attention][cache]") {
  const TensorView lens = TensorView::contiguous(fake(0x500000), DType::I32, {2}, Device::Cuda);
  const TensorView table = TensorView::contiguous(fake(0x600000), DType::I32, {2, 8}, Device::Cuda);
  TensorView k_new = tensor(0x100000, 2, 4, 3, 64), v_new = tensor(0x180000, 2, 4, 3, 64);
  TensorView k_cache = tensor(0x200000, 2, 4, 512, 64), v_cache = tensor(0x300000, 2, 4, 512, 64);
  KvCache cache;
  auto expect = [&](const std::string& what) {
    INFO(what);
    REQUIRE_THROWS_WITH(append_kv_cache(k_new, v_new, k_cache, v_cache, cache),
                        Catch::Contains("append_kv_cache: " + what));
  };
  expect("kv_cache.kv_lens is null; appending writes at each sequence's length");
  cache.kv_lens = &lens;
  v_new = tensor(0x180000, 2, 4, 3, 64, DType::BF16);
  expect("v_new has dtype bf16; expected k_new's dtype f16");
  v_new = tensor(0x180000, 2, 4, 2, 64);
  expect("new tokens mismatch: v_new has 2, k_new has 3");
  v_new = tensor(0x180000, 2, 4, 3, 64);
  v_cache = tensor(0x300000, 2, 4, 511, 64);
  expect("cache length mismatch: v_cache has 511, k_cache has 512");
  v_cache = tensor(0x300000, 2, 2, 512, 64);
  expect("number of kv heads mismatch: v_cache has 2, k_new has 4");
  v_cache = tensor(0x300000, 2, 4, 512, 64);
  k_cache = tensor(0x200000, 2, 4, 512, 128);
  expect("head dim mismatch: k_cache has 128, k_new has 64");
  k_cache = tensor(0x200000, 3, 4, 512, 64);
  expect("batch size mismatch: k_cache has 3, k_new has 2");
  k_cache = tensor(0x200000, 2, 4, 512, 64);
  k_new.data = nullptr;
  expect("k_new is a null pointer");
  k_new = tensor(0x100000, 2, 4, 3, 64);
  // Paged: pools [num_pages, page_size, Hkv, D] and a capacity of max_pages * page_size.
  cache.block_table = &table;
  cache.page_size = 16;
  k_cache = tensor(0x200000, 20, 16, 4, 64);
  v_cache = tensor(0x300000, 20, 32, 4, 64);
  expect("v is a page pool [num_pages, page_size, Hkv, D] with page_size 16");
  v_cache = tensor(0x300000, 20, 16, 4, 64);
  k_new = tensor(0x100000, 2, 4, 200, 64);
  v_new = tensor(0x180000, 2, 4, 200, 64);
  expect("200 new tokens per sequence exceed the cache's capacity 128");
  k_new = tensor(0x100000, 2, 4, 3, 64);
  v_new = tensor(0x180000, 2, 4, 3, 64);
  if (!cuda_available())
    REQUIRE_THROWS_WITH(append_kv_cache(k_new, v_new, k_cache, v_cache, cache),
                        Catch::Contains("CUDA is not available"));
}

TEST_CASE("merge_attention: arguments", "[errors][attention][merge]") {
  TensorView oa = tensor(0x100000, 2, 4, 33, 64), ob = tensor(0x200000, 2, 4, 33, 64),
             out = tensor(0x300000, 2, 4, 33, 64);
  auto lse_view = [](uintptr_t at, int64_t S) {
    return TensorView::contiguous(fake(at), DType::F32, {2, 4, S}, Device::Cuda);
  };
  TensorView la = lse_view(0x400000, 33), lb = lse_view(0x500000, 33), l = lse_view(0x600000, 33);
  auto expect = [&](const std::string& what) {
    INFO(what);
    REQUIRE_THROWS_WITH(merge_attention(oa, la, ob, lb, out, l),
                        Catch::Contains("merge_attention: " + what));
  };
  ob = tensor(0x200000, 2, 4, 33, 64, DType::BF16);
  expect("out_b has dtype bf16; expected out_a's dtype f16");
  ob = tensor(0x200000, 2, 4, 32, 64);
  expect("out_b shape [2, 4, 32, 64] does not match out_a's [2, 4, 33, 64]");
  ob = tensor(0x200000, 2, 4, 33, 64);
  out.data = nullptr;
  expect("out is a null pointer");
  out = tensor(0x300000, 2, 4, 33, 64);
  out.device = Device::Host;
  expect("out is host memory");
  out = tensor(0x300000, 2, 4, 33, 64);
  oa = tensor(0x100000, 2, 4, 33, 264);
  ob = tensor(0x200000, 2, 4, 33, 264);
  out = tensor(0x300000, 2, 4, 33, 264);
  expect("head dim 264 must be a multiple of 8 and at most 256");
  oa = tensor(0x100000, 2, 4, 33, 64);
  ob = tensor(0x200000, 2, 4, 33, 64);
  out = tensor(0x300000, 2, 4, 33, 64);
  la.data = nullptr;
  expect("lse_a is a null pointer");
  la = lse_view(0x400000, 33);
  lb = lse_view(0x500000, 34);
  expect("lse_b must be [B, H, S] = [2, 4, 33], got rank 3 [2, 4, 34]");
  lb = lse_view(0x500000, 33);
  l.dtype = DType::F16;
  expect("lse has dtype f16; expected f32");
  l = lse_view(0x600000, 33);
  l.strides = {33 * 4 * 2, 33 * 2, 2, 0};
  expect("lse has stride 2 over S; expected 1");
  l = lse_view(0x600002, 33);
  expect("lse pointer");
  l = lse_view(0x600000, 33);
  if (!cuda_available())
    REQUIRE_THROWS_WITH(merge_attention(oa, la, ob, lb, out, l),
                        Catch::Contains("CUDA is not available"));
}
