#include "runtime/EvalPoints.h"

#include <algorithm>
#include <climits>

#include "dsl/Error.h"
#include "runtime/CudaDriver.h"
#include "runtime/DeviceArgs.h"
#include "runtime/KernelCache.h"
#include "runtime/Runtime.h"

namespace flexjit {

namespace {
constexpr unsigned kThreads = 256; // eval_points.cu's launch bounds
constexpr size_t kMaxBlocks = 65536;
} // namespace

PointValues eval_points_cuda(const MaskMod& mask, const ScoreMod& score,
                             const std::vector<Point>& points, const Bindings& bindings) {
  if (points.size() > static_cast<size_t>(INT_MAX))
    fail("eval_points: {} points; at most {} per call", points.size(), INT_MAX);
  const auto kernel = cuda::get_kernel({TemplateKind::EvalPoints, Arch::SM90a, mask, score});
  FlexjitModArgs args = pack_mod_args(
      kernel->signature, resolve_device_args(kernel->signature, bindings, "eval_points"));
  PointValues out;
  const size_t n = points.size();
  out.mask.resize(n);
  out.score.resize(n);
  if (n == 0)
    return out;

  std::vector<int32_t> indices(4 * n);
  std::vector<float> scores(n);
  for (size_t i = 0; i < n; ++i) {
    const Point& p = points[i];
    indices[4 * i + 0] = p.b;
    indices[4 * i + 1] = p.h;
    indices[4 * i + 2] = p.q;
    indices[4 * i + 3] = p.kv;
    scores[i] = p.score;
  }
  DeviceBuffer indices_dev(indices.size() * 4), scores_dev(n * 4), mask_dev(n), score_dev(n * 4);
  indices_dev.upload(indices.data(), indices.size() * 4);
  scores_dev.upload(scores.data(), n * 4);
  int count = static_cast<int>(n);
  void* indices_ptr = indices_dev.data();
  void* scores_ptr = scores_dev.data();
  void* mask_ptr = mask_dev.data();
  void* score_ptr = score_dev.data();
  void* params[] = {&args, &count, &indices_ptr, &scores_ptr, &mask_ptr, &score_ptr};
  const size_t blocks = std::min<size_t>((n + kThreads - 1) / kThreads, kMaxBlocks);
  cuda::check(cuda::driver().cuLaunchKernel(kernel->function, static_cast<unsigned>(blocks), 1, 1,
                                            kThreads, 1, 1, 0, nullptr, params, nullptr),
              kernel->entry.c_str());
  // Synchronous copies on the legacy default stream: they wait for the kernel.
  mask_dev.download(out.mask.data(), n);
  score_dev.download(out.score.data(), n * 4);
  return out;
}

} // namespace flexjit
