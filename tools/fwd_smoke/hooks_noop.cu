// Smoke-test hooks: no mask, identity score (the JIT's noop case).
#include "codegen/templates/attention_common.h"

extern "C" __device__ bool flexjit_mask_mod(int, int, int, int, const FlexjitModArgs*) {
  return true;
}
extern "C" __device__ float flexjit_score_mod(float score, int, int, int, int,
                                              const FlexjitModArgs*) {
  return score;
}
