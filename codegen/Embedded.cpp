#include "flexjit/codegen/Embedded.h"

#include <cstddef>

// The assembler defines each symbol and symbol_end around an .incbin.
#define FLEXJIT_EMBEDDED(sym) extern "C" const char sym[], sym##_end[];
#include "EmbeddedBitcode.inc"
#undef FLEXJIT_EMBEDDED

namespace flexjit {

namespace {

struct Embedded {
  std::string_view name;
  const char* begin;
  const char* end;
};

constexpr Embedded kEmbedded[] = {
#define FLEXJIT_EMBEDDED(sym) {#sym, sym, sym##_end},
#include "EmbeddedBitcode.inc"
#undef FLEXJIT_EMBEDDED
};

} // namespace

std::string_view embedded_bitcode(std::string_view symbol) {
  for (const Embedded& e : kEmbedded)
    if (e.name == symbol)
      return {e.begin, static_cast<size_t>(e.end - e.begin)};
  return {};
}

} // namespace flexjit
