// flexjit's two error tiers: Error for anything a user can cause (thrown, with
// a message naming the bad value and what was expected), FLEXJIT_ASSERT for
// compiler invariants (a bug in flexjit, also thrown so a host never aborts).
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace flexjit {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Throws Error with "flexjit: " + the formatted message.
template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error("flexjit: " + fmt::format(format, std::forward<Args>(args)...));
}

[[noreturn]] void internal_error(const char* file, int line, const char* cond,
                                 const std::string& message);

} // namespace flexjit

#define FLEXJIT_ASSERT(cond, ...)                                                                  \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      ::flexjit::internal_error(__FILE__, __LINE__, #cond, ::fmt::format(__VA_ARGS__));            \
  } while (0)
