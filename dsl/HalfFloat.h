// f16 and bf16 on the host: the bits of a float rounded to nearest even, and the float of
// 16 bits (exact). The one definition for the interpreter's loads (compiler/Semantics.h), the
// command-line tool's buffer files and random tensors (cli/), and the tests, examples and
// benchmarks (testing/HalfFloat.h). Header-only: the interpreter's loads are hot.
#pragma once

#include <bit>
#include <cstdint>

#include "flexjit/dsl/Types.h"

namespace flexjit {

// IEEE binary32 -> binary16 bits: 65520 and above (the halfway point past 65504) round to
// inf, below 2^-14 to a subnormal; a NaN stays a quiet NaN of its sign.
inline uint16_t f32_to_f16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x > 0x7f800000u)
    return sign | 0x7e00u;
  if (x >= 0x477ff000u)
    return sign | 0x7c00u;
  if (x < 0x38800000u) { // a subnormal: the significand in units of 2^-24, rounded
    const int shift = 126 - static_cast<int>(x >> 23);
    if (shift > 24) // below 2^-25: zero
      return sign;
    const uint32_t m = (x & 0x7fffffu) | 0x800000u;
    const uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    return sign | static_cast<uint16_t>(r + (rem > half || (rem == half && (r & 1u))));
  }
  x += 0xc8000fffu + ((x >> 13) & 1u); // exponent bias 127 -> 15, round to nearest even
  return sign | static_cast<uint16_t>(x >> 13);
}

// IEEE binary32 -> bfloat16 bits; a NaN stays a quiet NaN of its sign and high payload.
inline uint16_t f32_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// binary16 bits -> binary32, exact; a NaN keeps its payload.
inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) // zero or subnormal: mant * 2^-24, exact in binary32
    return std::bit_cast<float>(
        sign | std::bit_cast<uint32_t>(static_cast<float>(mant) * 5.9604644775390625e-8f));
  if (exp == 31) // inf or NaN
    return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

inline float bf16_to_f32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

// The 16 bits of `f` as `dtype`: BF16, else F16.
inline uint16_t to_half_bits(float f, DType dtype) {
  return dtype == DType::BF16 ? f32_to_bf16(f) : f32_to_f16(f);
}

// The float of 16 bits of `dtype`: BF16, else F16.
inline float from_half_bits(uint16_t h, DType dtype) {
  return dtype == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

} // namespace flexjit
