// Host wall-clock timing: the compile phases, the kernel cache's build times.
#pragma once

#include <chrono>

namespace flexjit {

using Clock = std::chrono::steady_clock;

// Milliseconds since `start`.
inline double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

} // namespace flexjit
