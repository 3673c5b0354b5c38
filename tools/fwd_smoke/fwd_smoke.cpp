// Forward-attention smoke test for one GPU machine: loads the PTX that build.sh made
// (attention_fwd.cu linked with test hooks, one set per kernel variant listed in
// variants.txt), checks every variant's four kernels against a float64 CPU reference, then
// times the anchor shapes for every variant. Prints a compact table; exits 1 on failure.
//   fwd_smoke [--no-perf] [--no-check] [--reps N]   (files are read from the binary's folder)
#include <cuda.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "flexjit/codegen/templates/attention_abi.h"
#include "flexjit/codegen/templates/flexjit_abi.h"

#include "flexjit/testing/HalfFloat.h"

namespace {

#define CHECK_CU(call)                                                                             \
  do {                                                                                             \
    CUresult r_ = (call);                                                                          \
    if (r_ != CUDA_SUCCESS) {                                                                      \
      const char* s_ = nullptr;                                                                    \
      cuGetErrorString(r_, &s_);                                                                   \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, s_ ? s_ : "?");    \
      std::exit(2);                                                                                \
    }                                                                                              \
  } while (0)

// ---- f16 / bf16 on the host --------------------------------------------------------
// f16/bf16 conversions: the ones the tests and examples use.
using flexjit::testing::bf16_to_f32;
using flexjit::testing::f16_to_f32;
using flexjit::testing::f32_to_bf16;
using flexjit::testing::f32_to_f16;

uint16_t to_bits(float f, bool bf16) {
  return bf16 ? f32_to_bf16(f) : f32_to_f16(f);
}
float from_bits(uint16_t h, bool bf16) {
  return bf16 ? bf16_to_f32(h) : f16_to_f32(h);
}

// ---- Modules ------------------------------------------------------------------------
std::string exe_dir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0)
    return ".";
  std::string s(buf, static_cast<size_t>(n));
  return s.substr(0, s.rfind('/'));
}

struct Variant {
  std::string tag;
  int threads = 128, n64 = 64, n128 = 64, st64 = 2, st128 = 2;
  int smem(int d) const {
    return (FLEXJIT_FWD_BLOCK_M + 2 * (d == 64 ? st64 * n64 : st128 * n128)) * d * 2;
  }
};

struct Kernels {
  CUmodule module = nullptr;
  CUfunction f[2][2] = {}; // [bf16][d128]
  Variant v;
};

Kernels load_module(const std::string& path, const Variant& v) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "cannot read %s (run tools/fwd_smoke/build.sh)\n", path.c_str());
    std::exit(2);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string ptx = ss.str();
  char info[16384] = {}, err[16384] = {};
  CUjit_option opts[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
                         CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                         CU_JIT_LOG_VERBOSE};
  void* vals[] = {info, reinterpret_cast<void*>(sizeof info), err,
                  reinterpret_cast<void*>(sizeof err), reinterpret_cast<void*>(1)};
  Kernels k;
  k.v = v;
  const CUresult r = cuModuleLoadDataEx(&k.module, ptx.c_str(), 5, opts, vals);
  if (r != CUDA_SUCCESS) {
    const char* s = nullptr;
    cuGetErrorString(r, &s);
    std::fprintf(stderr, "cuModuleLoadDataEx(%s): %s\nerror log:\n%s\ninfo log:\n%s\n",
                 path.c_str(), s ? s : "?", err, info);
    std::exit(2);
  }
  const char* names[2][2] = {{"flexjit_attention_fwd_f16_d64", "flexjit_attention_fwd_f16_d128"},
                             {"flexjit_attention_fwd_bf16_d64", "flexjit_attention_fwd_bf16_d128"}};
  for (int b = 0; b < 2; ++b)
    for (int d = 0; d < 2; ++d) {
      CHECK_CU(cuModuleGetFunction(&k.f[b][d], k.module, names[b][d]));
      CHECK_CU(cuFuncSetAttribute(k.f[b][d], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                  v.smem(d ? 128 : 64)));
    }
  return k;
}

// ---- Block masks built on the host by brute force -----------------------------------
using MaskFn = std::function<bool(int b, int h, int q, int kv)>;

struct HostBlockMask {
  int mask_B = 1, mask_H = 1, nq = 0, nkv = 0;
  std::vector<int32_t> kv_num, kv_idx, full_num, full_idx;
  double density = 0; // (partial + full tiles) / all tiles, as the anchors count it
};

// mask == nullptr: every tile full (a noop mask expressed as a block mask).
HostBlockMask build_block_mask(const MaskFn& mask, int mB, int mH, int q_len, int kv_len,
                               int bs = 128) {
  HostBlockMask m;
  m.mask_B = mB;
  m.mask_H = mH;
  m.nq = (q_len + bs - 1) / bs;
  m.nkv = (kv_len + bs - 1) / bs;
  const size_t rows = static_cast<size_t>(mB) * mH * m.nq;
  m.kv_num.assign(rows, 0);
  m.full_num.assign(rows, 0);
  m.kv_idx.assign(rows * m.nkv, 0);
  m.full_idx.assign(rows * m.nkv, 0);
  size_t used = 0;
  for (int b = 0; b < mB; ++b)
    for (int h = 0; h < mH; ++h)
      for (int qb = 0; qb < m.nq; ++qb) {
        const size_t row = (static_cast<size_t>(b) * mH + h) * m.nq + qb;
        for (int kb = 0; kb < m.nkv; ++kb) {
          long in = 0, total = 0;
          for (int q = qb * bs; q < std::min(q_len, (qb + 1) * bs); ++q)
            for (int kv = kb * bs; kv < std::min(kv_len, (kb + 1) * bs); ++kv) {
              ++total;
              in += !mask || mask(b, h, q, kv);
            }
          if (in == 0)
            continue;
          ++used;
          if (in == total) // a ragged edge tile is still "full": the kernel bounds-checks
            m.full_idx[row * m.nkv + m.full_num[row]++] = kb;
          else
            m.kv_idx[row * m.nkv + m.kv_num[row]++] = kb;
        }
      }
  m.density = static_cast<double>(used) / static_cast<double>(rows * m.nkv);
  return m;
}

// ---- Device buffers -------------------------------------------------------------------
struct DevBuf {
  CUdeviceptr p = 0;
  size_t bytes = 0;
  explicit DevBuf(size_t n) : bytes(n) {
    if (n)
      CHECK_CU(cuMemAlloc(&p, n));
  }
  ~DevBuf() {
    if (p)
      cuMemFree(p);
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  template <class T> void upload(const std::vector<T>& v) {
    if (v.empty())
      return;
    CHECK_CU(cuMemcpyHtoD(p, v.data(), v.size() * sizeof(T)));
  }
  template <class T> void download(std::vector<T>& v) {
    if (v.empty())
      return;
    CHECK_CU(cuMemcpyDtoH(v.data(), p, v.size() * sizeof(T)));
  }
};

struct DevMask {
  DevBuf kv_num, kv_idx, full_num, full_idx;
  explicit DevMask(const HostBlockMask& m)
      : kv_num(m.kv_num.size() * 4), kv_idx(m.kv_idx.size() * 4), full_num(m.full_num.size() * 4),
        full_idx(m.full_idx.size() * 4) {
    kv_num.upload(m.kv_num);
    kv_idx.upload(m.kv_idx);
    full_num.upload(m.full_num);
    full_idx.upload(m.full_idx);
  }
  void fill(FlexjitAttentionParams& p, const HostBlockMask& m) const {
    p.kv_num_blocks = reinterpret_cast<const int32_t*>(kv_num.p);
    p.kv_indices = reinterpret_cast<const int32_t*>(kv_idx.p);
    p.full_kv_num_blocks = reinterpret_cast<const int32_t*>(full_num.p);
    p.full_kv_indices = reinterpret_cast<const int32_t*>(full_idx.p);
    p.mask_B = m.mask_B;
    p.mask_H = m.mask_H;
    p.num_q_blocks = m.nq;
    p.num_kv_blocks = m.nkv;
    p.q_block_size = 128;
    p.kv_block_size = 128;
    p.has_mask = 1;
  }
};

void launch(const Kernels& k, bool bf16, const FlexjitAttentionParams& p,
            const FlexjitModArgs& args, int d, CUstream s = nullptr) {
  void* kargs[] = {const_cast<FlexjitAttentionParams*>(&p), const_cast<FlexjitModArgs*>(&args)};
  const unsigned gx =
      static_cast<unsigned>((p.q_len + FLEXJIT_FWD_BLOCK_M - 1) / FLEXJIT_FWD_BLOCK_M);
  CHECK_CU(cuLaunchKernel(k.f[bf16][d == 128], gx, static_cast<unsigned>(p.Hq),
                          static_cast<unsigned>(p.B), static_cast<unsigned>(k.v.threads), 1, 1,
                          static_cast<unsigned>(k.v.smem(d)), s, kargs, nullptr));
}

// ---- Correctness ----------------------------------------------------------------------
enum class Hooks { Noop, Causal, Bias, Softcap };
constexpr int kNumHooks = 4;

struct Case {
  const char* name;
  Hooks hooks;
  int mask_kind; // 0: has_mask = 0; 1: all-full block mask; 2: block mask of the hooks' mask
  bool bshd;
  bool mask_bcast; // block mask [1, 1, ...] (else [B, Hq, ...])
  int offset;      // causal offset (int_params[0])
  float slope;     // bias slope (float_params[0])
  int q_len, kv_len;
  bool with_lse;
};

struct Result {
  double out_err = 0, lse_err = 0;
  long nan = 0, empty_rows = 0, bad_empty = 0, poison_hit = 0;
  bool ok = false;
};

// mods[v][hooks]: every variant is checked on the same inputs against one reference.
std::vector<Result> run_case(const std::vector<std::vector<Kernels>>& mods, const Case& c,
                             bool bf16, int D) {
  const int B = 2, Hq = 4, Hkv = 2, Sq = c.q_len, Sk = c.kv_len;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  std::mt19937 rng(1234 + D + (bf16 ? 7 : 0) + Sq);
  std::normal_distribution<float> nd(0.f, 1.f);
  auto make = [&](int H, int S) {
    std::vector<uint16_t> v(static_cast<size_t>(B) * H * S * D);
    for (auto& x : v)
      x = to_bits(nd(rng), bf16);
    return v;
  };
  // Host arrays are [B, H, S, D] logically; the device layout is BHSD or BSHD.
  std::vector<uint16_t> hq = make(Hq, Sq), hk = make(Hkv, Sk), hv = make(Hkv, Sk);
  auto strides = [&](int H, int S, int64_t* st) {
    if (c.bshd) {
      st[0] = int64_t(S) * H * D, st[1] = D, st[2] = int64_t(H) * D;
    } else {
      st[0] = int64_t(H) * S * D, st[1] = int64_t(S) * D, st[2] = D;
    }
  };
  auto to_dev_layout = [&](const std::vector<uint16_t>& src, int H, int S) {
    std::vector<uint16_t> dst(src.size());
    int64_t st[3];
    strides(H, S, st);
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < H; ++h)
        for (int s = 0; s < S; ++s)
          std::memcpy(&dst[b * st[0] + h * st[1] + s * st[2]],
                      &src[((size_t(b) * H + h) * S + s) * D], D * 2);
    return dst;
  };
  const size_t out_elems = static_cast<size_t>(B) * Hq * Sq * D, pad = 4096;
  DevBuf dq(hq.size() * 2), dk(hk.size() * 2), dv(hv.size() * 2), dout((out_elems + pad) * 2),
      dlse((static_cast<size_t>(B) * Hq * Sq + pad) * 4);
  dq.upload(to_dev_layout(hq, Hq, Sq));
  dk.upload(to_dev_layout(hk, Hkv, Sk));
  dv.upload(to_dev_layout(hv, Hkv, Sk));
  std::vector<uint16_t> out(out_elems + pad, 0x7fff); // NaN in f16 and bf16
  std::vector<float> lse(static_cast<size_t>(B) * Hq * Sq + pad,
                         std::numeric_limits<float>::quiet_NaN());
  dout.upload(out);
  dlse.upload(lse);

  auto mask_fn = [&](int, int, int q, int kv) {
    return c.hooks == Hooks::Noop || q + c.offset >= kv;
  };
  auto score_fn = [&](double s, int, int h, int q, int kv) {
    if (c.hooks == Hooks::Softcap)
      return 30.0 * std::tanh(s / 30.0);
    return c.hooks == Hooks::Bias ? s + double(c.slope) * (kv - q) * (h + 1) : s;
  };

  FlexjitAttentionParams p{};
  p.q = reinterpret_cast<const void*>(dq.p);
  p.k = reinterpret_cast<const void*>(dk.p);
  p.v = reinterpret_cast<const void*>(dv.p);
  p.out = reinterpret_cast<void*>(dout.p);
  p.lse = c.with_lse ? reinterpret_cast<float*>(dlse.p) : nullptr;
  strides(Hq, Sq, &p.q_stride_b);
  strides(Hkv, Sk, &p.k_stride_b);
  strides(Hkv, Sk, &p.v_stride_b);
  strides(Hq, Sq, &p.out_stride_b);
  p.lse_stride_b = int64_t(Hq) * Sq;
  p.lse_stride_h = Sq;
  p.B = B, p.Hq = Hq, p.Hkv = Hkv, p.q_len = Sq, p.kv_len = Sk;
  p.scale = static_cast<float>(scale);
  HostBlockMask hm;
  if (c.mask_kind == 1)
    hm = build_block_mask(nullptr, 1, 1, Sq, Sk);
  else if (c.mask_kind == 2)
    hm = build_block_mask(mask_fn, c.mask_bcast ? 1 : B, c.mask_bcast ? 1 : Hq, Sq, Sk);
  else
    hm = build_block_mask(nullptr, 1, 1, 1, 1); // unused
  DevMask dm(hm);
  if (c.mask_kind)
    dm.fill(p, hm);
  FlexjitModArgs args{};
  args.int_params[0] = c.offset;
  args.float_params[0] = c.slope;

  // float64 reference: output rows, lse, empty rows.
  std::vector<double> s(Sk), o(D);
  std::vector<double> ref_o(out_elems), ref_lse(static_cast<size_t>(B) * Hq * Sq);
  std::vector<char> ref_empty(static_cast<size_t>(B) * Hq * Sq);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < Hq; ++h) {
      const int hk_ = h / (Hq / Hkv);
      for (int q = 0; q < Sq; ++q) {
        double m = -INFINITY;
        for (int kv = 0; kv < Sk; ++kv) {
          s[kv] = -INFINITY;
          if (!mask_fn(b, h, q, kv))
            continue;
          double dot = 0;
          const uint16_t* qp = &hq[((size_t(b) * Hq + h) * Sq + q) * D];
          const uint16_t* kp = &hk[((size_t(b) * Hkv + hk_) * Sk + kv) * D];
          for (int d = 0; d < D; ++d)
            dot += double(from_bits(qp[d], bf16)) * from_bits(kp[d], bf16);
          s[kv] = score_fn(dot * scale, b, h, q, kv);
          m = std::max(m, s[kv]);
        }
        std::fill(o.begin(), o.end(), 0.0);
        double l = 0;
        if (m != -INFINITY)
          for (int kv = 0; kv < Sk; ++kv) {
            if (s[kv] == -INFINITY)
              continue;
            const double pr = std::exp(s[kv] - m);
            l += pr;
            const uint16_t* vp = &hv[((size_t(b) * Hkv + hk_) * Sk + kv) * D];
            for (int d = 0; d < D; ++d)
              o[d] += pr * from_bits(vp[d], bf16);
          }
        const size_t row = (size_t(b) * Hq + h) * Sq + q;
        ref_empty[row] = l == 0;
        ref_lse[row] = l == 0 ? -INFINITY : m + std::log(l);
        for (int d = 0; d < D; ++d)
          ref_o[row * D + d] = l == 0 ? 0.0 : o[d] / l;
      }
    }

  std::vector<Result> results;
  for (const auto& vm : mods) {
    const Kernels& k = vm[static_cast<int>(c.hooks)];
    std::fill(out.begin(), out.end(), uint16_t(0x7fff));
    std::fill(lse.begin(), lse.end(), std::numeric_limits<float>::quiet_NaN());
    dout.upload(out);
    dlse.upload(lse);
    launch(k, bf16, p, args, D);
    CHECK_CU(cuCtxSynchronize());
    dout.download(out);
    dlse.download(lse);

    Result r;
    double num = 0, den = 0, lnum = 0, lden = 0;
    for (int b = 0; b < B; ++b)
      for (int h = 0; h < Hq; ++h)
        for (int q = 0; q < Sq; ++q) {
          const size_t row = (size_t(b) * Hq + h) * Sq + q;
          int64_t ost[3];
          strides(Hq, Sq, ost);
          const uint16_t* op = &out[b * ost[0] + h * ost[1] + q * ost[2]];
          const bool empty = ref_empty[row];
          r.empty_rows += empty;
          bool row_bad = false;
          for (int d = 0; d < D; ++d) {
            const double ref = ref_o[row * D + d];
            const double got = from_bits(op[d], bf16);
            if (std::isnan(got))
              ++r.nan;
            if (empty && got != 0.0)
              row_bad = true;
            num += (got - ref) * (got - ref);
            den += ref * ref;
          }
          const float gl = lse[row];
          if (c.with_lse) {
            if (std::isnan(gl))
              ++r.nan;
            if (empty) {
              row_bad |= !(std::isinf(gl) && gl < 0);
            } else {
              const double rl = ref_lse[row];
              lnum += (gl - rl) * (gl - rl);
              lden += rl * rl;
            }
          }
          r.bad_empty += row_bad;
        }
    r.out_err = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    r.lse_err = lden > 0 ? std::sqrt(lnum / lden) : 0;
    const double tol = bf16 ? 1e-2 : 3e-3;
    r.ok =
        r.out_err < tol && r.lse_err < 1e-3 && r.nan == 0 && r.bad_empty == 0 && r.poison_hit == 0;
    results.push_back(r);
  }
  return results;
}

// ---- Performance ------------------------------------------------------------------------
struct PerfShape {
  bool bf16;
  int D, B, H, S;
  Hooks hooks; // Noop: no block mask; Causal / Softcap: causal block mask
};

struct PerfBufs {
  DevBuf dq, dk, dv, dout, dlse;
  FlexjitAttentionParams p{};
  HostBlockMask hm;
  std::unique_ptr<DevMask> dm;
  double density = 1.0;
  PerfBufs(const PerfShape& sh)
      : dq(size_t(sh.B) * sh.H * sh.S * sh.D * 2), dk(dq.bytes), dv(dq.bytes), dout(dq.bytes),
        dlse(size_t(sh.B) * sh.H * sh.S * 4) {
    const size_t n = size_t(sh.B) * sh.H * sh.S * sh.D;
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<uint16_t> table(1 << 16);
    for (auto& x : table)
      x = to_bits(nd(rng), sh.bf16);
    uint32_t st = 12345;
    std::vector<uint16_t> h(n);
    for (DevBuf* d : {&dq, &dk, &dv}) { // three different random tensors
      for (auto& x : h) {
        st = st * 1664525u + 1013904223u;
        x = table[st >> 16];
      }
      d->upload(h);
    }
    p.q = reinterpret_cast<const void*>(dq.p);
    p.k = reinterpret_cast<const void*>(dk.p);
    p.v = reinterpret_cast<const void*>(dv.p);
    p.out = reinterpret_cast<void*>(dout.p);
    p.lse = reinterpret_cast<float*>(dlse.p);
    const int64_t sb = int64_t(sh.H) * sh.S * sh.D, shh = int64_t(sh.S) * sh.D;
    p.q_stride_b = p.k_stride_b = p.v_stride_b = p.out_stride_b = sb;
    p.q_stride_h = p.k_stride_h = p.v_stride_h = p.out_stride_h = shh;
    p.q_stride_s = p.k_stride_s = p.v_stride_s = p.out_stride_s = sh.D;
    p.lse_stride_b = int64_t(sh.H) * sh.S;
    p.lse_stride_h = sh.S;
    p.B = sh.B, p.Hq = sh.H, p.Hkv = sh.H, p.q_len = sh.S, p.kv_len = sh.S;
    p.scale = 1.f / std::sqrt(float(sh.D));
    const bool causal = sh.hooks != Hooks::Noop;
    hm = causal
             ? build_block_mask([](int, int, int q, int kv) { return q >= kv; }, 1, 1, sh.S, sh.S)
             : build_block_mask(nullptr, 1, 1, 1, 1);
    dm = std::make_unique<DevMask>(hm);
    if (causal) {
      dm->fill(p, hm);
      density = hm.density;
    }
  }
};

// Median ms of `reps` timed launches after 2 warm-up launches.
double time_kernel(const Kernels& k, const PerfShape& sh, PerfBufs& pb, int reps) {
  FlexjitModArgs args{};
  CUevent e0, e1;
  CHECK_CU(cuEventCreate(&e0, CU_EVENT_DEFAULT));
  CHECK_CU(cuEventCreate(&e1, CU_EVENT_DEFAULT));
  for (int i = 0; i < 2; ++i)
    launch(k, sh.bf16, pb.p, args, sh.D);
  CHECK_CU(cuCtxSynchronize());
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    CHECK_CU(cuEventRecord(e0, nullptr));
    launch(k, sh.bf16, pb.p, args, sh.D);
    CHECK_CU(cuEventRecord(e1, nullptr));
    CHECK_CU(cuEventSynchronize(e1));
    float t = 0;
    CHECK_CU(cuEventElapsedTime(&t, e0, e1));
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  cuEventDestroy(e0);
  cuEventDestroy(e1);
  return ms[ms.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  bool perf = true, check = true;
  int reps = 10;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--no-perf"))
      perf = false;
    else if (!std::strcmp(argv[i], "--no-check"))
      check = false;
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = std::atoi(argv[++i]);
  }
  CHECK_CU(cuInit(0));
  CUdevice dev;
  CHECK_CU(cuDeviceGet(&dev, 0));
  char name[256];
  CHECK_CU(cuDeviceGetName(name, sizeof name, dev));
  int major = 0, minor = 0;
  CHECK_CU(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
  CHECK_CU(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
  CUcontext ctx;
  CHECK_CU(cuDevicePrimaryCtxRetain(&ctx, dev));
  CHECK_CU(cuCtxSetCurrent(ctx));
  int driver = 0;
  cuDriverGetVersion(&driver);
  std::printf("device: %s (sm_%d%d), driver %d\n", name, major, minor, driver);
  const std::string arch = major == 9 ? "sm_90a" : "sm_80";
  const std::string dir = exe_dir();

  std::vector<Variant> variants;
  {
    std::ifstream vin(dir + "/variants." + arch + ".txt");
    Variant v;
    int warps = 0;
    while (vin >> v.tag >> warps >> v.n64 >> v.n128 >> v.st64 >> v.st128) {
      v.threads = 32 * warps;
      variants.push_back(v);
    }
    if (variants.empty()) {
      std::fprintf(stderr, "no variants in %s/variants.%s.txt\n", dir.c_str(), arch.c_str());
      return 2;
    }
  }
  std::vector<std::vector<Kernels>> mods;
  const char* hook_names[kNumHooks] = {"noop", "causal", "bias", "softcap"};
  for (const Variant& v : variants) {
    mods.emplace_back();
    for (int i = 0; i < kNumHooks; ++i) {
      mods.back().push_back(
          load_module(dir + "/fwd_" + hook_names[i] + "." + v.tag + "." + arch + ".ptx", v));
      for (int b = 0; b < 2; ++b)
        for (int d = 0; d < 2; ++d) {
          int regs = 0, local = 0;
          CHECK_CU(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, mods.back()[i].f[b][d]));
          CHECK_CU(cuFuncGetAttribute(&local, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES,
                                      mods.back()[i].f[b][d]));
          if (b == 0 || local)
            std::printf(
                "kernel %-5s %-8s %-4s d%-3d regs %3d local %3d B  smem %6d B  threads %d\n",
                v.tag.c_str(), hook_names[i], b ? "bf16" : "f16", d ? 128 : 64, regs, local,
                v.smem(d ? 128 : 64), v.threads);
        }
    }
  }

  std::vector<int> failed(variants.size(), 0), passed(variants.size(), 0);
  if (check) {
    const Case cases[] = {
        // name             hooks         mask bshd  bcast offs slope  q    kv  lse
        {"noop", Hooks::Noop, 0, false, true, 0, 0.f, 300, 517, true},
        {"noop-fullmask", Hooks::Noop, 1, true, true, 0, 0.f, 300, 517, false},
        {"causal", Hooks::Causal, 2, false, true, 0, 0.f, 300, 517, true},
        {"causal-off-200", Hooks::Causal, 2, true, false, -200, 0.f, 300, 517, true},
        {"causal-q>kv", Hooks::Causal, 2, false, true, 0, 0.f, 517, 300, true},
        {"bias+causal", Hooks::Bias, 2, false, true, 0, 0.05f, 300, 517, true},
        {"bias-nomask", Hooks::Bias, 0, true, true, 1 << 20, 0.05f, 300, 517, true},
        {"causal-small", Hooks::Causal, 2, false, true, 3, 0.f, 37, 45, true},
        {"noop-kv0", Hooks::Noop, 0, false, true, 0, 0.f, 37, 0, true},
        {"softcap+causal", Hooks::Softcap, 2, false, true, 0, 0.f, 300, 517, true},
    };
    std::printf("%-15s %-4s %-4s %-5s %10s %10s %4s %6s %6s %6s  %s\n", "case", "type", "D", "var",
                "out_err", "lse_err", "nan", "empty", "bad0", "oob", "result");
    for (const Case& c : cases)
      for (int bf = 0; bf < 2; ++bf)
        for (int D : {64, 128}) {
          const std::vector<Result> rs = run_case(mods, c, bf, D);
          for (size_t v = 0; v < rs.size(); ++v) {
            const Result& r = rs[v];
            std::printf("%-15s %-4s %-4d %-5s %10.2e %10.2e %4ld %6ld %6ld %6ld  %s\n", c.name,
                        bf ? "bf16" : "f16", D, variants[v].tag.c_str(), r.out_err, r.lse_err,
                        r.nan, r.empty_rows, r.bad_empty, r.poison_hit, r.ok ? "ok" : "FAIL");
            (r.ok ? passed[v] : failed[v])++;
          }
        }
  }
  std::string table;
  if (perf) {
    const PerfShape shapes[] = {
        {false, 64, 16, 16, 8192, Hooks::Noop},    {false, 64, 16, 16, 8192, Hooks::Causal},
        {true, 128, 4, 16, 8192, Hooks::Noop},     {true, 128, 4, 16, 8192, Hooks::Causal},
        {false, 64, 16, 16, 8192, Hooks::Softcap}, {true, 128, 4, 16, 8192, Hooks::Softcap},
    };
    // torch FlexAttention on an H100 (../shared/ANCHORS.md), ms
    const double torch_ms[] = {10.59, 5.72, 4.49, 2.64, 19.82, 5.47};
    char line[512];
    std::snprintf(line, sizeof line, "%-28s %-5s %9s %9s %7s %7s\n", "shape", "var", "ms(1)",
                  "ms(2)", "TF/s", "xtorch");
    table += line;
    for (int si = 0; si < 6; ++si) {
      const PerfShape& sh = shapes[si];
      PerfBufs pb(sh);
      std::vector<double> t1(variants.size()), t2(variants.size());
      for (int pass = 0; pass < 2; ++pass) // two interleaved passes: the spread is the noise
        for (size_t v = 0; v < variants.size(); ++v)
          (pass ? t2 : t1)[v] = time_kernel(mods[v][static_cast<int>(sh.hooks)], sh, pb, reps);
      for (size_t v = 0; v < variants.size(); ++v) {
        const double med = std::min(t1[v], t2[v]);
        const double tf =
            4.0 * pb.density * sh.B * sh.H * double(sh.S) * sh.S * sh.D / (med * 1e-3) / 1e12;
        char desc[64];
        std::snprintf(desc, sizeof desc, "%s d%d %s %.3f", sh.bf16 ? "bf16" : "f16", sh.D,
                      hook_names[static_cast<int>(sh.hooks)], pb.density);
        std::snprintf(line, sizeof line, "%-28s %-5s %9.3f %9.3f %7.1f %7.2f%s\n", desc,
                      variants[v].tag.c_str(), t1[v], t2[v], tf, torch_ms[si] / med,
                      failed[v] ? "  (FAILED CHECKS)" : "");
        table += line;
      }
    }
  }
  std::printf("\n%s", table.c_str());
  int any_failed = 0;
  if (check)
    for (size_t v = 0; v < variants.size(); ++v) {
      std::printf("variant %-5s: %d passed, %d failed\n", variants[v].tag.c_str(), passed[v],
                  failed[v]);
      any_failed += failed[v];
    }
  return any_failed ? 1 : 0;
}
