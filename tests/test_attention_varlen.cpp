// attention_forward_varlen without a GPU: the mods it builds, evaluated by the CPU interpreter
// over packed sequences of unequal q and kv lengths (1, 129, 0 and 170 query tokens), against
// FlashAttention's per-sequence rules written out directly; its argument checks; cu_seqlens'
// checks. On a GPU: tests/test_attention_gpu_varlen.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include <flexjit/flexjit.h>

#include "flexjit/attention/AttentionChecks.h"
#include "flexjit/attention/VarlenMods.h"
#include "flexjit/compiler/Interpreter.h"
#include "flexjit/compiler/Visitor.h"

using namespace flexjit;
using Catch::Contains;

namespace {

const std::vector<int32_t> kCuQ = {0, 1, 130, 130, 300}, kCuK = {0, 5, 260, 261, 600};
constexpr int kHq = 3;

// FlashAttention's rule for sequence s, local q row i and key j (d = len_k - len_q).
struct Rule {
  bool causal = false;
  int left = -1, right = -1;
  std::function<bool(int, int, int, int)> user = nullptr; // (s, h, i, j)
  bool allows(int s, int h, int i, int j) const {
    const int d = (kCuK[s + 1] - kCuK[s]) - (kCuQ[s + 1] - kCuQ[s]);
    return (!causal || j <= i + d) && (left < 0 || j >= i + d - left) &&
           (right < 0 || j <= i + d + right) && (!user || user(s, h, i, j));
  }
};

struct HostData {
  std::vector<int32_t> seq_q = token_sequences(kCuQ), seq_k = token_sequences(kCuK);
  TensorView seq_q_view =
      TensorView::contiguous(seq_q.data(), DType::I32, {static_cast<int64_t>(seq_q.size())});
  TensorView seq_k_view =
      TensorView::contiguous(seq_k.data(), DType::I32, {static_cast<int64_t>(seq_k.size())});
  TensorView cu_q = TensorView::contiguous(kCuQ.data(), DType::I32, {5});
  TensorView cu_k = TensorView::contiguous(kCuK.data(), DType::I32, {5});
};

// Whether every (token, key, head) of the packed sequences gets the rule's answer.
void check_mask(const VarlenOptions& o, const Rule& rule) {
  HostData h;
  const VarlenMods mods = varlen_mods(o);
  const Bindings b = varlen_bindings(o, h.seq_q_view, h.seq_k_view, h.cu_q, h.cu_k);
  const std::vector<uint8_t> got = create_mask(mods.mask, 1, kHq, 300, 600, b);
  int wrong = 0, allowed = 0;
  for (int hh = 0; hh < kHq; ++hh)
    for (int t = 0; t < 300; ++t)
      for (int u = 0; u < 600; ++u) {
        const int s = h.seq_q[t];
        const bool want = h.seq_k[u] == s && rule.allows(s, hh, t - kCuQ[s], u - kCuK[s]);
        allowed += want;
        wrong += (got[(static_cast<size_t>(hh) * 300 + t) * 600 + u] != 0) != want;
      }
  CHECK(wrong == 0);
  CHECK(allowed > 0);
}

} // namespace

TEST_CASE("varlen: the mask is each sequence's own, causal bottom-right, windows",
          "[attention][varlen]") {
  VarlenOptions o;
  check_mask(o, {});
  o.causal = true;
  check_mask(o, {true});
  o.window_left = 50;
  o.window_right = 0;
  check_mask(o, {true, 50, 0});
  o.causal = false;
  o.window_left = 30;
  o.window_right = 20;
  check_mask(o, {false, 30, 20});
  // The user's mask at local positions, b the sequence.
  o.window_left = o.window_right = -1;
  o.mask_mod = mask_mod("user", [](Idx b, Idx h, Idx q, Idx kv) {
    return (kv % 3 != 0) || (b == 1 && h == 2) || (q == 0);
  });
  check_mask(o, {false, -1, -1, [](int s, int h, int i, int j) {
                   return j % 3 != 0 || (s == 1 && h == 2) || i == 0;
                 }});
}

TEST_CASE("varlen: the score_mod is the user's, then softcap, then ALiBi at local positions",
          "[attention][varlen]") {
  HostData h;
  const std::vector<float> slopes = {0.5f, 0.25f, 0.125f};
  std::vector<float> slopes_b;
  for (int s = 0; s < 4; ++s)
    for (int hh = 0; hh < kHq; ++hh)
      slopes_b.push_back(0.1f * (s + 1) + 0.01f * hh);
  const TensorView sv = TensorView::contiguous(slopes.data(), DType::F32, {kHq});
  const TensorView sbv = TensorView::contiguous(slopes_b.data(), DType::F32, {4, kHq});
  for (const TensorView* alibi : {&sv, &sbv}) {
    VarlenOptions o;
    o.softcap = 20.0f;
    o.alibi_slopes = alibi;
    o.score_mod = score_mod("user", [](Score s, Idx b, Idx, Idx q, Idx kv) {
      return s + FloatExpr(b) + FloatExpr(q - kv) * 0.01f;
    });
    const VarlenMods mods = varlen_mods(o);
    const Bindings b = varlen_bindings(o, h.seq_q_view, h.seq_k_view, h.cu_q, h.cu_k);
    double worst = 0;
    int checked = 0;
    for (int hh = 0; hh < kHq; ++hh)
      for (int t = 0; t < 300; t += 7)
        for (int u = 0; u < 600; u += 5) {
          const int s = h.seq_q[t];
          if (h.seq_k[u] != s)
            continue;
          const int i = t - kCuQ[s], j = u - kCuK[s];
          const int d = (kCuK[s + 1] - kCuK[s]) - (kCuQ[s + 1] - kCuQ[s]);
          const float x = 0.37f * static_cast<float>(hh) - 1.5f;
          const double user = x + s + (i - j) * 0.01;
          const double slope = alibi->rank == 1 ? slopes[hh] : slopes_b[s * kHq + hh];
          const double want = 20.0 * std::tanh(user / 20.0) - slope * std::abs(i + d - j);
          const double got = evaluate(mods.score.body(), Point{0, hh, t, u, x}, b).f;
          worst = std::max(worst, std::abs(got - want) / (1.0 + std::abs(want)));
          ++checked;
        }
    CHECK(checked > 100);
    CHECK(worst < 1e-5);
  }
  CHECK(varlen_mods(VarlenOptions()).score.is_noop());
}

TEST_CASE("varlen: the library's own index arrays make no load data-indexed",
          "[attention][varlen]") {
  // cu_seqlens[seq[q]] reads flexjit_varlen_seq_*, arrays the library builds from cu_seqlens
  // it checked: no report (nor its registers) in the kernels. A user's data-indexed load
  // inside the varlen mods still is one.
  const std::vector<float> slopes(kHq * 4, 0.5f);
  const TensorView sbv = TensorView::contiguous(slopes.data(), DType::F32, {4, kHq});
  VarlenOptions o;
  o.causal = true;
  o.softcap = 30.0f;
  o.alibi_slopes = &sbv;
  const VarlenMods mods = varlen_mods(o);
  CHECK(data_indexed_loads({mods.mask.body(), mods.score.body()}).empty());
  std::vector<int32_t> ids = {0, 1}, table = {5, 6};
  IntBuffer id = buffer_i32("id", TensorView::contiguous(ids.data(), DType::I32, {2}));
  IntBuffer t = buffer_i32("t", TensorView::contiguous(table.data(), DType::I32, {2}));
  o.mask_mod = mask_mod("user", [&](Idx, Idx, Idx q, Idx) { return t[id[q % 2]] > 0; });
  CHECK(data_indexed_loads(varlen_mods(o).mask.body()).size() == 1);
}

TEST_CASE("attention_forward_varlen: arguments", "[errors][attention][varlen]") {
  auto fake = [](uintptr_t a) { return reinterpret_cast<const void*>(a); };
  auto tok = [&](uintptr_t a, int64_t total, int64_t H, int64_t D) {
    return TensorView::contiguous(fake(a), DType::F16, {total, H, D}, Device::Cuda);
  };
  TensorView q = tok(0x100000, 300, 8, 64), k = tok(0x200000, 600, 2, 64),
             v = tok(0x300000, 600, 2, 64), out = tok(0x400000, 300, 8, 64);
  TensorView cq = TensorView::contiguous(fake(0x500000), DType::I32, {5}, Device::Cuda);
  TensorView ck = TensorView::contiguous(fake(0x600000), DType::I32, {5}, Device::Cuda);
  VarlenOptions o;
  auto expect = [&](const std::string& what) {
    INFO(what);
    REQUIRE_THROWS_WITH(attention_forward_varlen(q, k, v, cq, ck, out, o),
                        Contains("attention_forward_varlen: " + what));
  };
  o.dropout_p = 0.1f;
  expect("dropout_p 0.1 is not supported");
  o.dropout_p = 0.0f;
  q = TensorView::contiguous(fake(0x100000), DType::F16, {1, 300, 8, 64}, Device::Cuda);
  expect("q must be a 3-D [total, H, D] view, got rank 4");
  q = tok(0x100000, 300, 8, 64);
  out = tok(0x400000, 299, 8, 64);
  expect("number of tokens mismatch: out has 299, q has 300");
  out = tok(0x400000, 300, 8, 64);
  v.dtype = DType::F32;
  expect("v has dtype f32; expected f16 or bf16");
  v = tok(0x300000, 600, 2, 64);
  ck = TensorView::contiguous(fake(0x600000), DType::I32, {4}, Device::Cuda);
  expect("cu_seqlens_k must be [B + 1] of [5], got rank 1 [4]");
  ck = TensorView::contiguous(fake(0x600000), DType::I32, {5}, Device::Host);
  expect("cu_seqlens_k is host memory");
  ck = TensorView::contiguous(fake(0x600000), DType::I32, {5}, Device::Cuda);
  cq = TensorView::contiguous(fake(0x500000), DType::I32, {1}, Device::Cuda);
  expect("cu_seqlens_q must be [B + 1] with B >= 1");
  cq = TensorView::contiguous(fake(0x500000), DType::I32, {5}, Device::Cuda);
  o.window_left = -2;
  expect("window_size (-2, -1) must be >= -1");
  o.window_left = -1;
  o.softcap = -1.0f;
  expect("softcap -1 must be finite and >= 0");
  o.softcap = 0.0f;
  o.softmax_scale = NAN;
  expect("softmax_scale nan must be finite and >= 0");
  o.softmax_scale = 0.0f;
  o.max_seqlen_k = -1;
  expect("max_seqlen_q 0 and max_seqlen_k -1 must be >= 0");
  o.max_seqlen_k = 0;
  const TensorView slopes = TensorView::contiguous(fake(0x700000), DType::F32, {4}, Device::Cuda);
  o.alibi_slopes = &slopes;
  expect("alibi_slopes must be f32 device memory [Hq] = [8] or [B, Hq] = [4, 8]");
  o.alibi_slopes = nullptr;
  if (!cuda_available())
    REQUIRE_THROWS_WITH(attention_forward_varlen(q, k, v, cq, ck, out, o),
                        Contains("CUDA is not available"));
}

TEST_CASE("varlen: cu_seqlens' values are checked", "[errors][attention][varlen]") {
  auto expect = [](const std::vector<int32_t>& cu, int64_t total, int max, const char* what) {
    INFO(what);
    REQUIRE_THROWS_WITH(check_cu_seqlens("cu_seqlens_q", cu, total, max),
                        Contains(std::string("attention_forward_varlen: ") + what));
  };
  expect({1, 5, 9}, 9, 0, "cu_seqlens_q[0] is 1; expected 0");
  expect({0, 5, 4, 9}, 9, 0, "cu_seqlens_q decreases at 2: 5 then 4");
  expect({0, 5, 9}, 10, 0, "cu_seqlens_q[B] is 9; expected the number of tokens, 10");
  expect({0, 5, 9}, 9, 4, "sequence 0 has 5 tokens by cu_seqlens_q, more than max_seqlen 4");
  REQUIRE_NOTHROW(check_cu_seqlens("cu_seqlens_q", {0, 5, 5, 9}, 9, 5));
}
