// Internal to codegen (and its tests): the lowered IR of a mod run on the host
// through LLVM's ORC JIT, the differential twin of the interpreter.
#pragma once

#include <memory>

#include "flexjit/codegen/templates/flexjit_abi.h"
#include "flexjit/compiler/Signature.h"
#include "flexjit/dsl/Mods.h"

namespace flexjit {

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
