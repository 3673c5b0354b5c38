// A float64 CPU reference of flex_attention, with the mods run by the
// interpreter: out = softmax(score_mod(q . k * scale), masked) v, and lse.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <flexjit/flexjit.h>

namespace flexjit::testing {

// Logical [B, H, S, D] float copies of the (already rounded) inputs, contiguous: q and k
// of head dim D, v of Dv (0: D; the forward reference only).
struct AttentionInputs {
  int B = 1, Hq = 1, Hkv = 1, q_len = 0, kv_len = 0, D = 64;
  std::vector<float> q, k, v;
  int Dv = 0;
  int v_dim() const { return Dv ? Dv : D; }
};

struct AttentionRows {
  std::vector<int64_t> rows; // (b * Hq + h) * q_len + q for each row computed
  std::vector<double> out;   // [rows.size(), Dv]
  std::vector<double> lse;   // [rows.size()]; -inf for a fully masked row
};

// The reference at `rows` (empty: every row). Buffers in `bindings` (or the
// mods' captured data) must be host memory. `kv_lens` (empty: none): batch b attends only
// its keys [0, kv_lens[b]) -- a KV cache's or a varlen batch's per-sequence lengths, each
// sequence padded to kv_len in `in` (what lies past its length is never read).
AttentionRows attention_reference(const AttentionInputs& in, const MaskMod& mask,
                                  const ScoreMod& score, double scale, const Bindings& bindings,
                                  std::vector<int64_t> rows = {},
                                  const std::vector<int>& kv_lens = {});

// The gradients of sum(out * d_out) (d_out: [B, Hq, q_len, D], contiguous) with respect
// to q, k and v, in float64, the score_mod's derivative from compiler/Derivative.cpp run
// by the interpreter: dq [B, Hq, q_len, D], dk and dv [B, Hkv, kv_len, D] (GQA: summed
// over the query heads of a group). Rows nothing may attend contribute nothing.
// `grad_buffers`: float buffers the score_mod reads whose gradients are wanted too (by
// load_adjoints: dS times each load's adjoint into the element its indices name; loads
// outside the buffer read 0 and receive nothing), each [its sizes] row-major.
struct AttentionGrads {
  std::vector<double> dq, dk, dv;
  std::vector<double> lse; // [B, Hq, q_len]: the forward's, -inf for a row nothing attends
  std::map<std::string, std::vector<double>> buffers;
};
AttentionGrads attention_backward_reference(const AttentionInputs& in, const MaskMod& mask,
                                            const ScoreMod& score, double scale,
                                            const Bindings& bindings,
                                            const std::vector<float>& d_out,
                                            const std::vector<std::string>& grad_buffers = {});

// ‖got − ref‖ / ‖ref‖ over the rows (a zero reference counts absolute error).
double relative_error(const std::vector<double>& got, const std::vector<double>& ref);

} // namespace flexjit::testing
