// The mods at arbitrary points, for the differential tests (tests/test_codegen_gpu_fuzz.cpp):
// for each i < n, mask_out[i] = mask_mod(b, h, q, kv) as 0 or 1 and score_out[i] =
// score_mod(score, b, h, q, kv), where (b, h, q, kv) = indices[4 i .. 4 i + 3] and
// score = scores[i]. Unlike the other templates the indices may be anything,
// negative and INT_MIN included. A grid-stride loop, so any grid covers any n.
#include "codegen/templates/prelude.h"

using namespace flexjit::dev;

namespace {
constexpr int kThreads = 256; // runtime/EvalPoints.cpp launches CTAs of this many threads
} // namespace

extern "C" __global__ void __launch_bounds__(kThreads)
    flexjit_eval_points(FlexjitModArgs args, int n, const int* indices, const float* scores,
                        unsigned char* mask_out, float* score_out) {
  const long long stride = static_cast<long long>(grid_dim_x()) * block_dim_x();
  for (long long i = global_thread_x(); i < n; i += stride) {
    const int* p = indices + 4 * i;
    mask_out[i] = flexjit_mask_mod(p[0], p[1], p[2], p[3], &args) ? 1 : 0;
    score_out[i] = flexjit_score_mod(scores[i], p[0], p[1], p[2], p[3], &args);
  }
}
