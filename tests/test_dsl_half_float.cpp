// dsl/HalfFloat.h: float -> f16 / bf16 bits round to nearest even (ties, subnormals, the edge
// of inf, NaN), and 16 bits -> float -> 16 bits gives the bits back.
#include <catch2/catch.hpp>

#include <bit>
#include <cstdint>
#include <limits>

#include "flexjit/dsl/HalfFloat.h"

using namespace flexjit;

namespace {

float with_bits(uint32_t x) {
  return std::bit_cast<float>(x);
}

} // namespace

TEST_CASE("half float: f16 rounds to nearest even", "[dsl][half]") {
  CHECK(f32_to_f16(1.0f) == 0x3c00);
  CHECK(f32_to_f16(-0.0f) == 0x8000);
  CHECK(f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);     // a tie, to the even 1.0
  CHECK(f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02); // a tie, to the even 1 + 2^-9
  CHECK(f32_to_f16(65504.0f) == 0x7bff);            // the largest f16
  CHECK(f32_to_f16(65519.996f) == 0x7bff);
  CHECK(f32_to_f16(65520.0f) == 0x7c00); // halfway past it: inf
  CHECK(f32_to_f16(-std::numeric_limits<float>::infinity()) == 0xfc00);
  CHECK(f32_to_f16(0x1p-14f) == 0x0400);            // the smallest normal
  CHECK(f32_to_f16(0x1p-14f - 0x1p-25f) == 0x0400); // a tie, up to the even normal
  CHECK(f32_to_f16(0x1p-24f) == 0x0001);            // the smallest subnormal
  CHECK(f32_to_f16(0x1p-25f) == 0x0000);            // a tie, to the even zero
  CHECK(f32_to_f16(0x1.8p-25f) == 0x0001);          // above the tie
  CHECK(f32_to_f16(-3 * 0x1p-25f) == 0x8002);       // a tie, to the even 2
  CHECK(f32_to_f16(std::numeric_limits<float>::denorm_min()) == 0x0000);
  CHECK(f32_to_f16(with_bits(0x7fc00000u)) == 0x7e00); // NaN: a quiet NaN of its sign
  CHECK(f32_to_f16(with_bits(0xff800001u)) == 0xfe00);
}

TEST_CASE("half float: bf16 rounds to nearest even", "[dsl][half]") {
  CHECK(f32_to_bf16(1.0f) == 0x3f80);
  CHECK(f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80);     // a tie, to the even 1.0
  CHECK(f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82); // a tie, to the even 1 + 2^-6
  CHECK(f32_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);
  CHECK(f32_to_bf16(with_bits(0x7fc00000u)) == 0x7fc0);
  CHECK(f32_to_bf16(with_bits(0xff800001u)) == 0xffc0); // a signalling NaN comes back quiet
}

TEST_CASE("half float: 16 bits -> float -> 16 bits is the identity", "[dsl][half]") {
  for (DType dtype : {DType::F16, DType::BF16})
    for (uint32_t h = 0; h <= 0xffffu; ++h) {
      const uint16_t bits = static_cast<uint16_t>(h);
      const float f = from_half_bits(bits, dtype);
      const bool nan = f != f;
      const uint16_t quiet = dtype == DType::BF16 ? 0x40 : 0x200;
      // A NaN comes back quiet (f16: with no payload beyond the quiet bit).
      const uint16_t want = !nan                   ? bits
                            : dtype == DType::BF16 ? bits | quiet
                                                   : (bits & 0x8000) | 0x7e00;
      INFO(to_string(dtype) << " " << h);
      REQUIRE(to_half_bits(f, dtype) == want);
    }
  CHECK(from_half_bits(0x0001, DType::F16) == 0x1p-24f);
  CHECK(from_half_bits(0x7bff, DType::F16) == 65504.0f);
  CHECK(from_half_bits(0x3f80, DType::BF16) == 1.0f);
}
