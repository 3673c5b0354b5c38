// attention_forward_varlen (FlexAttention.h): FlashAttention's varlen API as one flex_attention
// call over the packed tokens. The sequences' structure lives in four int32 buffers the mods read
// (each token's sequence, and cu_seqlens); the options become mods over sequence-local
// positions, declared once, so each combination of options is one kernel whatever the lengths.
#include <algorithm>

#include "flexjit/attention/AttentionChecks.h"
#include "flexjit/attention/FlexAttention.h"
#include "flexjit/attention/VarlenMods.h"
#include "flexjit/compiler/PreparedMods.h"
#include "flexjit/compiler/Visitor.h"
#include "flexjit/runtime/Context.h"
#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/Workspace.h"

namespace flexjit {
namespace {

constexpr const char* kWindowLeft = "flexjit_varlen_window_left";
constexpr const char* kWindowRight = "flexjit_varlen_window_right";
constexpr const char* kSoftcap = "flexjit_varlen_softcap";

// The buffers and params of the varlen mods: one declaration each for the process.
struct VarlenDecls {
  IntBuffer seq_q{"flexjit_varlen_seq_q", DType::I32, 1}; // [total_q]: each token's sequence
  IntBuffer seq_k{"flexjit_varlen_seq_k", DType::I32, 1}; // [total_k]
  IntBuffer cu_q{"flexjit_varlen_cu_q", DType::I32, 1};   // cu_seqlens_q [B + 1]
  IntBuffer cu_k{"flexjit_varlen_cu_k", DType::I32, 1};
  FloatBuffer slopes{"flexjit_varlen_alibi", DType::F32, 1};     // [Hq]
  FloatBuffer slopes_b{"flexjit_varlen_alibi_b", DType::F32, 2}; // [B, Hq]
  IntExpr left = param_i32(kWindowLeft);
  IntExpr right = param_i32(kWindowRight);
  FloatExpr softcap = param_f32(kSoftcap);
};
const VarlenDecls& decls() {
  static const VarlenDecls d;
  return d;
}

// Token q's and key kv's sequence-local positions: the sequence s of q, whether kv is in it,
// i = q - cu_q[s], j = kv - cu_k[s] (0 when kv is another sequence's: the user's mods never
// see a position outside the sequence), d = len_k - len_q.
struct Local {
  IntExpr s, i, j, d;
  BoolExpr same;
};
Local local_positions() {
  const VarlenDecls& D = decls();
  const IntExpr q = var_q(), kv = var_kv();
  Local l{D.seq_q[q], 0, 0, 0, BoolExpr(true)};
  l.same = D.seq_k[kv] == l.s;
  l.i = q - D.cu_q[l.s];
  l.j = where(l.same, kv - D.cu_k[l.s], IntExpr(0));
  l.d = (D.cu_k[l.s + 1] - D.cu_k[l.s]) - (D.cu_q[l.s + 1] - D.cu_q[l.s]);
  return l;
}

// The user's mod body with b, q_idx and kv_idx replaced by the sequence and its local positions.
Expr to_local(const Expr& body, const Local& l) {
  return substitute_indices(body, {.b = l.s, .q = l.i, .kv = l.j});
}

MaskMod varlen_mask(const VarlenOptions& o) {
  const VarlenDecls& D = decls();
  const Local l = local_positions();
  const IntExpr diag = l.i + l.d; // the key aligned with q row i (bottom-right)
  BoolExpr m = l.same;
  if (o.causal)
    m = m && l.j <= diag;
  if (o.window_left >= 0)
    m = m && l.j >= diag - D.left;
  if (o.window_right >= 0)
    m = m && l.j <= diag + D.right;
  if (!o.mask_mod.is_noop())
    m = m && BoolExpr(to_local(o.mask_mod.body(), l));
  return MaskMod("varlen_" + o.mask_mod.name(), m);
}

ScoreMod varlen_score(const VarlenOptions& o) {
  if (o.score_mod.is_noop() && o.softcap == 0.0f && !o.alibi_slopes)
    return ScoreMod();
  const VarlenDecls& D = decls();
  const Local l = local_positions();
  FloatExpr s = o.score_mod.is_noop() ? var_score() : FloatExpr(to_local(o.score_mod.body(), l));
  if (o.softcap > 0.0f)
    s = D.softcap * tanh(s / D.softcap);
  if (o.alibi_slopes) {
    const FloatExpr slope =
        o.alibi_slopes->rank == 1 ? D.slopes[var_h()] : D.slopes_b(l.s, var_h());
    s = s - slope * FloatExpr(abs(l.i + l.d - l.j));
  }
  return ScoreMod("varlen_" + o.score_mod.name(), s);
}

// cu_seqlens from the device, after the stream's earlier work.
std::vector<int32_t> read_cu_seqlens(const TensorView& cu) {
  std::vector<int32_t> host(static_cast<size_t>(cu.sizes[0]));
  cuda::ensure_context();
  cuda::check(cuda::driver().cuMemcpyDtoH(host.data(), reinterpret_cast<CUdeviceptr>(cu.data),
                                          host.size() * sizeof(int32_t)),
              "cuMemcpyDtoH");
  return host;
}

} // namespace

VarlenMods varlen_mods(const VarlenOptions& o) {
  return {varlen_mask(o), varlen_score(o)};
}

Bindings varlen_bindings(const VarlenOptions& o, const TensorView& seq_q, const TensorView& seq_k,
                         const TensorView& cu_q, const TensorView& cu_k) {
  const VarlenDecls& D = decls();
  Bindings b = o.bindings;
  b.buffers[D.seq_q.name()] = seq_q;
  b.buffers[D.seq_k.name()] = seq_k;
  b.buffers[D.cu_q.name()] = cu_q;
  b.buffers[D.cu_k.name()] = cu_k;
  if (o.alibi_slopes)
    b.buffers[(o.alibi_slopes->rank == 1 ? D.slopes : D.slopes_b).name()] = *o.alibi_slopes;
  b.params[kWindowLeft] = o.window_left;
  b.params[kWindowRight] = o.window_right;
  b.params[kSoftcap] = o.softcap;
  return b;
}

// Each token's sequence, from cu_seqlens (checked).
std::vector<int32_t> token_sequences(const std::vector<int32_t>& cu) {
  std::vector<int32_t> seq(static_cast<size_t>(cu.back()));
  for (size_t b = 0; b + 1 < cu.size(); ++b)
    std::fill(seq.begin() + cu[b], seq.begin() + cu[b + 1], static_cast<int32_t>(b));
  return seq;
}

void attention_forward_varlen(const TensorView& q, const TensorView& k, const TensorView& v,
                              const TensorView& cu_seqlens_q, const TensorView& cu_seqlens_k,
                              const TensorView& out, const VarlenOptions& o) {
  const VarlenProblem p = check_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, out, o);
  const VarlenMods mods = varlen_mods(o);
  Stream{o.stream}.synchronize();
  const std::vector<int32_t> cu_q = read_cu_seqlens(cu_seqlens_q);
  const std::vector<int32_t> cu_k = read_cu_seqlens(cu_seqlens_k);
  check_cu_seqlens("cu_seqlens_q", cu_q, q.sizes[0], o.max_seqlen_q);
  check_cu_seqlens("cu_seqlens_k", cu_k, k.sizes[0], o.max_seqlen_k);
  // Each token's sequence, q's then k's, in a grow-only workspace per thread: cuMemAlloc and
  // cuMemFree per call would cost more than the copy (and cuMemFree synchronizes the device).
  // This call's synchronisations keep the next call from overwriting what a kernel still reads.
  std::vector<int32_t> seqs = token_sequences(cu_q);
  const int64_t total_q = static_cast<int64_t>(seqs.size());
  const std::vector<int32_t> seq_k = token_sequences(cu_k);
  seqs.insert(seqs.end(), seq_k.begin(), seq_k.end());
  thread_local Workspace workspace;
  const size_t seq_bytes = seqs.size() * sizeof(int32_t);
  int32_t* const device_seqs = static_cast<int32_t*>(workspace.get(seq_bytes));
  if (seq_bytes > 0)
    cuda::check(cuda::driver().cuMemcpyHtoD(reinterpret_cast<CUdeviceptr>(device_seqs), seqs.data(),
                                            seq_bytes),
                "cuMemcpyHtoD");
  TensorView seq_q_view = TensorView::contiguous(device_seqs, DType::I32, {total_q}, Device::Cuda);
  TensorView seq_k_view = TensorView::contiguous(
      device_seqs + total_q, DType::I32, {static_cast<int64_t>(seq_k.size())}, Device::Cuda);

  FlexAttentionOptions fo;
  fo.bindings = varlen_bindings(o, seq_q_view, seq_k_view, cu_seqlens_q, cu_seqlens_k);

  BlockMaskOptions bo;
  bo.bindings = fo.bindings;
  bo.device = Device::Cuda;
  bo.host_arrays = false; // built and read on the device: no copy back
  // Per head only when the user's mask_mod reads h (b is the sequence: one packed batch).
  const int mask_heads =
      prepare_mods(mods.mask)->mask_dependence.h ? static_cast<int>(q.sizes[1]) : 1;
  const BlockMask bm = create_block_mask(mods.mask, 1, mask_heads, static_cast<int>(q.sizes[0]),
                                         static_cast<int>(k.sizes[0]), bo);
  fo.block_mask = &bm;
  fo.score_mod = mods.score;
  if (o.softmax_scale > 0.0f)
    fo.scale = o.softmax_scale;
  fo.stream = o.stream;
  TensorView lse3;
  if (o.lse) {
    lse3 = *o.lse;
    if (lse3.rank == 2) { // [Hq, total_q] -> [1, Hq, total_q]
      lse3.rank = 3;
      lse3.sizes = {1, o.lse->sizes[0], o.lse->sizes[1], 0};
      lse3.strides = {o.lse->sizes[0] * o.lse->strides[0], o.lse->strides[0], o.lse->strides[1], 0};
    }
    fo.lse = &lse3;
  }
  flex_attention(p.q, p.k, p.v, p.out, fo);
  Stream{o.stream}.synchronize(); // the block mask is freed on return, the workspace reused
}

} // namespace flexjit
