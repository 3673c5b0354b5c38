#include "runtime/AttentionChecks.h"

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "codegen/templates/attention_abi.h"
#include "compiler/Passes.h"
#include "compiler/Visitor.h"
#include "dsl/Error.h"
#include "runtime/DeviceArgs.h"

namespace flexjit {

namespace {

constexpr int kAlignBytes = 16;
constexpr int kStrideMultiple = 8; // elements: 16 bytes of f16/bf16
constexpr int64_t kMaxGridDim = 65535;

void check_tensor(const char* name, const TensorView& t) {
  if (t.rank != 4)
    fail("flex_attention: {} must be a 4-D [B, H, S, D] view, got rank {}", name, t.rank);
  if (!t.data)
    fail("flex_attention: {} is a null pointer", name);
  if (t.device != Device::Cuda)
    fail("flex_attention: {} is host memory; the kernel needs device memory (Device::Cuda)", name);
  if (t.dtype != DType::F16 && t.dtype != DType::BF16)
    fail("flex_attention: {} has dtype {}; expected f16 or bf16", name, to_string(t.dtype));
  for (int d = 0; d < 4; ++d)
    if (t.sizes[d] <= 0 || t.sizes[d] > INT32_MAX)
      fail("flex_attention: {} size {} in dimension {} must be in [1, 2^31)", name, t.sizes[d], d);
  if (t.strides[3] != 1)
    fail("flex_attention: {} has head-dim stride {}; the kernel needs stride 1 (contiguous D)",
         name, t.strides[3]);
  for (int d = 0; d < 3; ++d)
    if (t.strides[d] % kStrideMultiple != 0 || t.strides[d] < 0)
      fail("flex_attention: {} stride {} in dimension {} ({}) must be a non-negative multiple of "
           "{} elements (16 bytes)",
           name, t.strides[d], d, "BHS"[d], kStrideMultiple);
  if (reinterpret_cast<uintptr_t>(t.data) % kAlignBytes != 0)
    fail("flex_attention: {} pointer {} is not {}-byte aligned", name, t.data, kAlignBytes);
}

void check_same(const char* what, const char* a, int64_t va, const char* b, int64_t vb) {
  if (va != vb)
    fail("flex_attention: {} mismatch: {} has {}, {} has {}", what, a, va, b, vb);
}

void check_lse(const TensorView& lse, int B, int Hq, int q_len) {
  if (!lse.data)
    fail("flex_attention: lse is a null pointer (pass lse = nullptr for no lse)");
  if (lse.device != Device::Cuda)
    fail("flex_attention: lse is host memory; the kernel needs device memory (Device::Cuda)");
  if (lse.dtype != DType::F32)
    fail("flex_attention: lse has dtype {}; expected f32", to_string(lse.dtype));
  if (lse.rank != 3 || lse.sizes[0] != B || lse.sizes[1] != Hq || lse.sizes[2] != q_len)
    fail("flex_attention: lse must be [B, Hq, q_len] = [{}, {}, {}], got rank {} [{}, {}, {}]", B,
         Hq, q_len, lse.rank, lse.sizes[0], lse.sizes[1], lse.sizes[2]);
  if (lse.strides[2] != 1)
    fail("flex_attention: lse has stride {} over q; expected 1", lse.strides[2]);
  if (reinterpret_cast<uintptr_t>(lse.data) % alignof(float) != 0)
    fail("flex_attention: lse pointer {} is not 4-byte aligned", lse.data);
}

void check_block_mask(const BlockMask& bm, const AttentionProblem& p) {
  if (bm.q_len != p.q_len || bm.kv_len != p.kv_len)
    fail("flex_attention: the block mask was built for q_len {} and kv_len {}, the tensors have "
         "q_len {} and kv_len {}",
         bm.q_len, bm.kv_len, p.q_len, p.kv_len);
  if (bm.q_block % FLEXJIT_FWD_BLOCK_M != 0)
    fail("flex_attention: block mask q_block {} must be a multiple of {}", bm.q_block,
         FLEXJIT_FWD_BLOCK_M);
  if (bm.kv_block % FLEXJIT_FWD_BLOCK_N != 0)
    fail("flex_attention: block mask kv_block {} must be a multiple of {}", bm.kv_block,
         FLEXJIT_FWD_BLOCK_N);
  if (bm.B != 1 && bm.B != p.B)
    fail("flex_attention: block mask B {} must be 1 or the batch size {}", bm.B, p.B);
  if (bm.H != 1 && bm.H != p.Hq)
    fail("flex_attention: block mask H {} must be 1 or the number of query heads {}", bm.H, p.Hq);
  const size_t rows = static_cast<size_t>(bm.B) * bm.H * bm.num_q_blocks;
  const size_t cells = rows * bm.num_kv_blocks;
  if (bm.num_q_blocks != (bm.q_len + bm.q_block - 1) / bm.q_block ||
      bm.num_kv_blocks != (bm.kv_len + bm.kv_block - 1) / bm.kv_block ||
      bm.kv_num_blocks.size() != rows || bm.full_kv_num_blocks.size() != rows ||
      bm.kv_indices.size() != cells || bm.full_kv_indices.size() != cells)
    fail("flex_attention: the block mask's arrays do not match its shape [{}, {}, {}, {}] (was it "
         "modified?)",
         bm.B, bm.H, bm.num_q_blocks, bm.num_kv_blocks);
}

// What flex_attention needs to know of a pair of mods, computed once per pair
// (the mods' nodes are interned, so their addresses identify them while held):
// the type check, the signature of the optimized bodies, and the buffer
// dimensions indexed by exactly b, h, q_idx or kv_idx. Such a dimension is read
// at every value of that variable, so it must be at least as long (other index
// expressions are not checked: a load outside a buffer reads 0).
struct ModAnalysis {
  Expr mask_body, score_body; // keep the key's nodes alive
  ModSignature signature;
  struct Extent {
    int slot, dim;
    Var var;
    std::string buffer;
  };
  std::vector<Extent> extents;
};

ModAnalysis analyze(const MaskMod& mask, const ScoreMod& score) {
  type_check(mask);
  type_check(score);
  const std::vector<Expr> roots = {optimize(mask.body()), optimize(score.body())};
  ModAnalysis a{mask.body(), score.body(), ModSignature::of(roots), {}};
  for (const Expr& e : topo_order(roots)) {
    if (e.kind() != NodeKind::Load)
      continue;
    for (size_t d = 0; d < e->operands.size(); ++d)
      if (const Expr& index = e->operands[d]; index.kind() == NodeKind::Var)
        a.extents.push_back({a.signature.buffer_slot(*e->buffer), static_cast<int>(d),
                             static_cast<Var>(index->ival), e->buffer->name});
  }
  return a;
}

const ModAnalysis& analysis_of(const MaskMod& mask, const ScoreMod& score) {
  static std::mutex mutex;
  static std::map<std::pair<const Node*, const Node*>, std::unique_ptr<const ModAnalysis>> memo;
  const std::pair key{mask.body().get(), score.body().get()};
  {
    std::lock_guard lock(mutex);
    if (auto it = memo.find(key); it != memo.end())
      return *it->second;
  }
  auto fresh = std::make_unique<const ModAnalysis>(analyze(mask, score)); // may throw
  std::lock_guard lock(mutex);
  return *memo.try_emplace(key, std::move(fresh)).first->second;
}

void check_buffer_extents(const ModAnalysis& a, const AttentionProblem& p) {
  for (const ModAnalysis::Extent& x : a.extents) {
    const TensorView& view = p.args.buffers[x.slot];
    int64_t needed = 0;
    const char* what = "";
    switch (x.var) {
    case Var::B:
      needed = p.B, what = "the batch size B";
      break;
    case Var::H:
      needed = p.Hq, what = "the number of query heads Hq";
      break;
    case Var::Q:
      needed = p.q_len, what = "q_len";
      break;
    case Var::KV:
      needed = p.kv_len, what = "kv_len";
      break;
    case Var::Score:
      continue;
    }
    if (view.sizes[x.dim] < needed)
      fail("flex_attention: buffer '{}' is indexed by {} in dimension {} but has {} elements "
           "there; {} is {}",
           x.buffer, var_name(x.var), x.dim, view.sizes[x.dim], what, needed);
  }
}

void check_like(const char* name, const TensorView& t, const char* like_name,
                const TensorView& like) {
  check_tensor(name, t);
  if (t.dtype != like.dtype)
    fail("flex_attention_backward: {} has dtype {}; expected {}'s dtype {}", name,
         to_string(t.dtype), like_name, to_string(like.dtype));
  for (int d = 0; d < 4; ++d)
    if (t.sizes[d] != like.sizes[d])
      fail("flex_attention_backward: {} shape [{}, {}, {}, {}] does not match {}'s [{}, {}, {}, "
           "{}]",
           name, t.sizes[0], t.sizes[1], t.sizes[2], t.sizes[3], like_name, like.sizes[0],
           like.sizes[1], like.sizes[2], like.sizes[3]);
}

} // namespace

AttentionProblem check_attention_backward(const TensorView& q, const TensorView& k,
                                          const TensorView& v, const TensorView& out,
                                          const TensorView& d_out, const TensorView& dq,
                                          const TensorView& dk, const TensorView& dv,
                                          const FlexAttentionOptions& o) {
  if (!o.lse)
    fail("flex_attention_backward: options.lse is null; the backward needs the forward's "
         "logsumexp (run flex_attention with options.lse set)");
  AttentionProblem p = check_attention(q, k, v, out, o);
  check_like("d_out", d_out, "out", out);
  check_like("dq", dq, "q", q);
  check_like("dk", dk, "k", k);
  check_like("dv", dv, "v", v);
  // The forward's block-mask tile checks (check_attention) cover the backward's tiles.
  static_assert(FLEXJIT_FWD_BLOCK_M % FLEXJIT_BWD_BLOCK_M == 0 &&
                    FLEXJIT_FWD_BLOCK_N % FLEXJIT_BWD_BLOCK_N == 0,
                "a block mask the forward accepts must tile the backward's kernel");
  return p;
}

AttentionProblem check_attention(const TensorView& q, const TensorView& k, const TensorView& v,
                                 const TensorView& out, const FlexAttentionOptions& o) {
  check_tensor("q", q);
  check_tensor("k", k);
  check_tensor("v", v);
  check_tensor("out", out);
  if (k.dtype != q.dtype || v.dtype != q.dtype || out.dtype != q.dtype)
    fail("flex_attention: mismatched dtypes: q {}, k {}, v {}, out {} (all must be the same)",
         to_string(q.dtype), to_string(k.dtype), to_string(v.dtype), to_string(out.dtype));
  check_same("head dim", "k", k.sizes[3], "q", q.sizes[3]);
  check_same("head dim", "v", v.sizes[3], "q", q.sizes[3]);
  check_same("head dim", "out", out.sizes[3], "q", q.sizes[3]);
  if (q.sizes[3] != 64 && q.sizes[3] != 128)
    fail("flex_attention: head dim {} is not supported; supported head dims: 64 and 128",
         q.sizes[3]);
  check_same("batch size", "k", k.sizes[0], "q", q.sizes[0]);
  check_same("batch size", "v", v.sizes[0], "q", q.sizes[0]);
  check_same("number of kv heads", "v", v.sizes[1], "k", k.sizes[1]);
  if (q.sizes[1] % k.sizes[1] != 0)
    fail("flex_attention: the number of query heads Hq = {} is not a multiple of the number of kv "
         "heads Hkv = {}",
         q.sizes[1], k.sizes[1]);
  check_same("kv length", "v", v.sizes[2], "k", k.sizes[2]);
  for (int d = 0; d < 4; ++d)
    if (out.sizes[d] != q.sizes[d])
      fail("flex_attention: out shape [{}, {}, {}, {}] does not match q's [{}, {}, {}, {}]",
           out.sizes[0], out.sizes[1], out.sizes[2], out.sizes[3], q.sizes[0], q.sizes[1],
           q.sizes[2], q.sizes[3]);

  AttentionProblem p;
  p.dtype = q.dtype;
  p.B = static_cast<int>(q.sizes[0]);
  p.Hq = static_cast<int>(q.sizes[1]);
  p.Hkv = static_cast<int>(k.sizes[1]);
  p.q_len = static_cast<int>(q.sizes[2]);
  p.kv_len = static_cast<int>(k.sizes[2]);
  p.head_dim = static_cast<int>(q.sizes[3]);
  if (p.B > kMaxGridDim || p.Hq > kMaxGridDim)
    fail("flex_attention: B = {} and Hq = {} must be at most {}", p.B, p.Hq, kMaxGridDim);
  p.scale = o.scale.value_or(1.0f / std::sqrt(static_cast<float>(p.head_dim)));
  if (!std::isfinite(p.scale))
    fail("flex_attention: scale {} is not finite", p.scale);
  if (o.lse)
    check_lse(*o.lse, p.B, p.Hq, p.q_len);
  if (o.block_mask) {
    check_block_mask(*o.block_mask, p);
    p.mask = o.block_mask->mask_mod;
  }
  const ModAnalysis& analysis = analysis_of(p.mask, o.score_mod);
  p.signature = &analysis.signature;
  p.args = resolve_device_args(analysis.signature, o.bindings, "flex_attention");
  check_buffer_extents(analysis, p);
  return p;
}

} // namespace flexjit
