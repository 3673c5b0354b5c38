// The ABI between host code, the lowered mods and the kernel templates. Plain
// C layout; included by host C++ and by the CUDA-dialect templates.
#pragma once

#ifdef __cplusplus
#include <cstdint>
#else
#include <stdint.h>
#endif

#define FLEXJIT_MAX_BUFFERS 8
#define FLEXJIT_MAX_INT_PARAMS 16
#define FLEXJIT_MAX_FLOAT_PARAMS 16
#define FLEXJIT_MAX_RANK 4

struct FlexjitBufferArg {
  const void* data;
  int64_t sizes[FLEXJIT_MAX_RANK];   // in elements
  int64_t strides[FLEXJIT_MAX_RANK]; // in elements
};

struct FlexjitModArgs {
  struct FlexjitBufferArg buffers[FLEXJIT_MAX_BUFFERS];
  int32_t int_params[FLEXJIT_MAX_INT_PARAMS];
  float float_params[FLEXJIT_MAX_FLOAT_PARAMS];
  // Where a load whose index reads buffer data (compiler/Visitor.h data_indexed_loads) reports
  // an index outside its buffer: it reads 0 and ORs FLEXJIT_DEVICE_ERROR_LOAD in here. Null:
  // nothing reports (the word is runtime/DeviceErrors.h's for every launch the runtime makes).
  uint32_t* device_error;
};
// A bit of the device error word (runtime/DeviceErrors.h; attention_abi.h has the others).
#define FLEXJIT_DEVICE_ERROR_LOAD 4u

// The hooks every template calls; codegen defines them from the user's mods:
//   bool  flexjit_mask_mod(int b, int h, int q, int kv, const FlexjitModArgs* args);
//   float flexjit_score_mod(float score, int b, int h, int q, int kv,
//                           const FlexjitModArgs* args);
// Both are `extern "C"`, always inlined after linking.
