#include "flexjit/runtime/Context.h"
#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/Runtime.h"
#include "flexjit/support/Error.h"

namespace flexjit {

double time_on_stream(const Stream& stream, const std::function<void()>& work, int reps) {
  if (reps <= 0)
    fail("time_on_stream: reps must be positive, got {}", reps);
  cuda::ensure_context();
  const cuda::Driver& d = cuda::driver();
  const CUstream s = static_cast<CUstream>(stream.handle);
  CUevent start = nullptr, stop = nullptr;
  cuda::check(d.cuEventCreate(&start, CU_EVENT_DEFAULT), "cuEventCreate");
  cuda::check(d.cuEventCreate(&stop, CU_EVENT_DEFAULT), "cuEventCreate");
  float ms = 0;
  try {
    cuda::check(d.cuEventRecord(start, s), "cuEventRecord");
    for (int i = 0; i < reps; ++i)
      work();
    cuda::check(d.cuEventRecord(stop, s), "cuEventRecord");
    cuda::check(d.cuEventSynchronize(stop), "cuEventSynchronize");
    cuda::check(d.cuEventElapsedTime(&ms, start, stop), "cuEventElapsedTime");
  } catch (...) {
    d.cuEventDestroy(start);
    d.cuEventDestroy(stop);
    throw;
  }
  d.cuEventDestroy(start);
  d.cuEventDestroy(stop);
  return ms / reps;
}

} // namespace flexjit
