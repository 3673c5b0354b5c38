// Mods to PTX: lowering to LLVM IR, linking into embedded kernel templates,
// optimizing and emitting PTX; and the host JIT used to test the lowering.
#pragma once

#include <memory>
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
  BlockClassify, // classifies each (q block, kv block) tile: empty, partial or full
  CreateMask,    // dense [B,H,Q,KV] bool mask
};
std::string_view to_string(TemplateKind kind);
std::vector<TemplateKind> all_templates();

struct KernelSpec {
  TemplateKind kind = TemplateKind::BlockClassify;
  Arch arch = Arch::SM90a;
  MaskMod mask;
  ScoreMod score;
};

struct CompileTimes {
  double lower_ms = 0, link_ms = 0, optimize_ms = 0, codegen_ms = 0, total_ms = 0;
};

struct CompiledKernel {
  std::string key;        // the cache key: hash of everything that changes the code
  std::string ptx;        // PTX text
  std::string entry;      // the kernel's entry point name
  ModSignature signature; // slot layout of FlexjitModArgs
  CompileTimes times;
};

// The full cache key text for a spec (mods' canonical text, signature,
// template, arch, library version) and its hash.
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
