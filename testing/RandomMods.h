// A seeded generator of random well-typed mod bodies for property and
// differential tests: every node kind, loads from small host buffers of every
// dtype and rank 1 to 4 (contiguous, transposed, padded, broadcast by a zero
// stride, or empty), int and float params, deep nesting (now and then a spine
// of up to ~120 nested operations), shared sub-expressions and extreme
// constants (INT_MIN, INT_MAX, +-inf, NaN, -0.0, subnormals, FLT_MAX, the
// float -> int saturation edges, exp/exp2 overflow edges, ...).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "flexjit/compiler/Interpreter.h"
#include "flexjit/compiler/Signature.h"
#include "flexjit/dsl/Expr.h"

namespace flexjit::testing {

// A body with everything it needs to run: `bindings` binds every param and
// buffer the body reads; the buffers' views point into `storage`. Move-only,
// because copying `storage` would leave the views pointing at the original.
struct RandomMod {
  Expr body;
  // random_pair only: a score body over the same buffers and params as the
  // mask in `body` (one kernel takes both; their buffer names never clash).
  Expr score;
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
// A mask body (`body`) and a score body (`score`) sharing buffers and params.
RandomMod random_pair(std::mt19937& rng, int max_depth = 6);

// A point to evaluate at: mostly small indices (so loads hit the buffers),
// sometimes extreme ones; scores include +-inf, NaN, -0.0, subnormals, FLT_MAX.
Point random_point(std::mt19937& rng);

// The extreme and ordinary constants the generator draws from (also used for
// params and buffer contents).
int32_t random_int(std::mt19937& rng);
float random_float(std::mt19937& rng);

// An integer from the environment (a fuzzer's seed or size), else `fallback`.
int64_t env_int(const char* name, int64_t fallback);

// Equal as values: bit-identical ints/bools, floats equal bit for bit or both NaN.
bool same_value(Type type, Value a, Value b);

} // namespace flexjit::testing
