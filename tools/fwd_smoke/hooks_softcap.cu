// Smoke-test hooks: soft-capping, score_mod = 30 * tanh(score / 30) with tanh.approx.f32 (the
// way the JIT lowers torch.tanh under approximation), plus the causal mask of
// hooks_causal.cu (q + int_params[0] >= kv).
#include "codegen/templates/attention_common.h"

extern "C" __device__ bool flexjit_mask_mod(int, int, int q, int kv, const FlexjitModArgs* args) {
  return q + args->int_params[0] >= kv;
}
extern "C" __device__ float flexjit_score_mod(float score, int, int, int, int,
                                              const FlexjitModArgs*) {
  float t;
  asm("tanh.approx.f32 %0, %1;\n" : "=f"(t) : "f"(score * (1.f / 30.f)));
  return 30.f * t;
}
