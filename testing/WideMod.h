// A mask whose kernel needs more registers than a thread has, under the node limit: a
// balanced product tree of `loads` loads from `t` (1024 i32). Every load is issued before
// the tree consumes them, so about `loads` values are live at once; with 120 loads
// ptxas 13 spills in create_mask for sm_90a (100 did while the codegen ran LLVM's
// CodeGenPrepare; tests/test_codegen_ptx.cpp checks that, the [gpu][limits] test that the
// runtime reports it).
#pragma once

#include <vector>

#include <flexjit/flexjit.h>

namespace flexjit::testing {

inline MaskMod wide_product_mask(const char* name, const IntBuffer& t, int loads = 120) {
  const IntExpr q = var_q(), kv = var_kv();
  std::vector<IntExpr> terms;
  for (int i = 0; i < loads; ++i)
    terms.push_back(t[(q * (i + 3) + kv * (2 * i + 1)) % 1024]);
  while (terms.size() > 1) {
    std::vector<IntExpr> next;
    for (size_t i = 0; i + 1 < terms.size(); i += 2)
      next.push_back(terms[i] * terms[i + 1] + 1);
    if (terms.size() % 2)
      next.push_back(terms.back());
    terms = std::move(next);
  }
  return MaskMod(name, terms[0] > 5);
}

} // namespace flexjit::testing
