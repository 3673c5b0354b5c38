// Mods to PTX: lowering to LLVM IR, linking into embedded kernel templates,
// optimizing and emitting PTX; and the host JIT used to test the lowering.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codegen/templates/flexjit_abi.h"
#include "compiler/Signature.h"
#include "dsl/Mods.h"

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
};
// The attention templates, instantiated per dtype and head dim.
inline bool is_attention(TemplateKind kind) {
  return kind == TemplateKind::AttentionForward || kind == TemplateKind::AttentionBackward;
}
std::string_view to_string(TemplateKind kind);
// The templates the library's operations use (every kind but EvalPoints).
std::vector<TemplateKind> all_templates();

// The attention head dims with a template instantiation.
inline constexpr int kAttentionHeadDims[] = {64, 128};

struct KernelSpec {
  TemplateKind kind = TemplateKind::BlockClassify;
  Arch arch = Arch::SM90a;
  MaskMod mask;
  ScoreMod score;
  // AttentionForward only (ignored, and not part of the key, for the others):
  // the input dtype (F16 or BF16) and head dim (one of kAttentionHeadDims).
  DType dtype = DType::F16;
  int head_dim = 64;
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
// more than kMaxSpillBytes is rebuilt for one CTA per SM.
inline constexpr int kMaxModNodes = 4096;
inline constexpr int kMaxAttentionModNodes = 256;
int max_mod_nodes(TemplateKind kind); // kMaxAttentionModNodes for AttentionForward

// A kernel whose ptxas build spills more than this many bytes (stores) at the template's
// launch bounds is replaced by its one-CTA-per-SM build (runtime/KernelCache.cpp), where
// it has one: the sm_90a forward, whose template asks for two CTAs per SM.
inline constexpr int kMaxSpillBytes = 64;
// The one-CTA-per-SM build of `spec`, or nullopt when it has none.
std::optional<KernelSpec> one_cta_variant(const KernelSpec& spec);

// The architecture flexjit compiles for on a device of compute capability
// major.minor: sm_90a on 9.0, sm_80 PTX (JIT-compiled by the driver) on any
// other >= 8.0; Error below 8.0.
Arch arch_for_compute_capability(int major, int minor);
// The architecture for a device of compute capability major.minor when the environment
// variable FLEXJIT_ARCH has value `forced` (null or empty: unset): "sm_80" runs the sm_80
// kernels on any device that can (how they are tested on Hopper); anything else is an Error.
Arch arch_for_device(int major, int minor, const char* forced);

// The kernel entry point a spec compiles ("flexjit_attention_fwd_bf16_d128", ...).
// Throws Error for an attention dtype or head dim without an instantiation.
std::string kernel_entry(const KernelSpec& spec);

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

// DSL -> PTX. Thread-safe (each call uses its own LLVMContext).
CompiledKernel compile_to_ptx(const KernelSpec& spec);

// Packs resolved values into the ABI struct (buffer data pointers as given).
FlexjitModArgs pack_mod_args(const ModSignature& sig, const ResolvedArgs& args);

// The lowered IR of a mod run on the host through LLVM's ORC JIT, with math
// mapped to the C library: the differential twin of the interpreter.
class HostJitMod {
public:
  static HostJitMod compile(const MaskMod& mod);
  static HostJitMod compile(const ScoreMod& mod);
  ~HostJitMod();
  HostJitMod(HostJitMod&&) noexcept;
  HostJitMod& operator=(HostJitMod&&) noexcept;

  bool mask(int b, int h, int q, int kv, const FlexjitModArgs& args) const;
  float score(float s, int b, int h, int q, int kv, const FlexjitModArgs& args) const;
  const ModSignature& signature() const;

private:
  struct Impl;
  explicit HostJitMod(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace flexjit
