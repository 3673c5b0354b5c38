// f16 / bf16 bit conversions on the host, round to nearest even, for tests and examples that
// fill device tensors: the library's (dsl/HalfFloat.h), under the names testing/ gives them.
#pragma once

#include "flexjit/dsl/HalfFloat.h"

namespace flexjit::testing {

using flexjit::bf16_to_f32;
using flexjit::f16_to_f32;
using flexjit::f32_to_bf16;
using flexjit::f32_to_f16;
using flexjit::from_half_bits;
using flexjit::to_half_bits;

} // namespace flexjit::testing
