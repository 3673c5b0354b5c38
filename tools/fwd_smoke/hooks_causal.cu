// Smoke-test hooks: causal with an offset, q + int_params[0] >= kv (offset 0 is plain
// causal; a negative offset leaves the first rows with nothing to attend), identity score.
#include "codegen/templates/attention_common.h"

extern "C" __device__ bool flexjit_mask_mod(int, int, int q, int kv, const FlexjitModArgs* args) {
  return q + args->int_params[0] >= kv;
}
extern "C" __device__ float flexjit_score_mod(float score, int, int, int, int,
                                              const FlexjitModArgs*) {
  return score;
}
