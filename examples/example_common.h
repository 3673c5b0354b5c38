// The reporting every example shares: the block mask's picture and build
// time, the mods' canonical text, each kernel template compiled to PTX for
// sm_90a with its stats, and a note that GPU execution is skipped.
#pragma once

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

#include <flexjit/flexjit.h>

namespace flexjit::examples {

struct Shape {
  int B = 1, H = 1, q_len = 8192, kv_len = 8192;
};

// The templates compiled here; the attention template joins them when it lands.
inline const TemplateKind kExampleTemplates[] = {TemplateKind::BlockClassify,
                                                 TemplateKind::CreateMask};

inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
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
  std::printf("GPU execution skipped: no CUDA device (or runtime not built)\n\n");
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
