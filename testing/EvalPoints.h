// Both mods evaluated at arbitrary points on the GPU by the eval_points template:
// the GPU half of the differential tests (tests/test_codegen_gpu_fuzz.cpp). Not part of
// the attention path.
#pragma once

#include <cstdint>
#include <vector>

#include "flexjit/compiler/Interpreter.h"
#include "flexjit/compiler/Signature.h"
#include "flexjit/dsl/Mods.h"

namespace flexjit {

struct PointValues {
  std::vector<uint8_t> mask; // mask_mod at each point, 0 or 1
  std::vector<float> score;  // score_mod at each point
  // Whether the launch reported a data-indexed load outside its buffer at some point
  // (FLEXJIT_DEVICE_ERROR_LOAD: eval_points takes the device error word's bits).
  bool reported_outside = false;
};

// mask_mod(b, h, q, kv) and score_mod(score, b, h, q, kv) at every point, in one
// launch of the mods' eval_points kernel (compiled for the device and cached like
// any kernel). Every buffer the mods read must be bound to device memory (Error
// naming it otherwise). Needs CUDA.
PointValues eval_points_cuda(const MaskMod& mask, const ScoreMod& score,
                             const std::vector<Point>& points, const Bindings& bindings = {});

} // namespace flexjit
