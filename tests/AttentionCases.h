// The [gpu] attention tests' calls on a real device, each against the float64 reference
// (testing/AttentionReference.h), shared by the test files: a forward call (Case: random
// inputs, a block mask built on the CPU or the GPU, flex_attention; run_case, check), a forward
// and backward call (BwdCase: check_backward) and kv shards merged with merge_attention
// (MergeCase: check_merge_case); the kernel memory cache's limit for one test (MemoryLimit).
// The forward and the backward report the row of the variant table (codegen/Variants.h) the
// call took: select_variant of the call's checked problem, what flex_attention itself launches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/codegen/Variants.h"

namespace flexjit::testing {

struct Case {
  int B = 2, Hq = 4, Hkv = 2, q_len = 256, kv_len = 256, D = 64;
  int Dv = 0; // v and out; 0: D
  int v_dim() const { return Dv ? Dv : D; }
  DType dtype = DType::F16;
  bool bshd = false;
  bool use_block_mask = true; // false: no block mask (noop), even if mask is set
  MaskMod mask;
  ScoreMod score;
  Bindings host_bindings; // host data for the reference (and copied to the device)
  int sample_rows = 0;    // > 0: compare only this many random rows
  uint32_t seed = 1;
  bool gpu_block_mask = false; // build the block mask on the GPU (and compare with the CPU's)
  bool per_head_mask = false;  // a block mask of H = Hq rows (else H = 1)
  int q_block = kDefaultBlockSize, kv_block = kDefaultBlockSize; // the block mask's tiles
  FlexAttentionOptions::Schedule schedule = FlexAttentionOptions::Schedule::Auto;
};

struct Outcome {
  double out_error = 0, lse_error = 0;
  long nans = 0, empty_rows = 0, bad_empty_rows = 0;
  bool block_mask_differs = false;        // the GPU block mask is not the CPU builder's
  const KernelVariant* variant = nullptr; // the row of the variant table the call took
};

// raw_out, raw_lse: where given, the kernel's out (element bits, the views' layout) and lse.
Outcome run_case(const Case& c, std::vector<uint16_t>* raw_out = nullptr,
                 std::vector<float>* raw_lse = nullptr);
// Catch2 checks of an outcome: no NaN, fully masked rows out 0 and lse -inf, the GPU block mask
// the CPU's, out and lse within the dtype's tolerance.
void check_outcome(const Case& c, const std::string& name, const Outcome& r);
// run_case, then check_outcome; the outcome.
Outcome check(const Case& c, const std::string& name);

struct BwdCase {
  int B = 1, Hq = 4, Hkv = 2, q_len = 200, kv_len = 200, D = 64;
  DType dtype = DType::F16;
  bool bshd = false;
  bool use_block_mask = true;
  int q_block = 128, kv_block = 128; // the block mask's tiles
  MaskMod mask;
  ScoreMod score;
  uint32_t seed = 3;
};

// flex_attention, then flex_attention_backward into poisoned (NaN) gradients, checked against
// the float64 backward reference; the row of the variant table the backward took.
const KernelVariant* check_backward(const BwdCase& c, const std::string& name);

struct MergeCase {
  int B = 2, Hq = 8, Hkv = 2, q_len = 300, kv_len = 1000, D = 128;
  DType dtype = DType::BF16;
  bool bshd = false;
};

// K or V rows [from, from + n) of `t` (any layout): a view of the same memory.
TensorView kv_rows(const TensorView& t, int64_t from, int64_t n);

// A logsumexp tensor f32 [B, H, S] in device memory (not initialized).
struct Lse {
  DeviceBuffer buf;
  TensorView view;
  Lse(int B, int H, int S) : buf(static_cast<size_t>(B) * H * S * 4) {
    view = buf.view(DType::F32, {B, H, S});
  }
};

// One attention computed as 4 kv shards of unequal lengths (flex_attention with each shard's
// lse) merged pairwise with merge_attention -- in place, and with a part that saw no key (lse
// -inf, out NaN) -- against the float64 reference of the whole; then two empty parts merged:
// out 0, lse -inf.
void check_merge_case(const MergeCase& c);

// The kernel memory cache's limit for one test (set_kernel_memory_cache_limit), restored after
// it.
struct MemoryLimit {
  int64_t saved = kernel_memory_cache_limit();
  explicit MemoryLimit(int64_t bytes) { set_kernel_memory_cache_limit(bytes); }
  ~MemoryLimit() { set_kernel_memory_cache_limit(saved); }
  MemoryLimit(const MemoryLimit&) = delete;
  MemoryLimit& operator=(const MemoryLimit&) = delete;
};

} // namespace flexjit::testing
