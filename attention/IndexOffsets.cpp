// Context parallelism's index offsets (FlexAttention.h, offset_mod): a mod rewritten to read
// q_idx + q_offset and kv_idx + kv_offset, the offsets two int params bound per call, so every
// shard of a sequence shares one kernel and one prepared pair.
#include "flexjit/attention/FlexAttention.h"
#include "flexjit/compiler/Visitor.h"

namespace flexjit {
namespace {

// One declaration per offset for the process: a mod rewritten twice is the same DAG (hash-
// consing), so prepare_mods finds it again instead of preparing a new pair per call.
const IntExpr& offset_param(Var var) {
  static const IntExpr q = param_i32(kQOffsetParam, 0), kv = param_i32(kKvOffsetParam, 0);
  return var == Var::Q ? q : kv;
}

// The mod's body at q_idx + q_offset, kv_idx + kv_offset.
Expr offset_body(const Expr& body) {
  return substitute_indices(
      body, {.q = var_q() + offset_param(Var::Q), .kv = var_kv() + offset_param(Var::KV)});
}

} // namespace

MaskMod offset_mod(const MaskMod& mod) {
  if (mod.is_noop())
    return mod;
  return MaskMod(mod.name() + "_offset", BoolExpr(offset_body(mod.body())));
}

ScoreMod offset_mod(const ScoreMod& mod) {
  if (mod.is_noop())
    return mod;
  return ScoreMod(mod.name() + "_offset", FloatExpr(offset_body(mod.body())));
}

void bind_offsets(Bindings& bindings, int q_offset, int kv_offset) {
  bindings.params[kQOffsetParam] = q_offset;
  bindings.params[kKvOffsetParam] = kv_offset;
}

} // namespace flexjit
