// Runs the kernels of repro.ptx (or of a cubin ptxas made from it) on GPU 0 and prints
// what each wrote (x = 5, a[0] = b[0] = 100 for the mins; x = -5, a[0] = b[0] = -100 for
// the max), next to the right value. With a .ptx the
// driver compiles it at CU_JIT_OPTIMIZATION_LEVEL = LEVEL (0..4; 4 is the default).
// Needs only the driver (libcuda.so.1, loaded with dlopen):
//   cc -O1 repro_run.c -o repro_run -ldl && ./repro_run repro.ptx 4 && ./repro_run repro.ptx 0
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef void* CUcontext;
typedef void* CUmodule;
typedef void* CUfunction;
typedef unsigned long long CUdeviceptr;

#define FN(ret, name, args) static ret(*p_##name) args;
FN(CUresult, cuInit, (unsigned))
FN(CUresult, cuDeviceGet, (CUdevice*, int))
FN(CUresult, cuDevicePrimaryCtxRetain, (CUcontext*, CUdevice))
FN(CUresult, cuCtxSetCurrent, (CUcontext))
FN(CUresult, cuModuleLoadDataEx, (CUmodule*, const void*, unsigned, int*, void**))
FN(CUresult, cuModuleGetFunction, (CUfunction*, CUmodule, const char*))
FN(CUresult, cuMemAlloc_v2, (CUdeviceptr*, size_t))
FN(CUresult, cuMemcpyHtoD_v2, (CUdeviceptr, const void*, size_t))
FN(CUresult, cuMemcpyDtoH_v2, (void*, CUdeviceptr, size_t))
FN(CUresult, cuLaunchKernel,
   (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*, void**,
    void**))
FN(CUresult, cuCtxSynchronize, (void))

#define CHECK(call)                                                                                \
  do {                                                                                             \
    CUresult r_ = (call);                                                                          \
    if (r_) {                                                                                      \
      fprintf(stderr, "%s: error %d\n", #call, r_);                                                \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s repro.ptx|repro.cubin [LEVEL]\n", argv[0]);
    return 2;
  }
  void* lib = dlopen("libcuda.so.1", RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "no libcuda.so.1\n");
    return 2;
  }
#define LOAD(name) *(void**)&p_##name = dlsym(lib, #name)
  LOAD(cuInit);
  LOAD(cuDeviceGet);
  LOAD(cuDevicePrimaryCtxRetain);
  LOAD(cuCtxSetCurrent);
  LOAD(cuModuleLoadDataEx);
  LOAD(cuModuleGetFunction);
  LOAD(cuMemAlloc_v2);
  LOAD(cuMemcpyHtoD_v2);
  LOAD(cuMemcpyDtoH_v2);
  LOAD(cuLaunchKernel);
  LOAD(cuCtxSynchronize);
  FILE* f = fopen(argv[1], "rb");
  if (!f) {
    perror(argv[1]);
    return 2;
  }
  static char image[1 << 20];
  size_t n = fread(image, 1, sizeof image - 1, f);
  fclose(f);
  image[n] = 0;
  CUdevice dev;
  CUcontext ctx;
  CHECK(p_cuInit(0));
  CHECK(p_cuDeviceGet(&dev, 0));
  CHECK(p_cuDevicePrimaryCtxRetain(&ctx, dev));
  CHECK(p_cuCtxSetCurrent(ctx));
  int options[] = {7 /* CU_JIT_OPTIMIZATION_LEVEL */};
  void* values[] = {(void*)(size_t)(argc > 2 ? atoi(argv[2]) : 4)};
  CUmodule module;
  CHECK(p_cuModuleLoadDataEx(&module, image, argc > 2 ? 1 : 0, options, values));
  CUdeviceptr a, b, out;
  CHECK(p_cuMemAlloc_v2(&a, 4));
  CHECK(p_cuMemAlloc_v2(&b, 4));
  CHECK(p_cuMemAlloc_v2(&out, 4));
  const struct {
    const char* name;
    int x, ab, want;
  } probes[] = {{"probe_min", 5, 100, -5},
                {"probe_max", -5, -100, 5},
                {"probe_min_ref", 5, 100, 5},
                {"probe_min_notadd", 5, 100, -5}};
  int wrong = 0;
  for (int i = 0; i < 4; ++i) {
    CUfunction fn;
    CHECK(p_cuModuleGetFunction(&fn, module, probes[i].name));
    int x = probes[i].x;
    CHECK(p_cuMemcpyHtoD_v2(a, &probes[i].ab, 4));
    CHECK(p_cuMemcpyHtoD_v2(b, &probes[i].ab, 4));
    void* params[] = {&x, &a, &b, &out};
    int got = 0x7eadbeef;
    CHECK(p_cuMemcpyHtoD_v2(out, &got, 4));
    CHECK(p_cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL));
    CHECK(p_cuCtxSynchronize());
    CHECK(p_cuMemcpyDtoH_v2(&got, out, 4));
    printf("%-17s x=%d a=b=%d: got %d, want %d%s\n", probes[i].name, x, probes[i].ab, got,
           probes[i].want, got == probes[i].want ? "" : "   <-- WRONG");
    wrong += got != probes[i].want;
  }
  printf("%s level %s: %d wrong\n", argv[1], argc > 2 ? argv[2] : "default", wrong);
  return wrong != 0;
}
