#include "flexjit/support/Error.h"

namespace flexjit {

void internal_error(const char* file, int line, const char* cond, const std::string& message) {
  throw Error(fmt::format("flexjit internal error at {}:{}: {} ({})", file, line, message, cond));
}

} // namespace flexjit
