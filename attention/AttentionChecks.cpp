#include "flexjit/attention/AttentionChecks.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "flexjit/codegen/templates/attention_abi.h"
#include "flexjit/runtime/DeviceArgs.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

constexpr int kAlignBytes = 16;
constexpr int kStrideMultiple = 8; // elements: 16 bytes of f16/bf16
constexpr int64_t kMaxGridDim = 65535;

// Auto's widest q/k head dim that always takes the persistent grid, and the longest rows
// that take it at wider head dims under a block mask (persistent_schedule).
constexpr int kPersistentAnyLenMaxDim = 64;
constexpr int kPersistentMaxKvLen = 4096;

void check_tensor(const char* name, const TensorView& t, const char* fn = "flex_attention") {
  if (t.rank != 4)
    fail("{}: {} must be a 4-D [B, H, S, D] view, got rank {}", fn, name, t.rank);
  if (!t.data)
    fail("{}: {} is a null pointer", fn, name);
  if (t.device != Device::Cuda)
    fail("{}: {} is host memory; the kernel needs device memory (Device::Cuda)", fn, name);
  if (t.dtype != DType::F16 && t.dtype != DType::BF16)
    fail("{}: {} has dtype {}; expected f16 or bf16", fn, name, to_string(t.dtype));
  for (int d = 0; d < 4; ++d)
    if (t.sizes[d] <= 0 || t.sizes[d] > INT32_MAX)
      fail("{}: {} size {} in dimension {} must be in [1, 2^31)", fn, name, t.sizes[d], d);
  if (t.strides[3] != 1)
    fail("{}: {} has head-dim stride {}; the kernel needs stride 1 (contiguous D)", fn, name,
         t.strides[3]);
  for (int d = 0; d < 3; ++d)
    if (t.strides[d] % kStrideMultiple != 0 || t.strides[d] < 0)
      fail("{}: {} stride {} in dimension {} ({}) must be a non-negative multiple of "
           "{} elements (16 bytes)",
           fn, name, t.strides[d], d, "BHS"[d], kStrideMultiple);
  if (reinterpret_cast<uintptr_t>(t.data) % kAlignBytes != 0)
    fail("{}: {} pointer {} is not {}-byte aligned", fn, name, t.data, kAlignBytes);
}

void check_same(const char* what, const char* a, int64_t va, const char* b, int64_t vb,
                const char* fn = "flex_attention") {
  if (va != vb)
    fail("{}: {} mismatch: {} has {}, {} has {}", fn, what, a, va, b, vb);
}

// A logsumexp tensor: f32 device memory [B, H, S] (`dims` names them), stride 1 over S
// (`s_name`); a null one's message adds `null_hint`.
void check_lse(const TensorView& lse, int B, int H, int S, const char* fn = "flex_attention",
               const char* name = "lse", const char* dims = "[B, Hq, q_len]",
               const char* s_name = "q",
               const char* null_hint = " (pass lse = nullptr for no lse)") {
  if (!lse.data)
    fail("{}: {} is a null pointer{}", fn, name, null_hint);
  if (lse.device != Device::Cuda)
    fail("{}: {} is host memory; the kernel needs device memory (Device::Cuda)", fn, name);
  if (lse.dtype != DType::F32)
    fail("{}: {} has dtype {}; expected f32", fn, name, to_string(lse.dtype));
  if (lse.rank != 3 || lse.sizes[0] != B || lse.sizes[1] != H || lse.sizes[2] != S)
    fail("{}: {} must be {} = [{}, {}, {}], got rank {} [{}, {}, {}]", fn, name, dims, B, H, S,
         lse.rank, lse.sizes[0], lse.sizes[1], lse.sizes[2]);
  if (lse.strides[2] != 1)
    fail("{}: {} has stride {} over {}; expected 1", fn, name, lse.strides[2], s_name);
  if (reinterpret_cast<uintptr_t>(lse.data) % alignof(float) != 0)
    fail("{}: {} pointer {} is not 4-byte aligned", fn, name, lse.data);
}

// An int32 device tensor of the given sizes (`shape` names them), contiguous over its last
// dimension; `owner` prefixes its name in messages ("kv_cache.").
void check_index_tensor(const char* name, const TensorView& t, std::initializer_list<int64_t> sizes,
                        const char* shape, const char* fn, const char* owner = "kv_cache.") {
  if (!t.data)
    fail("{}: {}{} is a null pointer", fn, owner, name);
  if (t.device != Device::Cuda)
    fail("{}: {}{} is host memory; the kernel reads it on the device (Device::Cuda)", fn, owner,
         name);
  if (t.dtype != DType::I32)
    fail("{}: {}{} has dtype {}; expected i32", fn, owner, name, to_string(t.dtype));
  const int rank = static_cast<int>(sizes.size());
  bool same_shape = t.rank == rank;
  for (int d = 0; same_shape && d < rank; ++d)
    same_shape = t.sizes[d] == sizes.begin()[d];
  if (!same_shape)
    fail("{}: {}{} must be {} of [{}], got rank {} [{}]", fn, owner, name, shape,
         fmt::join(sizes, ", "), t.rank,
         fmt::join(std::vector<int64_t>(t.sizes.begin(), t.sizes.begin() + t.rank), ", "));
  if (t.strides[rank - 1] != 1 || reinterpret_cast<uintptr_t>(t.data) % alignof(int32_t) != 0)
    fail("{}: {}{} must be 4-byte aligned with stride 1 over its last dimension (stride {})", fn,
         owner, name, t.strides[rank - 1]);
}

} // namespace

int64_t check_kv_cache(const KvCache& c, int64_t B, const TensorView& k, const TensorView& v,
                       const char* fn) {
  if (c.kv_lens)
    check_index_tensor("kv_lens", *c.kv_lens, {B}, "[B]", fn);
  if (!c.block_table) {
    if (c.page_size != 0)
      fail("{}: kv_cache.page_size {} without a block_table (set both, or neither)", fn,
           c.page_size);
    return k.sizes[2];
  }
  if (c.page_size < FLEXJIT_PAGE_SIZE_MIN || c.page_size > FLEXJIT_PAGE_SIZE_MAX ||
      (c.page_size & (c.page_size - 1)) != 0)
    fail("{}: kv_cache.page_size {} must be a power of two from {} to {}", fn, c.page_size,
         FLEXJIT_PAGE_SIZE_MIN, FLEXJIT_PAGE_SIZE_MAX);
  if (c.block_table->rank != 2 || c.block_table->sizes[1] < 1)
    fail("{}: kv_cache.block_table must be [B, max_pages] with max_pages >= 1, got "
         "rank {}",
         fn, c.block_table->rank);
  check_index_tensor("block_table", *c.block_table, {B, c.block_table->sizes[1]}, "[B, max_pages]",
                     fn);
  for (const auto& [name, t] : {std::pair{"k", &k}, std::pair{"v", &v}}) {
    if (t->sizes[1] != c.page_size)
      fail("{}: {} is a page pool [num_pages, page_size, Hkv, D] with page_size {}; "
           "its dimension 1 has {}",
           fn, name, c.page_size, t->sizes[1]);
  }
  check_same("number of pages", "v", v.sizes[0], "k", k.sizes[0], fn);
  const int64_t capacity = c.block_table->sizes[1] * c.page_size;
  if (capacity > INT32_MAX)
    fail("{}: kv_cache capacity max_pages * page_size = {} must be below 2^31", fn, capacity);
  return capacity;
}

KvAppendProblem check_kv_append(const TensorView& k_new, const TensorView& v_new,
                                const TensorView& k_cache, const TensorView& v_cache,
                                const KvCache& cache) {
  constexpr const char* fn = "append_kv_cache";
  for (const auto& [name, t] : {std::pair{"k_new", &k_new}, std::pair{"v_new", &v_new},
                                std::pair{"k_cache", &k_cache}, std::pair{"v_cache", &v_cache}}) {
    check_tensor(name, *t, fn);
    if (t->dtype != k_new.dtype)
      fail("{}: {} has dtype {}; expected k_new's dtype {}", fn, name, to_string(t->dtype),
           to_string(k_new.dtype));
    if (t->sizes[3] % kStrideMultiple != 0)
      fail("{}: {} head dim {} must be a multiple of {} (16-byte rows)", fn, name, t->sizes[3],
           kStrideMultiple);
  }
  if (!cache.kv_lens)
    fail("{}: kv_cache.kv_lens is null; appending writes at each sequence's length and moves it "
         "on",
         fn);
  const bool paged = cache.block_table != nullptr;
  const int64_t B = k_new.sizes[0];
  const int64_t capacity = check_kv_cache(cache, B, k_cache, v_cache, fn);
  const int h_dim = paged ? 2 : 1;
  check_same("batch size", "v_new", v_new.sizes[0], "k_new", B, fn);
  check_same("new tokens", "v_new", v_new.sizes[2], "k_new", k_new.sizes[2], fn);
  for (const auto& [name, t] :
       {std::pair{"v_new", &v_new}, std::pair{"k_cache", &k_cache}, std::pair{"v_cache", &v_cache}})
    check_same("number of kv heads", name, t->sizes[t == &v_new ? 1 : h_dim], "k_new",
               k_new.sizes[1], fn);
  check_same("head dim", "k_cache", k_cache.sizes[3], "k_new", k_new.sizes[3], fn);
  check_same("head dim", "v_cache", v_cache.sizes[3], "v_new", v_new.sizes[3], fn);
  if (!paged) {
    check_same("batch size", "k_cache", k_cache.sizes[0], "k_new", B, fn);
    check_same("batch size", "v_cache", v_cache.sizes[0], "k_new", B, fn);
    check_same("cache length", "v_cache", v_cache.sizes[2], "k_cache", k_cache.sizes[2], fn);
  }
  if (k_new.sizes[2] > capacity)
    fail("{}: {} new tokens per sequence exceed the cache's capacity {}", fn, k_new.sizes[2],
         capacity);
  KvAppendProblem p;
  p.B = static_cast<int>(B);
  p.Hkv = static_cast<int>(k_new.sizes[1]);
  p.n_new = static_cast<int>(k_new.sizes[2]);
  p.dk = static_cast<int>(k_new.sizes[3]);
  p.dv = static_cast<int>(v_new.sizes[3]);
  p.capacity = static_cast<int>(capacity);
  return p;
}

namespace {

void check_block_mask(const BlockMask& bm, const AttentionProblem& p) {
  if (bm.q_len != p.q_len || bm.kv_len != p.kv_len)
    fail("flex_attention: the block mask was built for q_len {} and kv_len {}, the tensors have "
         "q_len {} and kv_len {}",
         bm.q_len, bm.kv_len, p.q_len, p.kv_len);
  if (bm.B != 1 && bm.B != p.B)
    fail("flex_attention: block mask B {} must be 1 or the batch size {}", bm.B, p.B);
  if (bm.H != 1 && bm.H != p.Hq)
    fail("flex_attention: block mask H {} must be 1 or the number of query heads {}", bm.H, p.Hq);
  const size_t rows = static_cast<size_t>(bm.B) * bm.H * bm.num_q_blocks;
  const size_t cells = rows * bm.num_kv_blocks;
  if (bm.num_q_blocks != (bm.q_len + bm.q_block - 1) / bm.q_block ||
      bm.num_kv_blocks != (bm.kv_len + bm.kv_block - 1) / bm.kv_block ||
      (!bm.arrays_on_device_only() &&
       (bm.kv_num_blocks.size() != rows || bm.full_kv_num_blocks.size() != rows ||
        bm.kv_indices.size() != cells || bm.full_kv_indices.size() != cells)))
    fail("flex_attention: the block mask's arrays do not match its shape [{}, {}, {}, {}] (was it "
         "modified?)",
         bm.B, bm.H, bm.num_q_blocks, bm.num_kv_blocks);
}

// The rows of `kind` for the problem's dtype and head dim, in preference order; `arch`
// keeps only those that run there.
std::vector<const KernelVariant*> rows_for(TemplateKind kind, const AttentionProblem& p,
                                           const Arch* arch = nullptr) {
  std::vector<const KernelVariant*> rows;
  for (const KernelVariant& v : kernel_variants())
    if (v.kind == kind && v.dtype == p.dtype && v.dqk == p.head_dim && v.dv == p.head_dim_v &&
        (!arch || runs_on(v.arch, *arch)))
      rows.push_back(&v);
  return rows;
}

// The block-mask constraint of `v` the mask fails ("block mask q_block 64 must be a
// multiple of 128"), or "" when it meets them all.
std::string unmet_constraint(const KernelVariant& v, const AttentionProblem& p) {
  if (v.persistent() && !p.persistent)
    return "the schedule is not persistent";
  if (p.kv_cache && !v.kv_cache)
    return fmt::format(
        "a KV cache (options.kv_cache) is read by the sm_90a warp-specialized forward (one tile "
        "per CTA or persistent; a block mask's kv_block a multiple of its kv tile) and split-KV "
        "decode kernels only, not by {} (the {})",
        v.describe(),
        v.kind == TemplateKind::AttentionBackward ? "backward"
        : v.arch == Arch::SM80                    ? "sm_80 mma.sync forward"
                                                  : "sm_90a wgmma forward for 64-row kv blocks");
  if (v.decode()) {
    if (!p.decode)
      return "the schedule is not split-KV decoding";
    if (p.decode_heads == 0)
      return fmt::format("q_len {} is more than the decode kernel's {} rows", p.q_len,
                         FLEXJIT_DECODE_ROWS);
    if (p.block_mask && p.block_mask->q_block < p.q_len)
      return fmt::format("block mask q_block {} must hold all q_len {} rows for the decode kernel",
                         p.block_mask->q_block, p.q_len);
  }
  // tile_scheduler.h counts the work tiles in int32.
  if (const int64_t tiles = v.persistent() ? work_tiles(v.main, p.launch_sizes()) : 0;
      tiles > INT32_MAX)
    return fmt::format("{} work tiles are more than a persistent grid counts ({})", tiles,
                       INT32_MAX);
  if (v.tensor_maps && !p.nonzero_strides)
    return "q, k or v has a zero stride over a dimension of size > 1 (a TMA tensor map needs "
           "non-zero strides)";
  const BlockMask* bm = p.block_mask;
  if (!bm)
    return "";
  if (bm->q_block % v.q_block_multiple != 0)
    return fmt::format("block mask q_block {} must be a multiple of {}", bm->q_block,
                       v.q_block_multiple);
  if (bm->kv_block % v.kv_block_multiple != 0)
    return fmt::format("block mask kv_block {} must be a multiple of {}", bm->kv_block,
                       v.kv_block_multiple);
  return "";
}

// The first of `rows` the problem meets; else Error with the last row's unmet constraint
// (rows run from the most to the least demanding) and, with a target, that it is this GPU's.
const KernelVariant& first_met(const std::vector<const KernelVariant*>& rows,
                               const AttentionProblem& p, const Target* target = nullptr) {
  FLEXJIT_ASSERT(!rows.empty(), "no attention kernel for {} d{}/{}", to_string(p.dtype), p.head_dim,
                 p.head_dim_v);
  std::string unmet;
  for (const KernelVariant* v : rows) {
    unmet = unmet_constraint(*v, p);
    if (unmet.empty())
      return *v;
  }
  fail("flex_attention: {}{}", unmet,
       target ? fmt::format(" on this GPU ({} kernels)", to_string(target->arch)) : "");
}

void check_buffer_extents(const AttentionProblem& p) {
  for (const PreparedMods::IndexedDim& x : p.mods->indexed_dims) {
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
           p.mods->signature.buffers[x.slot]->name, var_name(x.var), x.dim, view.sizes[x.dim], what,
           needed);
  }
}

void check_like(const char* name, const TensorView& t, const char* like_name,
                const TensorView& like, const char* fn = "flex_attention_backward") {
  check_tensor(name, t, fn);
  if (t.dtype != like.dtype)
    fail("{}: {} has dtype {}; expected {}'s dtype {}", fn, name, to_string(t.dtype), like_name,
         to_string(like.dtype));
  for (int d = 0; d < 4; ++d)
    if (t.sizes[d] != like.sizes[d])
      fail("{}: {} shape [{}, {}, {}, {}] does not match {}'s [{}, {}, {}, {}]", fn, name,
           t.sizes[0], t.sizes[1], t.sizes[2], t.sizes[3], like_name, like.sizes[0], like.sizes[1],
           like.sizes[2], like.sizes[3]);
}

} // namespace

VarlenProblem check_varlen(const TensorView& q, const TensorView& k, const TensorView& v,
                           const TensorView& cu_seqlens_q, const TensorView& cu_seqlens_k,
                           const TensorView& out, const VarlenOptions& o) {
  constexpr const char* fn = "attention_forward_varlen";
  if (o.dropout_p != 0.0f)
    fail("{}: dropout_p {} is not supported (flexjit has no dropout); pass 0", fn, o.dropout_p);
  VarlenProblem p;
  for (const auto& [name, t, t4] : {std::tuple{"q", &q, &p.q}, std::tuple{"k", &k, &p.k},
                                    std::tuple{"v", &v, &p.v}, std::tuple{"out", &out, &p.out}}) {
    if (t->rank != 3)
      fail("{}: {} must be a 3-D [total, H, D] view, got rank {}", fn, name, t->rank);
    // [1, H, total, D]: the packed tokens as one sequence, BSHD-like strides.
    *t4 = *t;
    t4->rank = 4;
    t4->sizes = {1, t->sizes[1], t->sizes[0], t->sizes[2]};
    t4->strides = {t->sizes[0] * t->strides[0], t->strides[1], t->strides[0], t->strides[2]};
    check_tensor(name, *t4, fn);
  }
  check_same("number of tokens", "out", out.sizes[0], "q", q.sizes[0], fn);
  check_same("number of tokens", "v", v.sizes[0], "k", k.sizes[0], fn);
  if (cu_seqlens_q.rank != 1 || cu_seqlens_q.sizes[0] < 2)
    fail("{}: cu_seqlens_q must be [B + 1] with B >= 1, got rank {} [{}]", fn, cu_seqlens_q.rank,
         cu_seqlens_q.rank > 0 ? cu_seqlens_q.sizes[0] : 0);
  p.B = static_cast<int>(cu_seqlens_q.sizes[0] - 1);
  check_index_tensor("cu_seqlens_q", cu_seqlens_q, {p.B + 1}, "[B + 1]", fn, "");
  check_index_tensor("cu_seqlens_k", cu_seqlens_k, {p.B + 1}, "[B + 1]", fn, "");
  if (o.window_left < -1 || o.window_right < -1)
    fail("{}: window_size ({}, {}) must be >= -1 (-1: no bound)", fn, o.window_left,
         o.window_right);
  if (!(o.softcap >= 0.0f) || !std::isfinite(o.softcap))
    fail("{}: softcap {} must be finite and >= 0 (0: none)", fn, o.softcap);
  if (!(o.softmax_scale >= 0.0f) || !std::isfinite(o.softmax_scale))
    fail("{}: softmax_scale {} must be finite and >= 0 (0: 1 / sqrt(head dim))", fn,
         o.softmax_scale);
  if (o.max_seqlen_q < 0 || o.max_seqlen_k < 0)
    fail("{}: max_seqlen_q {} and max_seqlen_k {} must be >= 0 (0: not checked)", fn,
         o.max_seqlen_q, o.max_seqlen_k);
  if (const TensorView* a = o.alibi_slopes) {
    const int64_t Hq = q.sizes[1];
    const bool shape = (a->rank == 1 && a->sizes[0] == Hq) ||
                       (a->rank == 2 && a->sizes[0] == p.B && a->sizes[1] == Hq);
    if (!a->data || a->device != Device::Cuda || a->dtype != DType::F32 || !shape ||
        a->strides[a->rank - 1] != 1)
      fail("{}: alibi_slopes must be f32 device memory [Hq] = [{}] or [B, Hq] = [{}, {}], "
           "contiguous over Hq",
           fn, Hq, p.B, Hq);
  }
  return p;
}

void check_cu_seqlens(const char* name, const std::vector<int32_t>& cu, int64_t total,
                      int max_seqlen) {
  constexpr const char* fn = "attention_forward_varlen";
  if (cu.front() != 0)
    fail("{}: {}[0] is {}; expected 0", fn, name, cu.front());
  for (size_t b = 0; b + 1 < cu.size(); ++b) {
    if (cu[b + 1] < cu[b])
      fail("{}: {} decreases at {}: {} then {} (lengths must be >= 0)", fn, name, b + 1, cu[b],
           cu[b + 1]);
    if (max_seqlen > 0 && cu[b + 1] - cu[b] > max_seqlen)
      fail("{}: sequence {} has {} tokens by {}, more than max_seqlen {}", fn, b, cu[b + 1] - cu[b],
           name, max_seqlen);
  }
  if (cu.back() != total)
    fail("{}: {}[B] is {}; expected the number of tokens, {}", fn, name, cu.back(), total);
}

MergeProblem check_merge(const TensorView& out_a, const TensorView& lse_a, const TensorView& out_b,
                         const TensorView& lse_b, const TensorView& out, const TensorView& lse) {
  constexpr const char* fn = "merge_attention";
  check_tensor("out_a", out_a, fn);
  check_like("out_b", out_b, "out_a", out_a, fn);
  check_like("out", out, "out_a", out_a, fn);
  MergeProblem p;
  p.B = static_cast<int>(out_a.sizes[0]);
  p.H = static_cast<int>(out_a.sizes[1]);
  p.S = static_cast<int>(out_a.sizes[2]);
  p.D = static_cast<int>(out_a.sizes[3]);
  if (p.D % kStrideMultiple != 0 || p.D > FLEXJIT_MERGE_MAX_HEAD_DIM)
    fail("{}: head dim {} must be a multiple of {} and at most {}", fn, p.D, kStrideMultiple,
         FLEXJIT_MERGE_MAX_HEAD_DIM);
  for (const auto& [name, t] :
       {std::pair{"lse_a", &lse_a}, std::pair{"lse_b", &lse_b}, std::pair{"lse", &lse}})
    check_lse(*t, p.B, p.H, p.S, fn, name, "[B, H, S]", "S", "");
  return p;
}

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
  const std::vector<const KernelVariant*> backward = rows_for(TemplateKind::AttentionBackward, p);
  if (backward.empty())
    fail("flex_attention_backward: (q/k, v) head dims ({}, {}) have no backward kernel; the "
         "backward supports {}",
         p.head_dim, p.head_dim_v, head_dim_pairs_text(TemplateKind::AttentionBackward));
  first_met(backward, p);
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
  // q and k share Dqk; v and out share Dv (which the variant table may allow to differ).
  check_same("head dim", "k", k.sizes[3], "q", q.sizes[3]);
  check_same("head dim", "out", out.sizes[3], "v", v.sizes[3]);
  // A paged cache's k and v are pools [num_pages, page_size, Hkv, D]: their kv heads are
  // dimension 2 and their logical length the table's capacity (check_kv_cache).
  const bool paged = o.kv_cache && o.kv_cache->block_table;
  const int64_t capacity = o.kv_cache ? check_kv_cache(*o.kv_cache, q.sizes[0], k, v) : 0;
  const int h_dim = paged ? 2 : 1;
  if (!paged) {
    check_same("batch size", "k", k.sizes[0], "q", q.sizes[0]);
    check_same("batch size", "v", v.sizes[0], "q", q.sizes[0]);
  }
  check_same("number of kv heads", "v", v.sizes[h_dim], "k", k.sizes[h_dim]);
  if (q.sizes[1] % k.sizes[h_dim] != 0)
    fail("flex_attention: the number of query heads Hq = {} is not a multiple of the number of kv "
         "heads Hkv = {}",
         q.sizes[1], k.sizes[h_dim]);
  if (!paged)
    check_same("kv length", "v", v.sizes[2], "k", k.sizes[2]);
  for (int d = 0; d < 3; ++d)
    if (out.sizes[d] != q.sizes[d])
      fail("flex_attention: out shape [{}, {}, {}, {}] does not match q's [{}, {}, {}] and v's "
           "head dim {}",
           out.sizes[0], out.sizes[1], out.sizes[2], out.sizes[3], q.sizes[0], q.sizes[1],
           q.sizes[2], v.sizes[3]);

  AttentionProblem p;
  p.dtype = q.dtype;
  p.B = static_cast<int>(q.sizes[0]);
  p.Hq = static_cast<int>(q.sizes[1]);
  p.Hkv = static_cast<int>(k.sizes[h_dim]);
  p.q_len = static_cast<int>(q.sizes[2]);
  p.kv_len = static_cast<int>(paged ? capacity : k.sizes[2]);
  p.kv_cache = o.kv_cache;
  p.head_dim = static_cast<int>(q.sizes[3]);
  p.head_dim_v = static_cast<int>(v.sizes[3]);
  for (const TensorView* t : {&q, &k, &v})
    for (int d = 0; d < 3; ++d)
      p.nonzero_strides = p.nonzero_strides && (t->sizes[d] == 1 || t->strides[d] != 0);
  const std::vector<const KernelVariant*> forward = rows_for(TemplateKind::AttentionForward, p);
  if (forward.empty() && p.head_dim == p.head_dim_v)
    fail("flex_attention: head dim {} is not supported; supported head dims: {}", p.head_dim,
         head_dims_text(TemplateKind::AttentionForward, " and "));
  if (forward.empty())
    fail("flex_attention: q/k head dim {} with v head dim {} is not supported; supported (q/k, v) "
         "head dims: {}",
         p.head_dim, p.head_dim_v, head_dim_pairs_text(TemplateKind::AttentionForward));
  if (p.B > kMaxGridDim || p.Hq > kMaxGridDim)
    fail("flex_attention: B = {} and Hq = {} must be at most {}", p.B, p.Hq, kMaxGridDim);
  p.scale = o.scale.value_or(1.0f / std::sqrt(static_cast<float>(p.head_dim)));
  if (!std::isfinite(p.scale))
    fail("flex_attention: scale {} is not finite", p.scale);
  if (o.lse)
    check_lse(*o.lse, p.B, p.Hq, p.q_len);
  p.block_mask = o.block_mask;
  p.persistent = persistent_schedule(o.schedule, p);
  p.decode = decode_schedule(o.schedule, p);
  p.decode_heads = decode_heads(p);
  if (o.block_mask)
    check_block_mask(*o.block_mask, p);
  first_met(forward, p);
  p.mods = prepare_mods(o.block_mask ? o.block_mask->mask_mod : MaskMod(), o.score_mod);
  p.args = resolve_device_args(p.mods->signature, o.bindings, "flex_attention");
  check_buffer_extents(p);
  return p;
}

bool persistent_schedule(FlexAttentionOptions::Schedule schedule, const AttentionProblem& p) {
  using Schedule = FlexAttentionOptions::Schedule;
  return schedule == Schedule::Persistent ||
         (schedule == Schedule::Auto &&
          (p.head_dim <= kPersistentAnyLenMaxDim ||
           (p.block_mask != nullptr && p.kv_len <= kPersistentMaxKvLen)));
}

bool decode_schedule(FlexAttentionOptions::Schedule schedule, const AttentionProblem& p) {
  using Schedule = FlexAttentionOptions::Schedule;
  return schedule == Schedule::SplitKv ||
         (schedule == Schedule::Auto && p.q_len <= FLEXJIT_DECODE_MAX_Q_LEN);
}

int decode_heads(const AttentionProblem& p) {
  if (p.q_len > FLEXJIT_DECODE_ROWS)
    return 0;
  if (p.block_mask && p.block_mask->H > 1)
    return 1;
  const int group = p.Hq / p.Hkv;
  int heads = 1;
  for (int d = 1; d <= group; ++d)
    if (group % d == 0 && d * p.q_len <= FLEXJIT_DECODE_ROWS)
      heads = d;
  return heads;
}

int decode_splits(const AttentionProblem& p, int kv_tile, int sm_count) {
  const int64_t ctas = static_cast<int64_t>(p.B) * (p.Hq / std::max(p.decode_heads, 1));
  const int64_t tiles = (p.kv_len + kv_tile - 1) / kv_tile;
  const int64_t fewest = std::min<int64_t>(tiles, (sm_count + ctas - 1) / ctas);
  int64_t best = fewest;
  double best_fill = 0;
  for (int64_t s = fewest; s <= std::min<int64_t>(tiles, 4 * fewest); ++s) {
    const int64_t total = ctas * s, waves = (total + sm_count - 1) / sm_count;
    const double fill = static_cast<double>(total) / static_cast<double>(waves * sm_count);
    if (fill > best_fill + 1e-9) {
      best = s;
      best_fill = fill;
    }
  }
  return static_cast<int>(std::max<int64_t>(best, 1));
}

const KernelVariant& select_variant(TemplateKind kind, const Target& target,
                                    const AttentionProblem& p) {
  return first_met(rows_for(kind, p, &target.arch), p, &target);
}

LaunchSizes AttentionProblem::launch_sizes() const {
  LaunchSizes s;
  s.B = B;
  s.Hq = Hq;
  s.Hkv = Hkv;
  s.q_len = q_len;
  s.kv_len = kv_len;
  s.decode_heads = std::max(decode_heads, 1);
  return s;
}

} // namespace flexjit
