#include "flexjit/support/Hash.h"

#include <fmt/format.h>

namespace flexjit {

std::string Hash128::hex() const {
  return fmt::format("{:016x}{:016x}", hi, lo);
}

Hash128 hash_text(std::string_view text) {
  // Two FNV-1a passes with different offset bases and primes; the second is
  // finalized by a splitmix64 mixer so the halves are independent.
  uint64_t a = 0xcbf29ce484222325ULL, b = 0x6c62272e07bb0142ULL;
  for (unsigned char c : text) {
    a = (a ^ c) * 0x100000001b3ULL;
    b = (b ^ (c + 0x9eULL)) * 0x00000100000001b5ULL;
  }
  b ^= text.size();
  b = (b ^ (b >> 30)) * 0xbf58476d1ce4e5b9ULL;
  b = (b ^ (b >> 27)) * 0x94d049bb133111ebULL;
  b ^= b >> 31;
  return Hash128{b, a};
}

} // namespace flexjit
