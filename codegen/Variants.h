// The variant table: the one statement of every kernel the library can build. A row
// names its template and bitcode (the build compiles exactly the rows' bitcode:
// cmake/EmbedTemplates.cmake reads the FLEXJIT_BITCODE(...) of codegen/Variants.cpp),
// its entry, dtype and head dims, arch, launch shape (threads, shared memory, grid
// rule, tile rows), companion kernels by role, and the constraints the host checks
// before any compile. Adding a head dim or a kernel is a row here plus its kernel code.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "flexjit/codegen/Codegen.h"

namespace flexjit {

// How a kernel's grid follows from the problem (LaunchSizes).
enum class GridRule : uint8_t {
  QTiles,   // (ceil(q_len / q_rows), Hq, B)
  KvTiles,  // (ceil(kv_len / kv_rows), Hkv, B)
  Elements, // (min(ceil(elements / threads), kMaxElementBlocks), 1, 1), grid-stride loops
  // (min(tiles, resident_ctas), 1, 1), tiles = ceil(q_len / q_rows) * Hq * B: a persistent
  // grid whose CTAs loop over the work tiles (codegen/templates/tile_scheduler.h)
  WorkTiles,
  // (kv_splits, Hq / decode_heads, B): the split-KV decode kernel, a CTA per (split, chunk of
  // decode_heads query heads of one kv head, b) (codegen/templates/attention_decode_ws.cu)
  KvSplits,
};
inline constexpr int64_t kMaxElementBlocks = 65536;

struct KernelShape {
  const char* entry = ""; // the kernel's extern "C" name
  int threads = 0;        // per CTA
  int smem_bytes = 0;     // dynamic shared memory; above 48 KiB the load raises the limit
  GridRule grid = GridRule::Elements;
  int q_rows = 0;  // QTiles: the q rows a CTA covers
  int kv_rows = 0; // KvTiles: the kv rows a CTA owns; forward: kv rows per step
};

// The module's other kernels, launched around the main one.
enum class CompanionRole : uint8_t {
  Prologue, // before the main kernel (attention backward: delta = rowsum(dO * O), dq_acc = 0)
  Epilogue, // after it (attention backward: dq = scale * dq_acc in the input dtype)
};
struct Companion {
  CompanionRole role = CompanionRole::Prologue;
  KernelShape shape;
};

struct KernelVariant {
  TemplateKind kind = TemplateKind::BlockClassify;
  const char* stem = "";    // codegen/templates/<stem>.cu
  const char* variant = ""; // compiled with -DFLEXJIT_VARIANT_<variant>; "" once per arch
  Arch arch = Arch::SM80;
  // Attention kernels only (dqk == 0 for the others, which take any mods alone):
  DType dtype = DType::F16;
  int dqk = 0, dv = 0;
  KernelShape main;
  Companion companions[2] = {};
  int num_companions = 0;
  // A block mask's q_block and kv_block must be multiples of these (a kernel tile lies
  // inside one block-mask tile); 0: the kernel takes no block mask.
  int q_block_multiple = 0, kv_block_multiple = 0;
  int max_mod_nodes = kMaxModNodes; // the optimized mods' node limit (codegen/Codegen.h)
  // Has a build for one CTA per SM (twice the registers), which the kernel cache picks
  // when the template's build spills (runtime/KernelCache.cpp).
  bool one_cta_build = false;
  // The JIT's pass pipeline once the hooks are in (opt's -passes syntax), or null for the
  // default O3. A template clang already optimized and fully unrolled at build time
  // needs only the hooks inlined and cleaned up: a quarter of O3's time.
  const char* jit_pipeline = nullptr;
  // Takes FlexjitTensorMaps (attention_abi.h) as its third parameter: the host encodes
  // TMA tensor maps over q, k, v, which needs every stepped stride non-zero.
  bool tensor_maps = false;
  // Local memory per thread its kernels use by design, at most (an array the code indexes
  // dynamically: the block-mask builder's interval values), not spills: the runtime warns of
  // local memory only beyond it.
  int local_array_bytes = 0;
  // Reads a KV cache (FlexAttentionOptions::kv_cache: per-sequence lengths, a block table over
  // page pools; FlexjitAttentionParams' kv_lens / block_table with K / V tensor maps over the
  // pools): the sm_90a warp-specialized forward (both schedules) and decode kernels
  // (kv_source.h's KvCache). The other rows reject a kv_cache (attention/AttentionChecks.cpp).
  bool kv_cache = false;
  // Loaded by the driver's JIT as one whole program from PTX (runtime/KernelCache.cpp):
  // the linker's relocatable compilation ignores setmaxnreg and spills such a kernel.
  bool whole_program = false;

  bool is_attention() const { return dqk > 0; }
  // A persistent kernel (GridRule::WorkTiles): taken where the schedule chooses it
  // (attention/AttentionChecks.cpp), else the next row.
  bool persistent() const { return main.grid == GridRule::WorkTiles; }
  // The split-KV decode kernel (GridRule::KvSplits): taken for short rows (select_variant).
  bool decode() const { return main.grid == GridRule::KvSplits; }
  // The embedded bitcode: flexjit_bc_<stem>[_<variant>]_<arch>.
  std::string bitcode_symbol() const;
  // "attention_fwd bf16 d128 sm_90a" (messages, the kernel key).
  std::string describe() const;
  const KernelShape* companion(CompanionRole role) const; // null if none
};

// Every row, in preference order: for one (kind, dtype, head dims), rows of a newer
// arch come first.
std::span<const KernelVariant> kernel_variants();

// Whether a kernel built for `kernel` runs on a device flexjit targets as `target`
// (sm_80 PTX runs everywhere flexjit does).
bool runs_on(Arch kernel, Arch target);

// The row of a non-attention template for `arch`, or of an attention template for
// (arch, dtype, dqk, dv) -- one tile per CTA: a persistent or decode row is only the forward's
// choice of schedule (attention/AttentionChecks.h, select_variant); Error naming what is supported
// when there is none.
const KernelVariant& find_variant(TemplateKind kind, Arch arch, DType dtype = DType::F16,
                                  int dqk = 0, int dv = 0);
// The row a KernelSpec names (find_variant of its fields).
const KernelVariant& find_variant(const KernelSpec& spec);

// The head dims the table has kernels of `kind` for, ascending, as a message says them:
// "64 and 128" (conjunction " and ") or "64 or 128" (" or ").
std::string head_dims_text(TemplateKind kind, const char* conjunction);
// The (Dqk, Dv) pairs the table has kernels of `kind` for: "(64, 64) and (128, 128)".
std::string head_dim_pairs_text(TemplateKind kind);

// What a grid rule reads.
struct LaunchSizes {
  int64_t B = 1, Hq = 1, Hkv = 1, q_len = 0, kv_len = 0;
  int64_t elements = 0;                    // Elements
  int64_t resident_ctas = 0;               // WorkTiles: the most CTAs resident at once
  int64_t kv_splits = 1, decode_heads = 1; // KvSplits
};
struct GridDims {
  unsigned x = 1, y = 1, z = 1;
};
GridDims grid_dims(const KernelShape& shape, const LaunchSizes& sizes);
// A persistent kernel's work tiles, ceil(q_len / q_rows) * Hq * B (GridRule::WorkTiles).
int64_t work_tiles(const KernelShape& shape, const LaunchSizes& sizes);

} // namespace flexjit
