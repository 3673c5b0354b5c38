// Interval analysis: is a mask_mod always true, always false, or undecided
// over a tile b in [b0,b1], h in [h0,h1], q in [q0,q1], kv in [k0,k1]?
// Sound: True/False only when every point of the tile agrees (a property test
// checks this against brute force).
#pragma once

#include <cstdint>
#include <unordered_set>
#include <vector>

#include "flexjit/compiler/IntervalRules.h"
#include "flexjit/compiler/Signature.h"
#include "flexjit/dsl/Expr.h"

namespace flexjit {

enum class Truth : uint8_t { False, True, Unknown };

struct IntRange {
  int64_t lo = 0, hi = 0; // inclusive
};

struct Tile {
  IntRange b, h, q, kv;
};

class IntervalAnalysis {
public:
  // `body` must be bool. Params take their bound values; loads of host buffers
  // scan the data over the index box when it has at most 4096 elements.
  IntervalAnalysis(const Expr& body, const Bindings& bindings = {});
  Truth classify(const Tile& tile) const;

private:
  std::vector<Expr> order_;                    // optimize(body), operands first
  std::vector<std::vector<int32_t>> operands_; // per node of order_: operand positions
  std::unordered_set<const Node*> checked_;    // data_indexed_loads(root_)
  Expr root_;
  ModSignature sig_;
  ResolvedArgs args_;
};

// The GPU block-mask builder's form of a bool mask body (already optimized, as PreparedMods'
// mask_body): its int and bool nodes, operands first, for iv::evaluate; float nodes and what
// they feed are iv::Op::Full (undecided), buffers and int params at their `sig` slots. A body
// of more than iv::kMaxInstrs nodes gives an empty program (every tile undecided).
iv::Program interval_program(const Expr& body, const ModSignature& sig);

} // namespace flexjit
