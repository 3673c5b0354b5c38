#include "flexjit/testing/EvalPoints.h"

#include <algorithm>
#include <climits>

#include "flexjit/codegen/PackArgs.h"
#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/DeviceArgs.h"
#include "flexjit/runtime/DeviceErrors.h"
#include "flexjit/runtime/KernelCache.h"
#include "flexjit/runtime/Runtime.h"
#include "flexjit/support/Error.h"

namespace flexjit {

PointValues eval_points_cuda(const MaskMod& mask, const ScoreMod& score,
                             const std::vector<Point>& points, const Bindings& bindings) {
  if (points.size() > static_cast<size_t>(INT_MAX))
    fail("eval_points: {} points; at most {} per call", points.size(), INT_MAX);
  const Target& target = current_target();
  const KernelVariant& variant = find_variant(TemplateKind::EvalPoints, target.arch);
  const std::shared_ptr<const PreparedMods> mods = prepare_mods(mask, score);
  const auto kernel = cuda::get_kernel(target, variant, *mods);
  FlexjitModArgs args =
      pack_mod_args(mods->signature, resolve_device_args(mods->signature, bindings, "eval_points"),
                    cuda::device_error_word());
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
  LaunchSizes sizes;
  sizes.elements = static_cast<int64_t>(n);
  const GridDims grid = grid_dims(variant.main, sizes);
  cuda::check(cuda::driver().cuLaunchKernel(kernel->function, grid.x, grid.y, grid.z,
                                            static_cast<unsigned>(variant.main.threads), 1, 1, 0,
                                            nullptr, params, nullptr),
              kernel->entry());
  // Synchronous copies on the legacy default stream: they wait for the kernel.
  mask_dev.download(out.mask.data(), n);
  score_dev.download(out.score.data(), n * 4);
  out.reported_outside = (cuda::take_device_errors() & FLEXJIT_DEVICE_ERROR_LOAD) != 0;
  return out;
}

} // namespace flexjit
