// The attention instantiations the variant table (codegen/Variants.h) has kernels
// for, for the tests that cover every kernel: one case per (dtype, head dim) of a
// template, each once over the archs (the runtime picks the arch of the device), in
// the table's order. Catch2: GENERATE(from_range(instantiations(kind))).
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "flexjit/codegen/Variants.h"

namespace flexjit::testing {

struct Instantiation {
  DType dtype = DType::F16;
  int head_dim = 0;   // q and k
  int head_dim_v = 0; // v and out
  // The persistent kernel's (KernelVariant::persistent): a test asks for its schedule
  // (FlexAttentionOptions::schedule Persistent, else OneTilePerCta).
  bool persistent = false;
  std::string name() const {
    return fmt::format("{} d{}{}{}", to_string(dtype), head_dim,
                       head_dim_v == head_dim ? "" : fmt::format("/{}", head_dim_v),
                       persistent ? " persistent" : "");
  }
};

// Every (dtype, q/k head dim, v head dim, persistent or not) of a kind's rows.
inline std::vector<Instantiation> instantiations(TemplateKind kind) {
  std::vector<Instantiation> cases;
  for (const KernelVariant& v : kernel_variants())
    if (v.kind == kind && v.is_attention() &&
        std::none_of(cases.begin(), cases.end(), [&](const Instantiation& c) {
          return c.dtype == v.dtype && c.head_dim == v.dqk && c.head_dim_v == v.dv &&
                 c.persistent == v.persistent();
        }))
      cases.push_back({v.dtype, v.dqk, v.dv, v.persistent()});
  return cases;
}

} // namespace flexjit::testing
