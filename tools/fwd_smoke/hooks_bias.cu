// Smoke-test hooks: the causal mask of hooks_causal.cu plus an ALiBi-like score mod,
// score + float_params[0] * (kv - q) * (h + 1), to check that score_mod sees the
// natural-scale score and the query head.
#include "codegen/templates/attention_common.h"

extern "C" __device__ bool flexjit_mask_mod(int, int, int q, int kv, const FlexjitModArgs* args) {
  return q + args->int_params[0] >= kv;
}
extern "C" __device__ float flexjit_score_mod(float score, int, int h, int q, int kv,
                                              const FlexjitModArgs* args) {
  return score + args->float_params[0] * static_cast<float>(kv - q) * static_cast<float>(h + 1);
}
