// The forward bench of ../shared/ANCHORS.md: the 16 cases (B=16 H=16 S=8192
// D=64 f16 and B=4 H=16 S=8192 D=128 bf16, eight variants each) timed by CUDA
// events (median of 30 after warm-up), TFLOP/s by the seed's formula
// (4 * density * B*H*S^2*D / t), error against a float64 reference on random
// rows, and the JIT columns: cold first call (DSL -> PTX -> cubin -> loaded,
// in a fresh cache directory), disk-cache hit, in-memory hit (host time of a
// launch), block-mask build on the CPU and on the GPU.
// Usage: flexjit_attention_bench [--json FILE] [--quick] [--case NAME]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <flexjit/flexjit.h>

#include "examples/seed_mods.h"
#include "tests/AttentionReference.h"
#include "tests/HalfFloat.h"

using namespace flexjit;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// A JSON number, or null for NaN (no block mask for noop).
std::string json_number(double v, int digits) {
  return std::isnan(v) ? std::string("null") : fmt::format("{:.{}f}", v, digits);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : v[v.size() / 2];
}

struct Case {
  std::string name;
  MaskMod mask;
  ScoreMod score;
  bool has_mask;
};

// The anchor script's document ids: 4 documents at [0, S/2, 5S/8, 3S/4, S).
std::vector<int32_t> anchor_document_ids(int S) {
  std::vector<int32_t> ids(static_cast<size_t>(S));
  const int bounds[] = {0, S / 2, S / 2 + S / 8, S / 2 + S / 4, S};
  for (int d = 0; d < 4; ++d)
    for (int i = bounds[d]; i < bounds[d + 1]; ++i)
      ids[i] = d;
  return ids;
}

// Tensor bits (f16/bf16) from a cheap uniform generator with unit variance,
// plus the rounded values as floats for the reference.
DeviceBuffer random_tensor(size_t n, DType dtype, uint64_t seed, std::vector<float>& logical) {
  std::vector<uint16_t> bits(n);
  logical.resize(n);
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const float u = static_cast<float>(x >> 40) / static_cast<float>(1 << 24); // [0, 1)
    bits[i] = testing::to_half_bits((u * 2.0f - 1.0f) * 1.7320508f, dtype);
    logical[i] = testing::from_half_bits(bits[i], dtype);
  }
  DeviceBuffer buf(n * 2);
  buf.upload(bits.data(), n * 2);
  return buf;
}

} // namespace

int main(int argc, char** argv) {
  std::string json_path;
  bool quick = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json" && i + 1 < argc)
      json_path = argv[++i];
    else if (a == "--quick")
      quick = true;
    else if (a == "--case" && i + 1 < argc)
      only = argv[++i];
  }
  if (!cuda_available()) {
    std::printf("flexjit_attention_bench: no CUDA device (%s); nothing to time.\n",
                cuda_unavailable_reason().c_str());
    return 0;
  }
  // A fresh cache directory, so the first call of each case is a true cold compile.
  char dir_template[] = "/tmp/flexjit_bench_cache_XXXXXX";
  const char* cache_dir = mkdtemp(dir_template);
  if (cache_dir)
    setenv("FLEXJIT_CACHE_DIR", cache_dir, 1);
  std::FILE* json = json_path.empty() ? nullptr : std::fopen(json_path.c_str(), "w");

  struct Shape {
    int B, H, S, D;
    DType dtype;
  };
  const Shape shapes[] = {{16, 16, 8192, 64, DType::F16}, {4, 16, 8192, 128, DType::BF16}};
  std::printf("%-6s %-15s %7s %9s %8s %9s %9s %9s %9s %9s %9s\n", "dtype", "case", "density",
              "fwd ms", "TF/s", "rel err", "cold ms", "disk ms", "mem us", "bm cpu ms",
              "bm gpu ms");
  for (const Shape& sh : shapes) {
    const int S = sh.S;
    const std::vector<int32_t> doc_host = anchor_document_ids(S);
    DeviceBuffer doc_dev(doc_host.size() * 4);
    doc_dev.upload(doc_host.data(), doc_host.size() * 4);
    const MaskMod causal = seeds::causal();
    std::vector<Case> cases = {
        {"noop", MaskMod(), ScoreMod(), false},
        {"causal", causal, ScoreMod(), true},
        {"sliding_window", seeds::sliding_window(1024), ScoreMod(), true},
        {"prefix_lm", seeds::prefix_lm(2048), ScoreMod(), true},
        {"document", seeds::document(doc_host), ScoreMod(), true},
        {"natten", seeds::natten(128, S / 128, 7, 7), ScoreMod(), true},
        {"alibi_causal", causal, seeds::alibi(sh.H), true},
        {"softcap_causal", causal, seeds::soft_cap(30.0f, true), true},
    };
    if (quick)
      cases.resize(2);
    if (!only.empty())
      std::erase_if(cases, [&](const Case& c) { return c.name != only; });

    testing::AttentionInputs in{sh.B, sh.H, sh.H, S, S, sh.D, {}, {}, {}};
    const size_t n = static_cast<size_t>(sh.B) * sh.H * S * sh.D;
    const DeviceBuffer q = random_tensor(n, sh.dtype, 1, in.q);
    const DeviceBuffer k = random_tensor(n, sh.dtype, 2, in.k);
    const DeviceBuffer v = random_tensor(n, sh.dtype, 3, in.v);
    DeviceBuffer out(n * 2);
    DeviceBuffer lse(static_cast<size_t>(sh.B) * sh.H * S * 4);
    const TensorView qv = q.view(sh.dtype, {sh.B, sh.H, S, sh.D});
    const TensorView kv = k.view(sh.dtype, {sh.B, sh.H, S, sh.D});
    const TensorView vv = v.view(sh.dtype, {sh.B, sh.H, S, sh.D});
    const TensorView ov = out.view(sh.dtype, {sh.B, sh.H, S, sh.D});
    const TensorView lv = lse.view(DType::F32, {sh.B, sh.H, S});

    for (const Case& c : cases) {
      Bindings device_bindings;
      device_bindings.buffers["document_id"] = doc_dev.view(DType::I32, {S});
      // Block masks: CPU (host data) and GPU (device data), both timed.
      double bm_cpu = NAN, bm_gpu = NAN;
      BlockMask bm;
      if (c.has_mask) {
        std::vector<double> cpu, gpu;
        for (int r = 0; r < 5; ++r) {
          auto t = Clock::now();
          bm = create_block_mask(c.mask, 1, 1, S, S);
          cpu.push_back(ms_since(t));
          BlockMaskOptions o;
          o.device = Device::Cuda;
          o.bindings = device_bindings;
          t = Clock::now();
          BlockMask g = create_block_mask(c.mask, 1, 1, S, S, o);
          gpu.push_back(ms_since(t));
          if (g.kv_num_blocks != bm.kv_num_blocks || g.full_kv_indices != bm.full_kv_indices) {
            std::printf("GPU and CPU block masks differ for %s\n", c.name.c_str());
            return 1;
          }
        }
        bm_cpu = median(cpu);
        bm_gpu = median(gpu);
      }
      const double density = c.has_mask ? 1.0 - bm.sparsity() / 100.0 : 1.0;
      FlexAttentionOptions o;
      o.score_mod = c.score;
      o.block_mask = c.has_mask ? &bm : nullptr;
      o.lse = &lv;
      o.bindings = device_bindings;
      auto call = [&] { flex_attention(qv, kv, vv, ov, o); };

      out.fill(0xff); // NaN: every element must be written
      auto t = Clock::now();
      call();
      Stream{}.synchronize();
      const double cold = ms_since(t);
      clear_kernel_memory_cache();
      t = Clock::now();
      call();
      Stream{}.synchronize();
      const double disk = ms_since(t);
      std::vector<double> host_us;
      for (int r = 0; r < 50; ++r) {
        t = Clock::now();
        call();
        host_us.push_back(ms_since(t) * 1000.0);
      }
      Stream{}.synchronize();
      std::vector<double> times;
      for (int r = 0; r < (quick ? 5 : 30); ++r)
        times.push_back(time_on_stream(Stream{}, call, 1));
      const double ms = median(times);
      const double tflops = 4.0 * density * sh.B * sh.H * double(S) * S * sh.D / ms / 1e9;

      // Correctness on 24 random rows against float64 (host document ids).
      std::mt19937_64 rng(7);
      std::uniform_int_distribution<int64_t> any(0, int64_t{sh.B} * sh.H * S - 1);
      std::vector<int64_t> rows;
      for (int i = 0; i < 24; ++i)
        rows.push_back(any(rng));
      const testing::AttentionRows ref = testing::attention_reference(
          in, c.mask, c.score, 1.0 / std::sqrt(double(sh.D)), {}, rows);
      std::vector<uint16_t> row_bits(static_cast<size_t>(sh.D));
      std::vector<double> got;
      for (int64_t r : rows) {
        out.download(row_bits.data(), row_bits.size() * 2, static_cast<size_t>(r) * sh.D * 2);
        for (uint16_t b : row_bits)
          got.push_back(testing::from_half_bits(b, sh.dtype));
      }
      const double err = testing::relative_error(got, ref.out);
      const char* dt = sh.dtype == DType::F16 ? "f16" : "bf16";
      std::printf("%-6s %-15s %7.3f %9.3f %8.1f %9.2e %9.1f %9.2f %9.1f %9.3f %9.3f\n", dt,
                  c.name.c_str(), density, ms, tflops, err, cold, disk, median(host_us), bm_cpu,
                  bm_gpu);
      std::fflush(stdout);
      if (json)
        std::fprintf(json,
                     "{\"case\":\"%s\",\"B\":%d,\"H\":%d,\"S\":%d,\"D\":%d,\"dtype\":\"%s\","
                     "\"density\":%.4f,\"fwd_ms\":%.4f,\"fwd_tflops\":%.1f,\"rel_err\":%.3e,"
                     "\"cold_first_call_ms\":%.1f,\"disk_hit_ms\":%.2f,\"memory_hit_us\":%.1f,"
                     "\"block_mask_cpu_ms\":%s,\"block_mask_gpu_ms\":%s}\n",
                     c.name.c_str(), sh.B, sh.H, S, sh.D, dt, density, ms, tflops, err, cold, disk,
                     median(host_us), json_number(bm_cpu, 3).c_str(),
                     json_number(bm_gpu, 3).c_str());
    }
  }
  if (json)
    std::fclose(json);
  return 0;
}
