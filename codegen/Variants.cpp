// The variant table (codegen/Variants.h). The launch numbers are attention_abi.h's, the
// contract the templates static_assert against; each row states its head dim's.
#include "flexjit/codegen/Variants.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "flexjit/codegen/templates/attention_abi.h"
#include "flexjit/codegen/templates/blockmask_abi.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

// For templates clang optimized and fully unrolled at build time (KernelVariant).
constexpr const char* kLightPipeline =
    "function(nvvm-reflect),always-inline,function(sroa,early-cse<memssa>,"
    "instcombine<no-verify-fixpoint>,loop-mssa(licm),early-cse<memssa>,simplifycfg),globaldce";

// FLEXJIT_BITCODE(stem, variant, arch): a row's bitcode, one per line, which
// cmake/EmbedTemplates.cmake reads to compile codegen/templates/<stem>.cu for <arch>
// (with -DFLEXJIT_ONE_VARIANT -DFLEXJIT_VARIANT_<variant> when the variant is not empty).
constexpr Arch sm_80 = Arch::SM80, sm_90a = Arch::SM90a;
#define FLEXJIT_BITCODE(stem, variant, arch) #stem, #variant, arch

constexpr KernelVariant mods_only(TemplateKind kind, const char* stem, const char* variant,
                                  Arch arch, KernelShape main) {
  KernelVariant v;
  v.kind = kind;
  v.stem = stem;
  v.variant = variant;
  v.arch = arch;
  v.main = main;
  return v;
}

constexpr KernelVariant forward(const char* stem, const char* variant, Arch arch, DType dtype,
                                int dqk, int dv, KernelShape main, bool one_cta_build) {
  KernelVariant v = mods_only(TemplateKind::AttentionForward, stem, variant, arch, main);
  v.dtype = dtype;
  v.dqk = dqk;
  v.dv = dv;
  v.q_block_multiple = FLEXJIT_FWD_BLOCK_M;
  v.kv_block_multiple = FLEXJIT_FWD_BLOCK_N; // the largest kv tile of the forward kernels
  v.max_mod_nodes = kMaxAttentionModNodes;
  v.one_cta_build = one_cta_build;
  v.jit_pipeline = kLightPipeline;
  return v;
}

// The backward's row kernels: a warp per q row.
constexpr int kBwdRowsPerCta = FLEXJIT_BWD_ROW_THREADS / 32;

constexpr KernelVariant backward(const char* stem, const char* variant, Arch arch, DType dtype,
                                 int d, const char* pre, KernelShape main, const char* post) {
  KernelVariant v = mods_only(TemplateKind::AttentionBackward, stem, variant, arch, main);
  v.dtype = dtype;
  v.dqk = v.dv = d;
  v.companions[0] = {CompanionRole::Prologue,
                     {pre, FLEXJIT_BWD_ROW_THREADS, 0, GridRule::QTiles, kBwdRowsPerCta, 0}};
  v.companions[1] = {CompanionRole::Epilogue,
                     {post, FLEXJIT_BWD_ROW_THREADS, 0, GridRule::QTiles, kBwdRowsPerCta, 0}};
  v.num_companions = 2;
  v.q_block_multiple = FLEXJIT_BWD_BLOCK_M;
  v.kv_block_multiple = main.kv_rows; // a CTA owns kv_rows rows of one block-mask tile
  v.jit_pipeline = kLightPipeline;
  return v;
}

constexpr KernelShape fwd_sm90(const char* entry, int d) {
  return {entry,
          FLEXJIT_FWD_SM90_THREADS,
          FLEXJIT_FWD_SM90_SMEM_BYTES(d),
          GridRule::QTiles,
          FLEXJIT_FWD_BLOCK_M,
          FLEXJIT_FWD_SM90_BLOCK_N};
}
constexpr KernelShape fwd_ws(const char* entry, int dqk, int dv) {
  const FlexjitFwdShape s = flexjit_fwd_ws_shape(dqk, dv);
  return {entry, s.threads, s.smem_bytes, GridRule::QTiles, FLEXJIT_FWD_BLOCK_M, s.block_n};
}
// Its persistent build (attention_fwd_ws_persistent.cu): a CTA per SM loops over work tiles.
constexpr KernelShape fwd_ws_persistent(const char* entry, int dqk, int dv) {
  KernelShape shape = fwd_ws(entry, dqk, dv);
  shape.grid = GridRule::WorkTiles;
  return shape;
}
// The warp-specialized forward: TMA tensor maps, one CTA per SM, kv tiles of its own; reads a
// KV cache (kv_source.h's KvCache).
constexpr KernelVariant forward_ws(const char* stem, const char* variant, Arch arch, DType dtype,
                                   int dqk, int dv, KernelShape main) {
  KernelVariant v = forward(stem, variant, arch, dtype, dqk, dv, main, false);
  v.kv_block_multiple = main.kv_rows;
  v.tensor_maps = true;
  v.kv_cache = true;
  v.whole_program = true; // setmaxnreg
  return v;
}
// The split-KV decode kernel (attention_decode_ws.cu) and its combine: the forward's kind, the
// schedule's choice for short rows (attention/AttentionChecks.cpp); the block mask's q_block
// needs only to hold q_len (checked there), its kv_block a multiple of the kv tile.
constexpr KernelVariant decode_ws(const char* stem, const char* variant, Arch arch, DType dtype,
                                  int dqk, int dv, const char* entry, const char* combine) {
  const FlexjitFwdShape s = flexjit_decode_ws_shape(dqk, dv);
  KernelVariant v = forward_ws(
      stem, variant, arch, dtype, dqk, dv,
      {entry, s.threads, s.smem_bytes, GridRule::KvSplits, FLEXJIT_DECODE_ROWS, s.block_n});
  v.q_block_multiple = 1;
  v.companions[0] = {CompanionRole::Epilogue,
                     {combine, FLEXJIT_DECODE_COMBINE_THREADS, 0, GridRule::Elements, 0, 0}};
  v.num_companions = 1;
  return v;
}
constexpr KernelShape fwd_sm80(const char* entry, int dqk, int dv) {
  const FlexjitFwdShape s = flexjit_fwd_sm80_shape(dqk, dv);
  return {entry, s.threads, s.smem_bytes, GridRule::QTiles, FLEXJIT_FWD_BLOCK_M, s.block_n};
}
constexpr KernelShape bwd_sm90(const char* entry, int d) {
  return {entry, FLEXJIT_BWD_SM90_THREADS, FLEXJIT_BWD_SM90_SMEM_BYTES(d), GridRule::KvTiles,
          0,     FLEXJIT_BWD_SM90_BLOCK_N};
}
constexpr KernelShape bwd_sm80(const char* entry, int d) {
  return {entry, FLEXJIT_BWD_THREADS, FLEXJIT_BWD_SMEM_BYTES(d), GridRule::KvTiles,
          0,     FLEXJIT_BWD_BLOCK_N};
}
// The GPU block-mask builder (classify.cu, blockmask_abi.h): the classification and the
// q-major arrays, then the kv-major arrays and the q-tile order.
constexpr KernelVariant block_classify(const char* stem, const char* variant, Arch arch) {
  KernelVariant v = mods_only(
      TemplateKind::BlockClassify, stem, variant, arch,
      {"flexjit_block_classify", FLEXJIT_BLOCK_MASK_THREADS, 0, GridRule::Elements, 0, 0});
  v.companions[0] = {
      CompanionRole::Epilogue,
      {"flexjit_block_mask_columns", FLEXJIT_BLOCK_MASK_THREADS, 0, GridRule::Elements, 0, 0}};
  v.num_companions = 1;
  v.local_array_bytes = 2048; // iv::kMaxInstrs values and a load's index box: ~1 KiB
  return v;
}
constexpr KernelShape elements(const char* entry) {
  return {entry, 256, 0, GridRule::Elements}; // create_mask.cu's, eval_points.cu's kThreads
}

using K = TemplateKind;

// Appending to a KV cache (kv_append.cu): the copies, then the lengths' advance.
constexpr KernelVariant kv_append(const char* stem, const char* variant, Arch arch) {
  KernelVariant v =
      mods_only(TemplateKind::KvAppend, stem, variant, arch, elements("flexjit_kv_append"));
  v.companions[0] = {CompanionRole::Epilogue, elements("flexjit_kv_advance")};
  v.num_companions = 1;
  return v;
}
constexpr DType f16 = DType::F16, bf16 = DType::BF16;

// clang-format off
const KernelVariant kVariants[] = {
  block_classify(FLEXJIT_BITCODE(classify, , sm_90a)),
  block_classify(FLEXJIT_BITCODE(classify, , sm_80)),
  mods_only(K::CreateMask, FLEXJIT_BITCODE(create_mask, , sm_90a), elements("flexjit_create_mask")),
  mods_only(K::CreateMask, FLEXJIT_BITCODE(create_mask, , sm_80), elements("flexjit_create_mask")),
  // Test-only (testing/EvalPoints.h): both mods at arbitrary points.
  mods_only(K::EvalPoints, FLEXJIT_BITCODE(eval_points, , sm_90a), elements("flexjit_eval_points")),
  mods_only(K::EvalPoints, FLEXJIT_BITCODE(eval_points, , sm_80), elements("flexjit_eval_points")),
  kv_append(FLEXJIT_BITCODE(kv_append, , sm_90a)),
  kv_append(FLEXJIT_BITCODE(kv_append, , sm_80)),
  mods_only(K::MergeAttention, FLEXJIT_BITCODE(merge_attention, , sm_90a), elements("flexjit_merge_attention")),
  mods_only(K::MergeAttention, FLEXJIT_BITCODE(merge_attention, , sm_80), elements("flexjit_merge_attention")),

  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, f16_d32, sm_90a), f16, 32, 32, "flexjit_attention_decode_ws_f16_d32", "flexjit_attention_decode_combine_f16_d32"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, f16_d32, sm_90a), f16, 32, 32, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_f16_d32", 32, 32)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, f16_d32, sm_90a), f16, 32, 32, fwd_ws("flexjit_attention_fwd_ws_f16_d32", 32, 32)),
  forward(FLEXJIT_BITCODE(attention_fwd, f16_d32, sm_80), f16, 32, 32, fwd_sm80("flexjit_attention_fwd_f16_d32", 32, 32), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, f16_d64, sm_90a), f16, 64, 64, "flexjit_attention_decode_ws_f16_d64", "flexjit_attention_decode_combine_f16_d64"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, f16_d64, sm_90a), f16, 64, 64, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_f16_d64", 64, 64)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, f16_d64, sm_90a), f16, 64, 64, fwd_ws("flexjit_attention_fwd_ws_f16_d64", 64, 64)),
  forward(FLEXJIT_BITCODE(attention_fwd, f16_d64, sm_90a), f16, 64, 64, fwd_sm90("flexjit_attention_fwd_f16_d64", 64), true),
  forward(FLEXJIT_BITCODE(attention_fwd, f16_d64, sm_80), f16, 64, 64, fwd_sm80("flexjit_attention_fwd_f16_d64", 64, 64), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, f16_d80, sm_90a), f16, 80, 80, "flexjit_attention_decode_ws_f16_d80", "flexjit_attention_decode_combine_f16_d80"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, f16_d80, sm_90a), f16, 80, 80, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_f16_d80", 80, 80)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, f16_d80, sm_90a), f16, 80, 80, fwd_ws("flexjit_attention_fwd_ws_f16_d80", 80, 80)),
  forward(FLEXJIT_BITCODE(attention_fwd, f16_d80, sm_80), f16, 80, 80, fwd_sm80("flexjit_attention_fwd_f16_d80", 80, 80), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, f16_d96, sm_90a), f16, 96, 96, "flexjit_attention_decode_ws_f16_d96", "flexjit_attention_decode_combine_f16_d96"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, f16_d96, sm_90a), f16, 96, 96, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_f16_d96", 96, 96)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, f16_d96, sm_90a), f16, 96, 96, fwd_ws("flexjit_attention_fwd_ws_f16_d96", 96, 96)),
  forward(FLEXJIT_BITCODE(attention_fwd, f16_d96, sm_80), f16, 96, 96, fwd_sm80("flexjit_attention_fwd_f16_d96", 96, 96), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, f16_d128, sm_90a), f16, 128, 128, "flexjit_attention_decode_ws_f16_d128", "flexjit_attention_decode_combine_f16_d128"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, f16_d128, sm_90a), f16, 128, 128, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_f16_d128", 128, 128)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, f16_d128, sm_90a), f16, 128, 128, fwd_ws("flexjit_attention_fwd_ws_f16_d128", 128, 128)),
  forward(FLEXJIT_BITCODE(attention_fwd, f16_d128, sm_90a), f16, 128, 128, fwd_sm90("flexjit_attention_fwd_f16_d128", 128), true),
  forward(FLEXJIT_BITCODE(attention_fwd, f16_d128, sm_80), f16, 128, 128, fwd_sm80("flexjit_attention_fwd_f16_d128", 128, 128), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, f16_d192_v128, sm_90a), f16, 192, 128, "flexjit_attention_decode_ws_f16_d192_v128", "flexjit_attention_decode_combine_f16_d192_v128"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, f16_d192_v128, sm_90a), f16, 192, 128, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_f16_d192_v128", 192, 128)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, f16_d192_v128, sm_90a), f16, 192, 128, fwd_ws("flexjit_attention_fwd_ws_f16_d192_v128", 192, 128)),
  forward(FLEXJIT_BITCODE(attention_fwd, f16_d192_v128, sm_80), f16, 192, 128, fwd_sm80("flexjit_attention_fwd_f16_d192_v128", 192, 128), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, f16_d192, sm_90a), f16, 192, 192, "flexjit_attention_decode_ws_f16_d192", "flexjit_attention_decode_combine_f16_d192"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, f16_d192, sm_90a), f16, 192, 192, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_f16_d192", 192, 192)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, f16_d192, sm_90a), f16, 192, 192, fwd_ws("flexjit_attention_fwd_ws_f16_d192", 192, 192)),
  forward(FLEXJIT_BITCODE(attention_fwd, f16_d192, sm_80), f16, 192, 192, fwd_sm80("flexjit_attention_fwd_f16_d192", 192, 192), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, f16_d256, sm_90a), f16, 256, 256, "flexjit_attention_decode_ws_f16_d256", "flexjit_attention_decode_combine_f16_d256"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, f16_d256, sm_90a), f16, 256, 256, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_f16_d256", 256, 256)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, f16_d256, sm_90a), f16, 256, 256, fwd_ws("flexjit_attention_fwd_ws_f16_d256", 256, 256)),
  forward(FLEXJIT_BITCODE(attention_fwd, f16_d256, sm_80), f16, 256, 256, fwd_sm80("flexjit_attention_fwd_f16_d256", 256, 256), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, bf16_d32, sm_90a), bf16, 32, 32, "flexjit_attention_decode_ws_bf16_d32", "flexjit_attention_decode_combine_bf16_d32"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, bf16_d32, sm_90a), bf16, 32, 32, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_bf16_d32", 32, 32)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, bf16_d32, sm_90a), bf16, 32, 32, fwd_ws("flexjit_attention_fwd_ws_bf16_d32", 32, 32)),
  forward(FLEXJIT_BITCODE(attention_fwd, bf16_d32, sm_80), bf16, 32, 32, fwd_sm80("flexjit_attention_fwd_bf16_d32", 32, 32), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, bf16_d64, sm_90a), bf16, 64, 64, "flexjit_attention_decode_ws_bf16_d64", "flexjit_attention_decode_combine_bf16_d64"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, bf16_d64, sm_90a), bf16, 64, 64, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_bf16_d64", 64, 64)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, bf16_d64, sm_90a), bf16, 64, 64, fwd_ws("flexjit_attention_fwd_ws_bf16_d64", 64, 64)),
  forward(FLEXJIT_BITCODE(attention_fwd, bf16_d64, sm_90a), bf16, 64, 64, fwd_sm90("flexjit_attention_fwd_bf16_d64", 64), true),
  forward(FLEXJIT_BITCODE(attention_fwd, bf16_d64, sm_80), bf16, 64, 64, fwd_sm80("flexjit_attention_fwd_bf16_d64", 64, 64), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, bf16_d80, sm_90a), bf16, 80, 80, "flexjit_attention_decode_ws_bf16_d80", "flexjit_attention_decode_combine_bf16_d80"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, bf16_d80, sm_90a), bf16, 80, 80, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_bf16_d80", 80, 80)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, bf16_d80, sm_90a), bf16, 80, 80, fwd_ws("flexjit_attention_fwd_ws_bf16_d80", 80, 80)),
  forward(FLEXJIT_BITCODE(attention_fwd, bf16_d80, sm_80), bf16, 80, 80, fwd_sm80("flexjit_attention_fwd_bf16_d80", 80, 80), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, bf16_d96, sm_90a), bf16, 96, 96, "flexjit_attention_decode_ws_bf16_d96", "flexjit_attention_decode_combine_bf16_d96"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, bf16_d96, sm_90a), bf16, 96, 96, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_bf16_d96", 96, 96)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, bf16_d96, sm_90a), bf16, 96, 96, fwd_ws("flexjit_attention_fwd_ws_bf16_d96", 96, 96)),
  forward(FLEXJIT_BITCODE(attention_fwd, bf16_d96, sm_80), bf16, 96, 96, fwd_sm80("flexjit_attention_fwd_bf16_d96", 96, 96), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, bf16_d128, sm_90a), bf16, 128, 128, "flexjit_attention_decode_ws_bf16_d128", "flexjit_attention_decode_combine_bf16_d128"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, bf16_d128, sm_90a), bf16, 128, 128, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_bf16_d128", 128, 128)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, bf16_d128, sm_90a), bf16, 128, 128, fwd_ws("flexjit_attention_fwd_ws_bf16_d128", 128, 128)),
  forward(FLEXJIT_BITCODE(attention_fwd, bf16_d128, sm_90a), bf16, 128, 128, fwd_sm90("flexjit_attention_fwd_bf16_d128", 128), true),
  forward(FLEXJIT_BITCODE(attention_fwd, bf16_d128, sm_80), bf16, 128, 128, fwd_sm80("flexjit_attention_fwd_bf16_d128", 128, 128), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, bf16_d192_v128, sm_90a), bf16, 192, 128, "flexjit_attention_decode_ws_bf16_d192_v128", "flexjit_attention_decode_combine_bf16_d192_v128"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, bf16_d192_v128, sm_90a), bf16, 192, 128, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_bf16_d192_v128", 192, 128)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, bf16_d192_v128, sm_90a), bf16, 192, 128, fwd_ws("flexjit_attention_fwd_ws_bf16_d192_v128", 192, 128)),
  forward(FLEXJIT_BITCODE(attention_fwd, bf16_d192_v128, sm_80), bf16, 192, 128, fwd_sm80("flexjit_attention_fwd_bf16_d192_v128", 192, 128), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, bf16_d192, sm_90a), bf16, 192, 192, "flexjit_attention_decode_ws_bf16_d192", "flexjit_attention_decode_combine_bf16_d192"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, bf16_d192, sm_90a), bf16, 192, 192, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_bf16_d192", 192, 192)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, bf16_d192, sm_90a), bf16, 192, 192, fwd_ws("flexjit_attention_fwd_ws_bf16_d192", 192, 192)),
  forward(FLEXJIT_BITCODE(attention_fwd, bf16_d192, sm_80), bf16, 192, 192, fwd_sm80("flexjit_attention_fwd_bf16_d192", 192, 192), false),
  decode_ws(FLEXJIT_BITCODE(attention_decode_ws, bf16_d256, sm_90a), bf16, 256, 256, "flexjit_attention_decode_ws_bf16_d256", "flexjit_attention_decode_combine_bf16_d256"),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws_persistent, bf16_d256, sm_90a), bf16, 256, 256, fwd_ws_persistent("flexjit_attention_fwd_ws_persistent_bf16_d256", 256, 256)),
  forward_ws(FLEXJIT_BITCODE(attention_fwd_ws, bf16_d256, sm_90a), bf16, 256, 256, fwd_ws("flexjit_attention_fwd_ws_bf16_d256", 256, 256)),
  forward(FLEXJIT_BITCODE(attention_fwd, bf16_d256, sm_80), bf16, 256, 256, fwd_sm80("flexjit_attention_fwd_bf16_d256", 256, 256), false),

  backward(FLEXJIT_BITCODE(attention_bwd, f16_d64, sm_90a), f16, 64, "flexjit_attention_bwd_f16_d64_pre", bwd_sm90("flexjit_attention_bwd_f16_d64", 64), "flexjit_attention_bwd_f16_d64_dq"),
  backward(FLEXJIT_BITCODE(attention_bwd, f16_d64, sm_80), f16, 64, "flexjit_attention_bwd_f16_d64_pre", bwd_sm80("flexjit_attention_bwd_f16_d64", 64), "flexjit_attention_bwd_f16_d64_dq"),
  backward(FLEXJIT_BITCODE(attention_bwd, f16_d128, sm_90a), f16, 128, "flexjit_attention_bwd_f16_d128_pre", bwd_sm90("flexjit_attention_bwd_f16_d128", 128), "flexjit_attention_bwd_f16_d128_dq"),
  backward(FLEXJIT_BITCODE(attention_bwd, f16_d128, sm_80), f16, 128, "flexjit_attention_bwd_f16_d128_pre", bwd_sm80("flexjit_attention_bwd_f16_d128", 128), "flexjit_attention_bwd_f16_d128_dq"),
  backward(FLEXJIT_BITCODE(attention_bwd, bf16_d64, sm_90a), bf16, 64, "flexjit_attention_bwd_bf16_d64_pre", bwd_sm90("flexjit_attention_bwd_bf16_d64", 64), "flexjit_attention_bwd_bf16_d64_dq"),
  backward(FLEXJIT_BITCODE(attention_bwd, bf16_d64, sm_80), bf16, 64, "flexjit_attention_bwd_bf16_d64_pre", bwd_sm80("flexjit_attention_bwd_bf16_d64", 64), "flexjit_attention_bwd_bf16_d64_dq"),
  backward(FLEXJIT_BITCODE(attention_bwd, bf16_d128, sm_90a), bf16, 128, "flexjit_attention_bwd_bf16_d128_pre", bwd_sm90("flexjit_attention_bwd_bf16_d128", 128), "flexjit_attention_bwd_bf16_d128_dq"),
  backward(FLEXJIT_BITCODE(attention_bwd, bf16_d128, sm_80), bf16, 128, "flexjit_attention_bwd_bf16_d128_pre", bwd_sm80("flexjit_attention_bwd_bf16_d128", 128), "flexjit_attention_bwd_bf16_d128_dq"),
};
// clang-format on
#undef FLEXJIT_BITCODE

// "64 and 128", "f16 or bf16": the values the table has for a kind.
template <class T> std::string list_text(const std::vector<T>& values, const char* last_sep) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i)
    out += fmt::format("{}{}", i == 0 ? "" : i + 1 == values.size() ? last_sep : ", ", values[i]);
  return out;
}

} // namespace

std::span<const KernelVariant> kernel_variants() {
  return kVariants;
}

bool runs_on(Arch kernel, Arch target) {
  return kernel == target || kernel == Arch::SM80;
}

std::string KernelVariant::bitcode_symbol() const {
  return fmt::format("flexjit_bc_{}{}{}_{}", stem, *variant ? "_" : "", variant, to_string(arch));
}

std::string KernelVariant::describe() const {
  if (!is_attention())
    return fmt::format("{} {}", to_string(kind), to_string(arch));
  return fmt::format("{} {} d{}{} {}", to_string(kind), to_string(dtype), dqk,
                     dv == dqk ? "" : fmt::format("/{}", dv), to_string(arch));
}

const KernelShape* KernelVariant::companion(CompanionRole role) const {
  for (int i = 0; i < num_companions; ++i)
    if (companions[i].role == role)
      return &companions[i].shape;
  return nullptr;
}

std::string head_dims_text(TemplateKind kind, const char* conjunction) {
  std::vector<int> dims;
  for (const KernelVariant& v : kVariants)
    if (v.kind == kind && v.is_attention() &&
        std::find(dims.begin(), dims.end(), v.dqk) == dims.end())
      dims.push_back(v.dqk);
  std::sort(dims.begin(), dims.end());
  return list_text(dims, conjunction);
}

std::string head_dim_pairs_text(TemplateKind kind) {
  std::vector<std::pair<int, int>> pairs;
  for (const KernelVariant& v : kVariants)
    if (v.kind == kind && v.is_attention() &&
        std::find(pairs.begin(), pairs.end(), std::pair{v.dqk, v.dv}) == pairs.end())
      pairs.emplace_back(v.dqk, v.dv);
  std::sort(pairs.begin(), pairs.end());
  std::vector<std::string> texts;
  for (auto [dqk, dv] : pairs)
    texts.push_back(fmt::format("({}, {})", dqk, dv));
  return list_text(texts, " and ");
}

const KernelVariant& find_variant(TemplateKind kind, Arch arch, DType dtype, int dqk, int dv) {
  const int want_dv = dv ? dv : dqk;
  std::vector<std::string_view> dtypes;
  bool dtype_known = false, dim_known = false;
  for (const KernelVariant& v : kVariants) {
    if (v.kind != kind)
      continue;
    if (!v.is_attention()) {
      if (v.arch == arch)
        return v;
      continue;
    }
    if (std::find(dtypes.begin(), dtypes.end(), to_string(v.dtype)) == dtypes.end())
      dtypes.push_back(to_string(v.dtype));
    dtype_known = dtype_known || v.dtype == dtype;
    dim_known = dim_known || (v.dqk == dqk && v.dv == want_dv);
    if (v.arch == arch && v.dtype == dtype && v.dqk == dqk && v.dv == want_dv && !v.persistent() &&
        !v.decode())
      return v;
  }
  if (dtypes.empty())
    FLEXJIT_ASSERT(false, "no {} kernel for {} in the variant table", to_string(kind),
                   to_string(arch));
  if (!dtype_known)
    fail("attention dtype {} is not supported: expected {}", to_string(dtype),
         list_text(dtypes, " or "));
  if (!dim_known)
    fail("attention head dim {} is not supported: expected {}", dqk, head_dims_text(kind, " or "));
  FLEXJIT_ASSERT(false, "no {} {} d{} kernel for {} in the variant table", to_string(kind),
                 to_string(dtype), dqk, to_string(arch));
}

const KernelVariant& find_variant(const KernelSpec& spec) {
  return find_variant(spec.kind, spec.arch, spec.dtype, spec.head_dim, spec.head_dim_v);
}

int64_t work_tiles(const KernelShape& shape, const LaunchSizes& s) {
  return (s.q_len + shape.q_rows - 1) / shape.q_rows * s.Hq * s.B;
}

GridDims grid_dims(const KernelShape& shape, const LaunchSizes& s) {
  auto ceil_div = [](int64_t a, int64_t b) { return static_cast<unsigned>((a + b - 1) / b); };
  switch (shape.grid) {
  case GridRule::QTiles:
    return {ceil_div(s.q_len, shape.q_rows), static_cast<unsigned>(s.Hq),
            static_cast<unsigned>(s.B)};
  case GridRule::KvTiles:
    return {ceil_div(s.kv_len, shape.kv_rows), static_cast<unsigned>(s.Hkv),
            static_cast<unsigned>(s.B)};
  case GridRule::WorkTiles: {
    const int64_t tiles = work_tiles(shape, s);
    return {static_cast<unsigned>(s.resident_ctas > 0 ? std::min(tiles, s.resident_ctas) : tiles)};
  }
  case GridRule::KvSplits:
    return {static_cast<unsigned>(s.kv_splits), static_cast<unsigned>(s.Hq / s.decode_heads),
            static_cast<unsigned>(s.B)};
  case GridRule::Elements:
    return {static_cast<unsigned>(
        std::min<int64_t>((s.elements + shape.threads - 1) / shape.threads, kMaxElementBlocks))};
  }
  FLEXJIT_ASSERT(false, "unknown grid rule {}", static_cast<int>(shape.grid));
}

} // namespace flexjit
