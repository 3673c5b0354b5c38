// Rows of the variant table that the tests and benches pick by head dims.
#pragma once

#include <algorithm>
#include <vector>

#include "flexjit/codegen/Variants.h"

namespace flexjit::testing {

// The first forward row of each (Dqk, Dv) pair among those `keep` accepts, in the table's order.
template <class Keep> std::vector<const KernelVariant*> forward_rows_per_head_dims(Keep keep) {
  std::vector<const KernelVariant*> rows;
  for (const KernelVariant& v : kernel_variants())
    if (v.kind == TemplateKind::AttentionForward && keep(v) &&
        std::none_of(rows.begin(), rows.end(),
                     [&](const KernelVariant* r) { return r->dqk == v.dqk && r->dv == v.dv; }))
      rows.push_back(&v);
  return rows;
}

} // namespace flexjit::testing
