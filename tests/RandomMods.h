// A seeded generator of random well-typed mod bodies for property and
// differential tests: every node kind, loads from small host buffers of every
// dtype and rank 1 and 2, int and float params, deep nesting, shared
// sub-expressions and extreme constants (INT_MIN, INT_MAX, inf, NaN, -0.0, ...).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "compiler/Interpreter.h"
#include "compiler/Signature.h"
#include "dsl/Expr.h"

namespace flexjit::testing {

// A body with everything it needs to run: `bindings` binds every param and
// buffer the body reads; the buffers' views point into `storage`. Move-only,
// because copying `storage` would leave the views pointing at the original.
struct RandomMod {
  Expr body;
  Bindings bindings;
  std::vector<std::vector<uint8_t>> storage;

  RandomMod() = default;
  RandomMod(RandomMod&&) = default;
  RandomMod& operator=(RandomMod&&) = default;
  RandomMod(const RandomMod&) = delete;
  RandomMod& operator=(const RandomMod&) = delete;
};

// A bool body over b, h, q_idx, kv_idx (never score).
RandomMod random_mask(std::mt19937& rng, int max_depth = 6);
// A float body over score, b, h, q_idx, kv_idx.
RandomMod random_score(std::mt19937& rng, int max_depth = 6);
// A body of any type; reads score only if `allow_score`.
RandomMod random_expr(std::mt19937& rng, Type type, int max_depth, bool allow_score);

// A point to evaluate at: mostly small indices (so loads hit the buffers),
// sometimes extreme ones; scores include inf, NaN and -0.0.
Point random_point(std::mt19937& rng);

// Equal as values: bit-identical ints/bools, floats equal bit for bit or both NaN.
bool same_value(Type type, Value a, Value b);

} // namespace flexjit::testing
