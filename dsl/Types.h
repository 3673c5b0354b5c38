// Scalar types of expressions, element types of tensors, and tensor views.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace flexjit {

// The type of an expression value. Ints are 32-bit two's complement with
// wrap-around; floats are IEEE binary32.
enum class Type : uint8_t { Bool, Int, Float };

// The element type of a tensor or captured buffer.
enum class DType : uint8_t { I32, F32, F16, BF16, Bool };

std::string_view to_string(Type type);
std::string_view to_string(DType dtype);
int dtype_size(DType dtype);
// The expression type a load of this element type produces.
Type value_type(DType dtype);

// Where a tensor's memory lives. Auto only chooses where work runs (the GPU
// when one is available), never describes a tensor.
enum class Device : uint8_t { Host, Cuda, Auto };

inline constexpr int kMaxRank = 4;

// A non-owning strided view: data pointer, element type, sizes and strides in
// elements. Covers captured buffers (1-D to 4-D) and attention tensors [B,H,S,D].
struct TensorView {
  const void* data = nullptr;
  DType dtype = DType::F32;
  Device device = Device::Host;
  int rank = 0;
  std::array<int64_t, kMaxRank> sizes{};
  std::array<int64_t, kMaxRank> strides{};

  int64_t numel() const;
  // A contiguous (row-major) view of `sizes`.
  static TensorView contiguous(const void* data, DType dtype, std::initializer_list<int64_t> sizes,
                               Device device = Device::Host);
};

} // namespace flexjit
