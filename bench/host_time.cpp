// Host time of flex_attention around the kernel, before/after comparisons of the host
// path (checks, mod preparation, kernel lookup, argument packing):
//
//   first: a first call of a never-seen (mask, score) pair whose kernel is in the disk
//          cache: the call's wall time minus the cache's module load (kernel_build_log's
//          load_ms), i.e. everything a first call does on the host before and after
//          the build itself. Run it in a fresh process over a warm FLEXJIT_CACHE_DIR
//          (--warm fills it, in another process).
//   cached: the wall time of a launch whose kernel is loaded (enqueue only).
//
// Small problems (B=1, H=1, S=256, D=64 f16) so the GPU never backs the queue up. Medians.
//   flexjit_host_time --warm        # fill the disk cache with the first-call kernels
//   flexjit_host_time               # print "first" and "cached" rows
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <flexjit/flexjit.h>

using namespace flexjit;

namespace {

constexpr int kFirstPairs = 12;

double now_us() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The i-th never-seen score_mod: distinct bodies (a constant folded into each).
ScoreMod fresh_score(int i) {
  const float c = 1.0f + 0.001f * static_cast<float>(i + 1);
  return score_mod("fresh", [c](Score s, Idx, Idx, Idx, Idx) { return s * c; });
}

} // namespace

int main(int argc, char** argv) {
  const bool warm = argc > 1 && std::strcmp(argv[1], "--warm") == 0;
  if (!cuda_available()) {
    std::printf("host_time: no GPU (%s): skipped\n", cuda_unavailable_reason().c_str());
    return 0;
  }
  const int B = 1, H = 1, S = 256, D = 64;
  const size_t bytes = static_cast<size_t>(B) * H * S * D * 2;
  DeviceBuffer q(bytes), k(bytes), v(bytes), o(bytes), lse_buf(static_cast<size_t>(S) * 4);
  q.fill(0);
  k.fill(0);
  v.fill(0);
  const TensorView qv = q.view(DType::F16, {B, H, S, D}), kv = k.view(DType::F16, {B, H, S, D}),
                   vv = v.view(DType::F16, {B, H, S, D}), ov = o.view(DType::F16, {B, H, S, D});
  const TensorView lse = lse_buf.view(DType::F32, {B, H, S});

  if (warm) {
    for (int i = 0; i < kFirstPairs; ++i) {
      FlexAttentionOptions opt;
      opt.score_mod = fresh_score(i);
      flex_attention(qv, kv, vv, ov, opt);
    }
    Stream{}.synchronize();
    std::printf("host_time: warmed %d kernels\n", kFirstPairs);
    return 0;
  }

  // first: disk hits, none seen in this process.
  std::vector<double> first;
  for (int i = 0; i < kFirstPairs; ++i) {
    FlexAttentionOptions opt;
    opt.score_mod = fresh_score(i);
    const size_t before = kernel_build_log().size();
    const double t0 = now_us();
    flex_attention(qv, kv, vv, ov, opt);
    const double wall = now_us() - t0;
    const std::vector<KernelBuildTimes> log = kernel_build_log();
    if (log.size() != before + 1 || !log.back().from_disk) {
      std::printf("host_time: pair %d was not a disk hit; run with --warm first\n", i);
      return 1;
    }
    first.push_back(wall - 1000.0 * log.back().load_ms);
  }
  Stream{}.synchronize();

  // cached: three cases, loaded kernels.
  const MaskMod causal = mask_mod("causal", [](Idx, Idx, Idx qi, Idx ki) { return qi >= ki; });
  const BlockMask bm = create_block_mask(causal, 1, 1, S, S);
  std::vector<int32_t> doc(S);
  for (int i = 0; i < S; ++i)
    doc[i] = i / 100;
  DeviceBuffer doc_dev(doc.size() * 4);
  doc_dev.upload(doc.data(), doc.size() * 4);
  const IntBuffer docs = buffer_i32("doc", doc_dev.view(DType::I32, {S}));
  const MaskMod document =
      mask_mod("document", [&](Idx, Idx, Idx qi, Idx ki) { return docs[qi] == docs[ki]; });
  BlockMaskOptions on_gpu;
  on_gpu.device = Device::Cuda;
  const BlockMask dbm = create_block_mask(document, 1, 1, S, S, on_gpu);
  const ScoreMod alibi = score_mod("alibi", [](Score s, Idx, Idx h, Idx qi, Idx ki) {
    return s + to_float(ki - qi) * exp2(-8.0f * to_float(h + 1) / 16.0f);
  });
  struct Case {
    const char* name;
    FlexAttentionOptions opt;
  };
  std::vector<Case> cases(3);
  cases[0].name = "noop";
  cases[1].name = "causal_block_mask";
  cases[1].opt.block_mask = &bm;
  cases[2].name = "document_alibi_lse";
  cases[2].opt.block_mask = &dbm;
  cases[2].opt.score_mod = alibi;
  cases[2].opt.lse = &lse;
  std::printf("%-24s %10s\n", "case", "host_us");
  std::printf("%-24s %10.2f  (median of %d first calls, disk hits, minus module load)\n",
              "first_call_disk_hit", median(first), kFirstPairs);
  for (Case& c : cases) {
    for (int i = 0; i < 50; ++i)
      flex_attention(qv, kv, vv, ov, c.opt);
    Stream{}.synchronize();
    std::vector<double> t;
    for (int batch = 0; batch < 20; ++batch) {
      for (int i = 0; i < 50; ++i) {
        const double t0 = now_us();
        flex_attention(qv, kv, vv, ov, c.opt);
        t.push_back(now_us() - t0);
      }
      Stream{}.synchronize();
    }
    std::printf("%-24s %10.2f  (median of %zu cached launches)\n", c.name, median(t), t.size());
  }
  return 0;
}
