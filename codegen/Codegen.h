// Mods to PTX: lowering to LLVM IR, linking into embedded kernel templates,
// optimizing and emitting PTX. The public part: compile_to_ptx for inspection.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flexjit/compiler/Signature.h"
#include "flexjit/dsl/Mods.h"

namespace flexjit {

enum class Arch { SM80, SM90a };
std::string_view to_string(Arch arch); // "sm_80", "sm_90a"

// The kernel templates embedded in the library (codegen/templates/*.cu).
enum class TemplateKind {
  BlockClassify,     // classifies each (q block, kv block) tile: empty, partial or full
  CreateMask,        // dense [B,H,Q,KV] bool mask
  AttentionForward,  // fused block-sparse attention forward (attention_fwd.cu)
  AttentionBackward, // attention backward: dq, dk, dv (attention_bwd.cu; three kernels)
  EvalPoints,        // both mods at arbitrary points (eval_points.cu): the GPU half of the
                     // differential tests (runtime/EvalPoints.h), not used by the library
  KvAppend,          // new tokens' K and V into a KV cache, then its lengths (kv_append.cu)
  MergeAttention,    // two partial attention results (out, lse) into one (merge_attention.cu)
};
std::string_view to_string(TemplateKind kind);

struct KernelSpec {
  TemplateKind kind = TemplateKind::BlockClassify;
  Arch arch = Arch::SM90a;
  MaskMod mask;
  ScoreMod score;
  // Attention templates only (ignored, and not part of the key, for the others): the
  // input dtype and head dims of q/k (head_dim) and v (head_dim_v, 0: head_dim); the
  // variant table (codegen/Variants.h) lists those with a kernel.
  DType dtype = DType::F16;
  int head_dim = 64;
  int head_dim_v = 0;
  // 0: the template's launch bounds. Otherwise the minimum CTAs per SM the register
  // allocation must allow (LLVM's minctasm), e.g. 1 to give a kernel that spills at the
  // template's 2 CTAs per SM twice the registers (kMaxSpillBytes).
  int min_ctas_per_sm = 0;
};

// The most distinct nodes the optimized mask_mod and score_mod of one kernel may
// have together; compile_to_ptx throws Error, naming both counts, above it. The
// templates inline the mods once per element they evaluate -- the attention
// kernel dozens of times per tile step -- so code, LLVM time, ptxas time and
// register pressure grow with the mods: on an sm_90a attention kernel 255 nodes
// take ~9 s from DSL to cubin and spill at two CTAs per SM, 510 nodes ~80 s; the
// other templates assemble 2,500 nodes in ~1 s without spills and spill from
// about 8,000. Below the limit a kernel that spills is still reported: ptxas's
// spills become a kernel warning when the runtime loads it (kernel_warnings(),
// "flexjit warning: ..." on stderr), and an sm_90a attention kernel spilling
// more than kMaxSpillBytes (runtime/KernelCache.h) is rebuilt for one CTA per SM.
// Each variant's limit is in the variant table (KernelVariant::max_mod_nodes).
inline constexpr int kMaxModNodes = 4096;
inline constexpr int kMaxAttentionModNodes = 256;
// The node limit of the kernel a spec names (Error as compile_to_ptx for a spec
// without one).
int max_mod_nodes(const KernelSpec& spec);

struct CompileTimes {
  double lower_ms = 0, link_ms = 0, optimize_ms = 0, codegen_ms = 0, total_ms = 0;
};

struct CompiledKernel {
  std::string key;        // the cache key: hash of everything that changes the code
  std::string ptx;        // PTX text
  std::string entry;      // the kernel's entry point name
  ModSignature signature; // slot layout of FlexjitModArgs
  CompileTimes times;
  // Anything the caller should know about the code (e.g. register spills
  // reported when the PTX was assembled); empty for a clean kernel.
  std::vector<std::string> warnings;
};

// The full cache key text for a spec (mods' canonical text, signature,
// template and a hash of its bitcode, arch, dtype and head dim for attention,
// library version and codegen revision) and its hash.
std::string kernel_key_text(const KernelSpec& spec);
std::string kernel_key(const KernelSpec& spec);

// DSL -> PTX of the kernel a spec names. Thread-safe (each call uses its own
// LLVMContext). Throws Error for a spec without a kernel in the variant table (an
// attention dtype or head dim), mods that do not type check or exceed the node limit.
CompiledKernel compile_to_ptx(const KernelSpec& spec);

} // namespace flexjit
