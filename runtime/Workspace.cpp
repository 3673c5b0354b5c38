#include "flexjit/runtime/Workspace.h"

#include <algorithm>
#include <utility>

namespace flexjit {

void* Workspace::get(size_t bytes) {
  if (current_.bytes() < bytes) {
    // Allocated first: when cuMemAlloc fails, the workspace is as it was.
    DeviceBuffer grown(std::max({bytes, 2 * current_.bytes(), kMinBytes}));
    if (current_.bytes() > 0)
      retired_.push_back(std::move(current_));
    current_ = std::move(grown);
  }
  return current_.data();
}

void Workspace::release() {
  current_ = DeviceBuffer();
  retired_.clear();
}

} // namespace flexjit
