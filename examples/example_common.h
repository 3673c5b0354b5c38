// The reporting every example shares: the block mask's picture and build
// time, the mods' canonical text, each kernel template compiled to PTX for
// sm_90a with its stats, and a note that GPU execution is skipped.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <random>
#include <string>

#include <flexjit/flexjit.h>

#include "flexjit/compiler/Interpreter.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/HalfFloat.h"

namespace flexjit::examples {

struct Shape {
  int B = 1, H = 1, q_len = 8192, kv_len = 8192;
};

// The templates compiled here (attention: f16, head dim 64).
inline const TemplateKind kExampleTemplates[] = {
    TemplateKind::BlockClassify, TemplateKind::CreateMask, TemplateKind::AttentionForward};

inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// flex_attention on the GPU: bf16, head dim 128, 8 heads (the block mask
// broadcasts), random inputs; error against the float64 reference on 64
// random rows; time by CUDA events.
inline void run_on_gpu(const MaskMod& mask, const ScoreMod& score, const Shape& shape,
                       const BlockMask& bm, const Bindings& host_bindings) {
  const int B = shape.B, H = std::max(shape.H, 8), D = 128;
  const DType dtype = DType::BF16;
  testing::AttentionInputs in{B, H, H, shape.q_len, shape.kv_len, D, {}, {}, {}};
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto make = [&](int S, std::vector<float>& logical) {
    std::vector<uint16_t> bits(static_cast<size_t>(B) * H * S * D);
    logical.resize(bits.size());
    for (size_t i = 0; i < bits.size(); ++i) {
      bits[i] = testing::to_half_bits(normal(rng), dtype);
      logical[i] = testing::from_half_bits(bits[i], dtype);
    }
    DeviceBuffer buf(bits.size() * 2);
    buf.upload(bits.data(), bits.size() * 2);
    return buf;
  };
  const DeviceBuffer q = make(shape.q_len, in.q), k = make(shape.kv_len, in.k),
                     v = make(shape.kv_len, in.v);
  DeviceBuffer out(static_cast<size_t>(B) * H * shape.q_len * D * 2);
  out.fill(0xff); // NaN
  const DeviceBindings device = to_device({mask.body(), score.body()}, host_bindings);
  FlexAttentionOptions o;
  o.score_mod = score;
  o.block_mask = &bm;
  o.bindings = device.bindings;
  const TensorView qv = q.view(dtype, {B, H, shape.q_len, D});
  const TensorView kv = k.view(dtype, {B, H, shape.kv_len, D});
  const TensorView vv = v.view(dtype, {B, H, shape.kv_len, D});
  const TensorView ov = out.view(dtype, {B, H, shape.q_len, D});
  const auto start = std::chrono::steady_clock::now();
  flex_attention(qv, kv, vv, ov, o);
  Stream{}.synchronize();
  const double first_ms = ms_since(start);
  const double ms = time_on_stream(Stream{}, [&] { flex_attention(qv, kv, vv, ov, o); });

  std::vector<int64_t> rows;
  std::uniform_int_distribution<int64_t> any(0, int64_t{B} * H * shape.q_len - 1);
  for (int i = 0; i < 64; ++i)
    rows.push_back(any(rng));
  const testing::AttentionRows ref = testing::attention_reference(
      in, mask, score, 1.0 / std::sqrt(static_cast<double>(D)), host_bindings, rows);
  std::vector<uint16_t> got_bits(static_cast<size_t>(B) * H * shape.q_len * D);
  out.download(got_bits.data(), got_bits.size() * 2);
  std::vector<double> got;
  for (int64_t r : rows)
    for (int d = 0; d < D; ++d)
      got.push_back(testing::from_half_bits(got_bits[static_cast<size_t>(r) * D + d], dtype));
  const double flops = 4.0 * B * H * shape.q_len * static_cast<double>(shape.kv_len) * D *
                       (1.0 - bm.sparsity() / 100.0);
  std::printf("GPU flex_attention bf16 [%d, %d, %d, %d] x kv %d: first call %.1f ms (JIT or "
              "cache), then %.3f ms per call (%.1f TFLOP/s on unmasked tiles); error vs float64 "
              "reference on 64 rows: %.2e\n\n",
              B, H, shape.q_len, D, shape.kv_len, first_ms, ms, flops / ms / 1e9,
              testing::relative_error(got, ref.out));
}

inline void report(const std::string& title, const MaskMod& mask, const ScoreMod& score,
                   const Shape& shape, const BlockMaskOptions& options = {}) {
  std::printf("=== %s ===\n", title.c_str());
  std::printf("mask_mod '%s':  %s\n", mask.name().c_str(), print(optimize(mask.body())).c_str());
  std::printf("score_mod '%s': %s\n\n", score.name().c_str(),
              print(optimize(score.body())).c_str());

  const auto start = std::chrono::steady_clock::now();
  const BlockMask bm =
      create_block_mask(mask, shape.B, shape.H, shape.q_len, shape.kv_len, options);
  std::printf("create_block_mask (CPU): %.2f ms\n%s\n\n", ms_since(start), bm.to_string().c_str());

  for (TemplateKind kind : kExampleTemplates) {
    const CompiledKernel kernel = compile_to_ptx({kind, Arch::SM90a, mask, score});
    const CompileTimes& t = kernel.times;
    std::printf("kernel %-14s sm_90a  entry %s\n", std::string(to_string(kind)).c_str(),
                kernel.entry.c_str());
    std::printf("  PTX %zu bytes; compile %.1f ms (lower %.1f, link %.1f, optimize %.1f, "
                "codegen %.1f)\n",
                kernel.ptx.size(), t.total_ms, t.lower_ms, t.link_ms, t.optimize_ms, t.codegen_ms);
    std::printf("  cache key %s\n", kernel.key.c_str());
  }
  if (!cuda_available()) {
    std::printf("GPU execution skipped: no CUDA device (%s)\n\n",
                cuda_unavailable_reason().c_str());
    return;
  }
  run_on_gpu(mask, score, shape, bm, options.bindings);
}

inline void report(const std::string& title, const MaskMod& mask, const ScoreMod& score, int S) {
  report(title, mask, score, Shape{1, 1, S, S});
}

// Prints score_mod(score, b, h, q, kv) at a few points through the CPU
// interpreter, to show what a score mod does before the GPU runs it.
inline void print_scores(const ScoreMod& score, float s, int h, std::initializer_list<int> qs,
                         std::initializer_list<int> kvs) {
  const Program program(optimize(score.body()));
  std::printf("score_mod(score=%g, b=0, h=%d, q, kv):\n      ", s, h);
  for (int kv : kvs)
    std::printf(" kv=%-7d", kv);
  std::printf("\n");
  for (int q : qs) {
    std::printf("q=%-4d", q);
    for (int kv : kvs)
      std::printf(" %-10.4g", program.eval(Point{0, h, q, kv, s}).f);
    std::printf("\n");
  }
  std::printf("\n");
}

// Runs an example's body, turning any error into a message and exit status 1.
template <class F> int run(F&& body) {
  try {
    body();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

} // namespace flexjit::examples
