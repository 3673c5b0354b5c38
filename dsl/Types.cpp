#include "flexjit/dsl/Types.h"

#include "flexjit/support/Error.h"

namespace flexjit {

std::string_view to_string(Type type) {
  switch (type) {
  case Type::Bool:
    return "bool";
  case Type::Int:
    return "int";
  case Type::Float:
    return "float";
  }
  return "?";
}

std::string_view to_string(DType dtype) {
  switch (dtype) {
  case DType::I32:
    return "i32";
  case DType::F32:
    return "f32";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  case DType::Bool:
    return "bool";
  }
  return "?";
}

int dtype_size(DType dtype) {
  switch (dtype) {
  case DType::I32:
  case DType::F32:
    return 4;
  case DType::F16:
  case DType::BF16:
    return 2;
  case DType::Bool:
    return 1;
  }
  return 0;
}

Type value_type(DType dtype) {
  switch (dtype) {
  case DType::I32:
    return Type::Int;
  case DType::F32:
  case DType::F16:
  case DType::BF16:
    return Type::Float;
  case DType::Bool:
    return Type::Bool;
  }
  return Type::Int;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i)
    n *= sizes[i];
  return n;
}

TensorView TensorView::contiguous(const void* data, DType dtype,
                                  std::initializer_list<int64_t> sizes, Device device) {
  if (sizes.size() < 1 || sizes.size() > kMaxRank)
    fail("tensor rank {} is not supported; expected 1 to {}", sizes.size(), kMaxRank);
  TensorView v;
  v.data = data;
  v.dtype = dtype;
  v.device = device;
  v.rank = static_cast<int>(sizes.size());
  int i = 0;
  for (int64_t s : sizes) {
    if (s < 0)
      fail("tensor size {} in dimension {} is negative; expected >= 0", s, i);
    v.sizes[i++] = s;
  }
  int64_t stride = 1;
  for (int d = v.rank - 1; d >= 0; --d) {
    v.strides[d] = stride;
    stride *= v.sizes[d];
  }
  return v;
}

} // namespace flexjit
