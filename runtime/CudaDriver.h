// The CUDA Driver API, loaded with dlopen so the library starts on machines
// without libcuda. Every call goes through check(), which turns a failure into
// flexjit::Error with the driver's own message.
#pragma once

#include <cuda.h>

#include <string>

namespace flexjit::cuda {

// The entry points flexjit uses: (member, exported symbol).
#define FLEXJIT_CUDA_FUNCTIONS(X)                                                                  \
  X(cuInit, "cuInit")                                                                              \
  X(cuGetErrorName, "cuGetErrorName")                                                              \
  X(cuGetErrorString, "cuGetErrorString")                                                          \
  X(cuDeviceGetCount, "cuDeviceGetCount")                                                          \
  X(cuDeviceGet, "cuDeviceGet")                                                                    \
  X(cuDeviceGetName, "cuDeviceGetName")                                                            \
  X(cuDeviceGetAttribute, "cuDeviceGetAttribute")                                                  \
  X(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")                                          \
  X(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2")                                     \
  X(cuCtxSetCurrent, "cuCtxSetCurrent")                                                            \
  X(cuCtxGetCurrent, "cuCtxGetCurrent")                                                            \
  X(cuCtxSynchronize, "cuCtxSynchronize")                                                          \
  X(cuCtxPushCurrent, "cuCtxPushCurrent_v2")                                                       \
  X(cuCtxPopCurrent, "cuCtxPopCurrent_v2")                                                         \
  X(cuCtxGetDevice, "cuCtxGetDevice")                                                              \
  X(cuDriverGetVersion, "cuDriverGetVersion")                                                      \
  X(cuLinkCreate, "cuLinkCreate_v2")                                                               \
  X(cuLinkAddData, "cuLinkAddData_v2")                                                             \
  X(cuLinkComplete, "cuLinkComplete")                                                              \
  X(cuLinkDestroy, "cuLinkDestroy")                                                                \
  X(cuModuleLoadData, "cuModuleLoadData")                                                          \
  X(cuMemsetD32Async, "cuMemsetD32Async")                                                          \
  X(cuMemAlloc, "cuMemAlloc_v2")                                                                   \
  X(cuMemFree, "cuMemFree_v2")                                                                     \
  X(cuMemGetInfo, "cuMemGetInfo_v2")                                                               \
  X(cuMemcpyHtoD, "cuMemcpyHtoD_v2")                                                               \
  X(cuMemcpyDtoH, "cuMemcpyDtoH_v2")                                                               \
  X(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2")                                                     \
  X(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2")                                                     \
  X(cuMemsetD8, "cuMemsetD8_v2")                                                                   \
  X(cuMemsetD8Async, "cuMemsetD8Async")                                                            \
  X(cuModuleLoadDataEx, "cuModuleLoadDataEx")                                                      \
  X(cuModuleUnload, "cuModuleUnload")                                                              \
  X(cuModuleGetFunction, "cuModuleGetFunction")                                                    \
  X(cuFuncSetAttribute, "cuFuncSetAttribute")                                                      \
  X(cuFuncGetAttribute, "cuFuncGetAttribute")                                                      \
  X(cuLaunchKernel, "cuLaunchKernel")                                                              \
  X(cuStreamCreate, "cuStreamCreate")                                                              \
  X(cuStreamDestroy, "cuStreamDestroy_v2")                                                         \
  X(cuStreamSynchronize, "cuStreamSynchronize")                                                    \
  X(cuEventCreate, "cuEventCreate")                                                                \
  X(cuEventDestroy, "cuEventDestroy_v2")                                                           \
  X(cuEventRecord, "cuEventRecord")                                                                \
  X(cuEventSynchronize, "cuEventSynchronize")                                                      \
  X(cuEventQuery, "cuEventQuery")                                                                  \
  X(cuStreamIsCapturing, "cuStreamIsCapturing")                                                    \
  X(cuStreamGetId, "cuStreamGetId")                                                                \
  X(cuEventElapsedTime, "cuEventElapsedTime_v2")                                                   \
  X(cuTensorMapEncodeTiled, "cuTensorMapEncodeTiled")                                              \
  X(cuMemHostAlloc, "cuMemHostAlloc")                                                              \
  X(cuMemHostGetDevicePointer, "cuMemHostGetDevicePointer_v2")                                     \
  X(cuStreamWaitValue32, "cuStreamWaitValue32_v2")                                                 \
  X(cuStreamBeginCapture, "cuStreamBeginCapture_v2")                                               \
  X(cuStreamEndCapture, "cuStreamEndCapture")                                                      \
  X(cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags")                                    \
  X(cuGraphLaunch, "cuGraphLaunch")                                                                \
  X(cuGraphExecDestroy, "cuGraphExecDestroy")                                                      \
  X(cuGraphDestroy, "cuGraphDestroy")

struct Driver {
#define FLEXJIT_CUDA_MEMBER(name, symbol) decltype(&::name) name = nullptr;
  FLEXJIT_CUDA_FUNCTIONS(FLEXJIT_CUDA_MEMBER)
#undef FLEXJIT_CUDA_MEMBER
};

// True when libcuda loads, cuInit succeeds and a device exists. Never throws.
bool available();
// Why available() is false ("libcuda.so.1 not found", the cuInit error, ...).
std::string unavailable_reason();
// The loaded driver; throws Error when !available().
const Driver& driver();
// Throws Error "<what>: <CUDA_ERROR_NAME>: <driver message>" unless CUDA_SUCCESS.
void check(CUresult result, const char* what);

} // namespace flexjit::cuda
