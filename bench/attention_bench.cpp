// The forward bench of ../shared/ANCHORS.md and of seed 003's test_mask table:
// the 16 cases (B=16 H=16 S=8192 D=64 f16 and B=4 H=16 S=8192 D=128 bf16,
// eight variants each), or any --S/--B, each run three ways:
//
//   sparse: flexjit's block-sparse kernel (mask_mod + BlockMask; empty tiles
//           skipped, full tiles unmasked);
//   dense:  "dense SDPA": no block mask, the mask materialized as a [Q, KV]
//           bool tensor (create_mask on the GPU) that a score_mod reads per
//           element, -inf where false: every tile computed, O(S^2) memory;
//   score:  score_mod-only: no block mask, the mask written into the score_mod
//           as where(mask_mod(b, h, q, kv), score, -inf): every tile computed.
//
// Timing: CUDA events, median of --reps (30) single-launch timings after a
// cold call, a disk-hit call and 50 launches (the warm-up). Inputs are not
// rotated: each of q, k, v, out is B*H*S*D*2 bytes = 268 MB (D=64) / 134 MB
// (D=128) at the default B (B*S kept at 16*8192 resp. 4*8192 when --S changes),
// far over the H100's 50 MB L2, so no launch finds its inputs in L2.
// TFLOP/s by the seed's formula, 4 * density * B*H*S^2*D / t, with the block
// mask's density for all three ways (the useful work: the dense and score
// ways compute the masked tiles too, which shows as lower TF/s).
// Correctness: the output on 24 random rows against a float64 reference.
// JIT columns: cold first call (in a fresh cache directory) split into DSL ->
// PTX, PTX -> cubin and module load (kernel_build_log()), disk-cache hit,
// in-memory hit (host time of a launch), block-mask build on the CPU and the GPU,
// dense-mask build (GPU create_mask, copy back, upload).
// Memory: the mask bytes each way reads: the block mask's forward index arrays
// (sparse), the [S, S] bool mask (dense), none (score).
//
// Without a CUDA device (or with --compile-only) it prints the compile-only
// columns instead: DSL -> PTX time per variant and way, CPU block mask build.
//
// Usage: flexjit_attention_bench [--json FILE] [--quick] [--case NAME[,NAME...]]
//          [--S N] [--B N] [--D 64|128] [--ways sparse,dense,score] [--reps N]
//          [--dense-max-S N] [--compile-only] [--bwd] [--schedule auto|one|persistent]
//   --schedule     the forward's tile schedule (FlexAttentionOptions::schedule; default auto)
//   --bwd          also time flex_attention_backward for the sparse way (TF/s by
//                  10 * density * B*H*S^2*D / t; gradients checked for non-finite values;
//                  their correctness is the [gpu][backward] tests')
//   --S N          sequence length (default 8192); B defaults to keep B*S as above
//   --B N          batch (overrides the default)
//   --D 64|128     only the D=64 f16 or the D=128 bf16 shape (default both)
//   --dense-max-S  the dense way is skipped above this S (default 16384: at
//                  S=32768 its mask is 1 GiB), with the reason printed
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/codegen/Variants.h"
#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/HalfFloat.h"
#include "flexjit/testing/SeedMods.h"
#include "flexjit/testing/VariantRows.h"

using namespace flexjit;

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// A JSON number, or null for NaN (no block mask for noop, a skipped way).
std::string json_number(double v, int digits) {
  return std::isnan(v) ? std::string("null") : fmt::format("{:.{}f}", v, digits);
}
std::string json_sci(double v) {
  return std::isnan(v) ? std::string("null") : fmt::format("{:.3e}", v);
}
std::string json_string(const std::string& s) {
  return s.empty() ? std::string("null") : "\"" + s + "\"";
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : v[v.size() / 2];
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string p; std::getline(in, p, ',');)
    if (!p.empty())
      parts.push_back(p);
  return parts;
}

struct Case {
  std::string name;
  MaskMod mask;
  ScoreMod score;
  bool has_mask;
};

struct Shape {
  int B, H, S, D, Dv; // q, k of head dim D; v, out of Dv
  DType dtype;
  std::string dims() const { return D == Dv ? std::to_string(D) : fmt::format("{}/{}", D, Dv); }
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

// The eight variants of the anchor script at length S (doc_ids must outlive them).
std::vector<Case> anchor_cases(const Shape& sh, const std::vector<int32_t>& doc_ids) {
  const MaskMod causal = seeds::causal();
  return {
      {"noop", MaskMod(), ScoreMod(), false},
      {"causal", causal, ScoreMod(), true},
      {"sliding_window", seeds::sliding_window(1024), ScoreMod(), true},
      {"prefix_lm", seeds::prefix_lm(2048), ScoreMod(), true},
      {"document", seeds::document(doc_ids), ScoreMod(), true},
      {"natten", seeds::natten(128, sh.S / 128, 7, 7), ScoreMod(), true},
      {"alibi_causal", causal, seeds::alibi(sh.H), true},
      {"softcap_causal", causal, seeds::soft_cap(30.0f, true), true},
  };
}

// The three ways of running one case.
enum Way { Sparse, Dense, ScoreOnly, kNumWays };
const char* const kWayNames[kNumWays] = {"sparse", "dense", "score"};
const char* const kWayPrefix[kNumWays] = {"", "dense_", "scoreonly_"};

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// score_mod-only: where(mask_mod(b, h, q, kv), score_mod(...), -inf).
ScoreMod score_only_mod(const Case& c) {
  return ScoreMod(c.name + "_as_score", where(c.mask.body(), c.score.body(), kNegInf));
}

// Dense: where(dense_mask(q, kv), score_mod(...), -inf), the mask a [Q, KV] bool buffer.
BoolBuffer dense_mask_buffer() {
  return BoolBuffer("dense_mask", DType::Bool, 2);
}
ScoreMod dense_mod(const Case& c, const BoolBuffer& mask) {
  return ScoreMod(c.score.name() + "_dense_mask",
                  where(mask(var_q(), var_kv()), c.score.body(), kNegInf));
}

// The (mask, score) a way compiles into the attention kernel.
KernelSpec way_spec(Way w, const Case& c, const Shape& sh, const BoolBuffer& dense) {
  KernelSpec spec{TemplateKind::AttentionForward, Arch::SM90a, MaskMod(), c.score};
  if (w == Sparse)
    spec.mask = c.mask;
  else if (w == Dense)
    spec.score = dense_mod(c, dense);
  else
    spec.score = score_only_mod(c);
  spec.dtype = sh.dtype;
  spec.head_dim = sh.D;
  spec.head_dim_v = sh.Dv;
  return spec;
}

const char* dtype_name(DType d) {
  return d == DType::F16 ? "f16" : "bf16";
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

struct Options {
  std::string json_path;
  bool quick = false;
  bool compile_only = false;
  std::vector<std::string> only;
  int S = 8192, B = 0, D = 0;
  bool head_dims = false; // the head-dim shapes instead of the ANCHORS ones
  bool ways[kNumWays] = {true, true, true};
  int reps = 30;
  int dense_max_S = 16384;
  bool bwd = false; // also time flex_attention_backward (sparse way)
  FlexAttentionOptions::Schedule schedule = FlexAttentionOptions::Schedule::Auto;
};

bool selected(const Options& opt, const std::string& name) {
  return opt.only.empty() || std::find(opt.only.begin(), opt.only.end(), name) != opt.only.end();
}

// The ANCHORS shapes at length S (B keeps B*S at the anchors' 16*8192 / 4*8192 unless
// given), or with --head-dims bf16 at every (q/k, v) head-dim pair of the forward, B*S at
// 4*8192, H 16.
std::vector<Shape> shapes_for(const Options& opt) {
  std::vector<Shape> shapes;
  std::vector<Shape> base = {{16, 16, 8192, 64, 64, DType::F16},
                             {4, 16, 8192, 128, 128, DType::BF16}};
  if (opt.head_dims) { // the variant table's forward pairs, in the order it lists them
    base.clear();
    for (const KernelVariant* v : testing::forward_rows_per_head_dims(
             [](const KernelVariant& r) { return r.dtype == DType::BF16; }))
      base.push_back({4, 16, 8192, v->dqk, v->dv, DType::BF16});
  }
  for (Shape sh : base) {
    if (opt.D != 0 && opt.D != sh.D)
      continue;
    const int64_t tokens = int64_t{sh.B} * sh.S;
    sh.S = opt.S;
    sh.B = opt.B > 0 ? opt.B : static_cast<int>(std::max<int64_t>(1, tokens / opt.S));
    shapes.push_back(sh);
  }
  return shapes;
}

// No device: what can be measured without one. DSL -> PTX per variant and way
// (the kernel the GPU would compile first, for sm_90a) and the CPU block mask.
int compile_only(const Options& opt) {
  std::FILE* json = opt.json_path.empty() ? nullptr : std::fopen(opt.json_path.c_str(), "w");
  const BoolBuffer dense = dense_mask_buffer();
  auto t = Clock::now();
  compile_to_ptx({TemplateKind::BlockClassify, Arch::SM90a, seeds::causal(), ScoreMod()});
  std::printf("compile-only columns (DSL -> PTX for sm_90a, ms; the first compile in the process, "
              "LLVM's one-time setup included: %.1f ms)\n",
              ms_since(t));
  std::printf("%-5s %-7s %6s %3s %-15s %7s %10s %9s %9s %9s %8s %7s %7s %7s\n", "dtype", "D", "S",
              "B", "case", "density", "bm cpu ms", "sparse", "dense", "score", "lower", "link",
              "opt", "codegen");
  for (const Shape& sh : shapes_for(opt)) {
    const std::vector<int32_t> doc_ids = anchor_document_ids(sh.S);
    std::vector<Case> cases = anchor_cases(sh, doc_ids);
    if (opt.quick)
      cases.resize(2);
    for (const Case& c : cases) {
      if (!selected(opt, c.name))
        continue;
      double bm_cpu = NAN, density = 1.0;
      if (c.has_mask) {
        t = Clock::now();
        const BlockMask bm = create_block_mask(c.mask, 1, 1, sh.S, sh.S);
        bm_cpu = ms_since(t);
        density = 1.0 - bm.sparsity() / 100.0;
      }
      CompileTimes times[kNumWays];
      for (int w = 0; w < kNumWays; ++w)
        if (opt.ways[w])
          times[w] = compile_to_ptx(way_spec(static_cast<Way>(w), c, sh, dense)).times;
      auto total = [&](int w) { return opt.ways[w] ? times[w].total_ms : NAN; };
      const CompileTimes& s = times[Sparse];
      std::printf("%-5s %-7s %6d %3d %-15s %7.3f %10.3f %9.1f %9.1f %9.1f %8.1f %7.1f %7.1f "
                  "%7.1f\n",
                  dtype_name(sh.dtype), sh.dims().c_str(), sh.S, sh.B, c.name.c_str(), density,
                  bm_cpu, total(Sparse), total(Dense), total(ScoreOnly), s.lower_ms, s.link_ms,
                  s.optimize_ms, s.codegen_ms);
      std::fflush(stdout);
      if (json)
        std::fprintf(
            json,
            "{\"case\":\"%s\",\"B\":%d,\"H\":%d,\"S\":%d,\"D\":%d,\"Dv\":%d,"
            "\"dtype\":\"%s\",\"compile_only\":true,\"density\":%.4f,\"block_mask_cpu_ms\":%s,"
            "\"dsl_to_ptx_ms\":%s,\"dense_dsl_to_ptx_ms\":%s,"
            "\"scoreonly_dsl_to_ptx_ms\":%s}\n",
            c.name.c_str(), sh.B, sh.H, sh.S, sh.D, sh.Dv, dtype_name(sh.dtype), density,
            json_number(bm_cpu, 3).c_str(), json_number(total(Sparse), 1).c_str(),
            json_number(total(Dense), 1).c_str(), json_number(total(ScoreOnly), 1).c_str());
    }
  }
  std::printf("(sparse: mask_mod in the block-sparse kernel; dense: a score_mod reading a [Q,KV] "
              "bool mask, one kernel for every mask; score: the mask as a score_mod; "
              "lower/link/opt/codegen: the sparse kernel's phases)\n");
  if (json)
    std::fclose(json);
  return 0;
}

struct WayResult {
  bool ran = false;
  std::string skipped; // why the way did not run
  double ms = NAN, tflops = NAN, err = NAN;
  double cold_ms = NAN, disk_ms = NAN, mem_us = NAN;
  std::string cold_source; // "compile", "disk" or "memory": what the cold call found
  double dsl_to_ptx_ms = NAN, ptx_to_cubin_ms = NAN, load_ms = NAN;
  double mask_bytes = 0, mask_build_ms = NAN;
  // Backward (--bwd; the sparse way): median time, TF/s by 10 * density * B*H*S^2*D / t,
  // the first call (compile included) and non-finite gradient elements.
  double bwd_ms = NAN, bwd_tflops = NAN, bwd_cold_ms = NAN;
  long bwd_nonfinite = -1;
};

// What the cache did during the calls since `log_size` entries: the last build, if any.
void note_build(size_t log_size, WayResult& r) {
  const std::vector<KernelBuildTimes> log = kernel_build_log();
  if (log.size() <= log_size) {
    r.cold_source = "memory";
    return;
  }
  const KernelBuildTimes& b = log.back();
  r.cold_source = b.from_disk ? "disk" : "compile";
  r.dsl_to_ptx_ms = b.from_disk ? NAN : b.dsl_to_ptx_ms;
  r.ptx_to_cubin_ms = b.from_disk ? NAN : b.ptx_to_cubin_ms;
  r.load_ms = b.load_ms;
}

std::string way_json(Way w, const WayResult& r) {
  const std::string p = kWayPrefix[w];
  if (!r.ran)
    return fmt::format("\"{}skipped\":{}", p, json_string(r.skipped));
  return fmt::format(
             "\"{0}fwd_ms\":{1},\"{0}fwd_tflops\":{2},\"{0}rel_err\":{3},"
             "\"{0}cold_first_call_ms\":{4},\"{0}cold_source\":\"{5}\","
             "\"{0}dsl_to_ptx_ms\":{6},\"{0}ptx_to_cubin_ms\":{7},\"{0}module_load_ms\":{8},"
             "\"{0}disk_hit_ms\":{9},\"{0}memory_hit_us\":{10},\"{0}mask_bytes\":{11:.0f},"
             "\"{0}mask_build_ms\":{12}",
             p, json_number(r.ms, 4), json_number(r.tflops, 1), json_sci(r.err),
             json_number(r.cold_ms, 1), r.cold_source, json_number(r.dsl_to_ptx_ms, 1),
             json_number(r.ptx_to_cubin_ms, 1), json_number(r.load_ms, 1),
             json_number(r.disk_ms, 2), json_number(r.mem_us, 1), r.mask_bytes,
             json_number(r.mask_build_ms, 3)) +
         (std::isnan(r.bwd_ms)
              ? std::string()
              : fmt::format(",\"{0}bwd_ms\":{1},\"{0}bwd_tflops\":{2},"
                            "\"{0}bwd_cold_first_call_ms\":{3},\"{0}bwd_nonfinite\":{4}",
                            p, json_number(r.bwd_ms, 4), json_number(r.bwd_tflops, 1),
                            json_number(r.bwd_cold_ms, 1), r.bwd_nonfinite));
}

int parse_int(const char* s, const char* what) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || v <= 0 || v > (1 << 30)) {
    std::fprintf(stderr, "flexjit_attention_bench: bad %s '%s'\n", what, s);
    std::exit(2);
  }
  return static_cast<int>(v);
}

} // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--json" && has_value)
      opt.json_path = argv[++i];
    else if (a == "--quick")
      opt.quick = true;
    else if (a == "--compile-only")
      opt.compile_only = true;
    else if (a == "--bwd")
      opt.bwd = true;
    else if (a == "--case" && has_value)
      opt.only = split(argv[++i]);
    else if (a == "--S" && has_value)
      opt.S = parse_int(argv[++i], "--S");
    else if (a == "--B" && has_value)
      opt.B = parse_int(argv[++i], "--B");
    else if (a == "--D" && has_value)
      opt.D = parse_int(argv[++i], "--D");
    else if (a == "--head-dims")
      opt.head_dims = true;
    else if (a == "--reps" && has_value)
      opt.reps = parse_int(argv[++i], "--reps");
    else if (a == "--dense-max-S" && has_value)
      opt.dense_max_S = parse_int(argv[++i], "--dense-max-S");
    else if (a == "--schedule" && has_value) {
      const std::string v = argv[++i];
      using Schedule = FlexAttentionOptions::Schedule;
      if (v == "auto")
        opt.schedule = Schedule::Auto;
      else if (v == "one")
        opt.schedule = Schedule::OneTilePerCta;
      else if (v == "persistent")
        opt.schedule = Schedule::Persistent;
      else {
        std::fprintf(stderr,
                     "flexjit_attention_bench: --schedule %s: expected auto, one or "
                     "persistent\n",
                     v.c_str());
        return 2;
      }
    } else if (a == "--ways" && has_value) {
      std::fill(std::begin(opt.ways), std::end(opt.ways), false);
      for (const std::string& w : split(argv[++i])) {
        const auto* it = std::find_if(std::begin(kWayNames), std::end(kWayNames),
                                      [&](const char* n) { return w == n; });
        if (it == std::end(kWayNames)) {
          std::fprintf(stderr, "flexjit_attention_bench: unknown way '%s'\n", w.c_str());
          return 2;
        }
        opt.ways[it - std::begin(kWayNames)] = true;
      }
    } else {
      std::fprintf(stderr,
                   "usage: flexjit_attention_bench [--json FILE] [--quick] [--case A,B] [--S N] "
                   "[--B N] [--D N] [--head-dims] [--ways sparse,dense,score] [--reps N] "
                   "[--dense-max-S N] [--compile-only] [--bwd] [--schedule auto|one|persistent]\n");
      return 2;
    }
  }
  if (shapes_for(opt).empty()) {
    std::fprintf(stderr, "flexjit_attention_bench: no shape has --D %d (%s)\n", opt.D,
                 opt.head_dims ? head_dims_text(TemplateKind::AttentionForward, " or ").c_str()
                               : "64 or 128");
    return 2;
  }
  if (opt.S % 128 != 0) {
    std::fprintf(stderr, "flexjit_attention_bench: --S must be a multiple of 128 (natten)\n");
    return 2;
  }
  if (opt.compile_only)
    return compile_only(opt);
  if (!cuda_available()) {
    std::printf("flexjit_attention_bench: no CUDA device (%s); nothing to time.\n",
                cuda_unavailable_reason().c_str());
    return compile_only(opt);
  }
  // A fresh cache directory, so the first call of each case is a true cold compile.
  char dir_template[] = "/tmp/flexjit_bench_cache_XXXXXX";
  const char* cache_dir = mkdtemp(dir_template);
  if (cache_dir)
    setenv("FLEXJIT_CACHE_DIR", cache_dir, 1);
  std::FILE* json = opt.json_path.empty() ? nullptr : std::fopen(opt.json_path.c_str(), "w");

  std::printf("%-5s %-7s %6s %3s %-15s %-6s %7s %9s %7s %9s %9s %9s %-7s %8s %8s %7s %8s %7s\n",
              "dtype", "D", "S", "B", "case", "way", "density", "fwd ms", "TF/s", "rel err",
              "mask MB", "mask ms", "cold", "cold ms", "dsl>ptx", "ptx>cu", "disk ms", "mem us");
  const BoolBuffer dense_buffer = dense_mask_buffer();
  for (const Shape& sh : shapes_for(opt)) {
    const int S = sh.S;
    const std::vector<int32_t> doc_host = anchor_document_ids(S);
    DeviceBuffer doc_dev(doc_host.size() * 4);
    doc_dev.upload(doc_host.data(), doc_host.size() * 4);
    std::vector<Case> cases = anchor_cases(sh, doc_host);
    if (opt.quick)
      cases.resize(2);
    std::erase_if(cases, [&](const Case& c) { return !selected(opt, c.name); });
    if (cases.empty())
      continue;

    testing::AttentionInputs in{sh.B, sh.H, sh.H, S, S, sh.D, {}, {}, {}, sh.Dv};
    const size_t n = static_cast<size_t>(sh.B) * sh.H * S * sh.D;
    const size_t n_v = static_cast<size_t>(sh.B) * sh.H * S * sh.Dv;
    const DeviceBuffer q = random_tensor(n, sh.dtype, 1, in.q);
    const DeviceBuffer k = random_tensor(n, sh.dtype, 2, in.k);
    const DeviceBuffer v = random_tensor(n_v, sh.dtype, 3, in.v);
    DeviceBuffer out(n_v * 2);
    DeviceBuffer lse(static_cast<size_t>(sh.B) * sh.H * S * 4);
    const TensorView qv = q.view(sh.dtype, {sh.B, sh.H, S, sh.D});
    const TensorView kv = k.view(sh.dtype, {sh.B, sh.H, S, sh.D});
    const TensorView vv = v.view(sh.dtype, {sh.B, sh.H, S, sh.Dv});
    const TensorView ov = out.view(sh.dtype, {sh.B, sh.H, S, sh.Dv});
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
        }
        // The GPU builds apart from the CPU ones (whose worker threads would share the
        // host): one build to compile the classifier, then the median of 21.
        BlockMaskOptions o;
        o.device = Device::Cuda;
        o.bindings = device_bindings;
        for (int r = 0; r < 22; ++r) {
          const auto t = Clock::now();
          BlockMask g = create_block_mask(c.mask, 1, 1, S, S, o);
          if (r > 0)
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
      // 2 S^2 (D + Dv) per (b, h): Q K^T and P V; 4 S^2 D when Dv = D.
      const double flop = 2.0 * density * sh.B * sh.H * double(S) * S * (sh.D + sh.Dv);

      // The float64 reference on 24 random rows (host document ids), for every way.
      std::mt19937_64 rng(7);
      std::uniform_int_distribution<int64_t> any(0, int64_t{sh.B} * sh.H * S - 1);
      std::vector<int64_t> rows;
      for (int i = 0; i < 24; ++i)
        rows.push_back(any(rng));
      const testing::AttentionRows ref = testing::attention_reference(
          in, c.mask, c.score, 1.0 / std::sqrt(double(sh.D)), {}, rows);

      auto measure = [&](FlexAttentionOptions o, WayResult& r) {
        o.schedule = opt.schedule;
        auto call = [&] { flex_attention(qv, kv, vv, ov, o); };
        out.fill(0xff); // NaN: every element must be written
        const size_t log_size = kernel_build_log().size();
        auto t = Clock::now();
        call();
        Stream{}.synchronize();
        r.cold_ms = ms_since(t);
        note_build(log_size, r);
        clear_kernel_memory_cache();
        t = Clock::now();
        call();
        Stream{}.synchronize();
        r.disk_ms = ms_since(t);
        // In-memory hits: the host time of a launch, after 5 untimed ones and with the
        // stream idle at the start; the median of 200.
        for (int i = 0; i < 5; ++i)
          call();
        Stream{}.synchronize();
        std::vector<double> host_us;
        for (int i = 0; i < 200; ++i) {
          t = Clock::now();
          call();
          host_us.push_back(ms_since(t) * 1000.0);
        }
        Stream{}.synchronize();
        r.mem_us = median(host_us);
        std::vector<double> times;
        for (int i = 0; i < (opt.quick ? 5 : opt.reps); ++i)
          times.push_back(time_on_stream(Stream{}, call, 1));
        r.ms = median(times);
        r.tflops = flop / r.ms / 1e9;
        std::vector<uint16_t> row_bits(static_cast<size_t>(sh.Dv));
        std::vector<double> got;
        for (int64_t row : rows) {
          out.download(row_bits.data(), row_bits.size() * 2, static_cast<size_t>(row) * sh.Dv * 2);
          for (uint16_t b : row_bits)
            got.push_back(testing::from_half_bits(b, sh.dtype));
        }
        r.err = testing::relative_error(got, ref.out);
        r.ran = true;
      };

      WayResult res[kNumWays];
      for (int w = 0; w < kNumWays; ++w)
        if (!opt.ways[w])
          res[w].skipped = "not selected (--ways)";
      if (opt.ways[Sparse]) {
        FlexAttentionOptions o;
        o.score_mod = c.score;
        o.block_mask = c.has_mask ? &bm : nullptr;
        o.lse = &lv;
        o.bindings = device_bindings;
        if (c.has_mask)
          res[Sparse].mask_bytes =
              4.0 * double(bm.kv_num_blocks.size() + bm.kv_indices.size() +
                           bm.full_kv_num_blocks.size() + bm.full_kv_indices.size());
        res[Sparse].mask_build_ms = bm_gpu;
        measure(o, res[Sparse]);
        if (opt.bwd && sh.D == sh.Dv) {
          // dO random; dq, dk, dv poisoned (NaN) so that an unwritten element shows.
          std::vector<float> unused;
          const DeviceBuffer d_out = random_tensor(n, sh.dtype, 4, unused);
          DeviceBuffer dq(n * 2), dk(n * 2), dv(n * 2);
          for (DeviceBuffer* g : {&dq, &dk, &dv})
            g->fill(0xff);
          const TensorView shape[] = {
              d_out.view(sh.dtype, {sh.B, sh.H, S, sh.D}), dq.view(sh.dtype, {sh.B, sh.H, S, sh.D}),
              dk.view(sh.dtype, {sh.B, sh.H, S, sh.D}), dv.view(sh.dtype, {sh.B, sh.H, S, sh.D})};
          flex_attention(qv, kv, vv, ov, o); // out and lse of this mask
          auto backward = [&] {
            flex_attention_backward(qv, kv, vv, ov, shape[0], shape[1], shape[2], shape[3], o);
          };
          auto t = Clock::now();
          backward();
          Stream{}.synchronize();
          res[Sparse].bwd_cold_ms = ms_since(t);
          long nonfinite = 0;
          std::vector<uint16_t> bits(n);
          for (DeviceBuffer* g : {&dq, &dk, &dv}) {
            g->download(bits.data(), n * 2);
            for (uint16_t b : bits)
              nonfinite += !std::isfinite(testing::from_half_bits(b, sh.dtype));
          }
          res[Sparse].bwd_nonfinite = nonfinite;
          std::vector<double> times;
          for (int i = 0; i < (opt.quick ? 3 : std::max(5, opt.reps / 3)); ++i)
            times.push_back(time_on_stream(Stream{}, backward, 1));
          res[Sparse].bwd_ms = median(times);
          res[Sparse].bwd_tflops = 2.5 * flop / res[Sparse].bwd_ms / 1e9;
          std::printf("%-5s %6d %3d %-15s backward  %9.3f ms %7.1f TF/s  cold %.1f ms  "
                      "non-finite %ld\n",
                      dtype_name(sh.dtype), S, sh.B, c.name.c_str(), res[Sparse].bwd_ms,
                      res[Sparse].bwd_tflops, res[Sparse].bwd_cold_ms, nonfinite);
        }
      }
      if (opt.ways[Dense] && S > opt.dense_max_S) {
        res[Dense].skipped = fmt::format("S={} > --dense-max-S {}: the [S,S] bool mask would be "
                                         "{:.2f} GiB",
                                         S, opt.dense_max_S, double(S) * S / (1 << 30));
      } else if (opt.ways[Dense]) {
        auto t = Clock::now();
        const std::vector<uint8_t> host_mask =
            create_mask(c.mask, 1, 1, S, S, device_bindings, Device::Cuda);
        DeviceBuffer mask_dev(host_mask.size());
        mask_dev.upload(host_mask.data(), host_mask.size());
        res[Dense].mask_build_ms = ms_since(t);
        res[Dense].mask_bytes = double(host_mask.size());
        FlexAttentionOptions o;
        o.score_mod = dense_mod(c, dense_buffer);
        o.lse = &lv;
        o.bindings = device_bindings;
        o.bindings.buffers["dense_mask"] = mask_dev.view(DType::Bool, {S, S});
        measure(o, res[Dense]);
      }
      if (opt.ways[ScoreOnly]) {
        FlexAttentionOptions o;
        o.score_mod = score_only_mod(c);
        o.lse = &lv;
        o.bindings = device_bindings;
        measure(o, res[ScoreOnly]);
      }

      for (int w = 0; w < kNumWays; ++w) {
        const WayResult& r = res[w];
        if (!r.ran) {
          if (opt.ways[w])
            std::printf("%-5s %-7s %6d %3d %-15s %-6s skipped: %s\n", dtype_name(sh.dtype),
                        sh.dims().c_str(), S, sh.B, c.name.c_str(), kWayNames[w],
                        r.skipped.c_str());
          continue;
        }
        std::printf("%-5s %-7s %6d %3d %-15s %-6s %7.3f %9.3f %7.1f %9.2e %9.3f %9.3f %-7s %8.1f "
                    "%8.1f %7.1f %8.2f %7.1f\n",
                    dtype_name(sh.dtype), sh.dims().c_str(), S, sh.B, c.name.c_str(), kWayNames[w],
                    density, r.ms, r.tflops, r.err, r.mask_bytes / 1e6, r.mask_build_ms,
                    r.cold_source.c_str(), r.cold_ms, r.dsl_to_ptx_ms, r.ptx_to_cubin_ms, r.disk_ms,
                    r.mem_us);
      }
      std::fflush(stdout);
      if (json) {
        // The sparse way keeps the field names of earlier runs (scripts/gpu_run.sh reads them).
        std::string line = fmt::format(
            "{{\"case\":\"{}\",\"B\":{},\"H\":{},\"S\":{},\"D\":{},\"Dv\":{},\"dtype\":\"{}\","
            "\"density\":{:.4f},\"block_mask_cpu_ms\":{},\"block_mask_gpu_ms\":{}",
            c.name, sh.B, sh.H, S, sh.D, sh.Dv, dtype_name(sh.dtype), density,
            json_number(bm_cpu, 3), json_number(bm_gpu, 3));
        for (int w = 0; w < kNumWays; ++w)
          line += "," + way_json(static_cast<Way>(w), res[w]);
        line += "}\n";
        std::fputs(line.c_str(), json);
        std::fflush(json);
      }
    }
  }
  std::printf("(way sparse: block mask; dense: [S,S] bool mask read per element, no tile "
              "skipping; score: mask as a score_mod, no tile skipping. TF/s = "
              "2*density*B*H*S^2*(D+Dv)/t for every way. cold: what the first call found (compile "
              "/ disk / memory: the dense "
              "kernel is one per score_mod, shared by every mask).)\n");
  if (json)
    std::fclose(json);
  return 0;
}
