// flex_attention over a KV cache on a real device, shared by the [gpu] test files: a cache of
// per-sequence lengths, contiguous or in page pools of a shuffled block table, with NaN in
// every slot no sequence's key holds (make_cache); a call against the float64 reference of
// each sequence alone (check_cache_case, which reports the row of the variant table the call
// took); append_kv_cache against the host's copy of what it should write (check_append_case).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include <flexjit/flexjit.h>

#include "flexjit/codegen/Variants.h"

namespace flexjit::testing {

struct CacheCase {
  int B = 3, Hq = 8, Hkv = 2, q_len = 1, D = 128;
  int Dv = 0; // v's head dim (0: D)
  DType dtype = DType::BF16;
  int page_size = 0; // 0: contiguous [B, Hkv, capacity, D] with per-sequence lengths
  int capacity = 1024;
  std::vector<int32_t> kv_lens = {1000, 1, 333};
  int reserve = 0; // pages for this many keys past each length are in the table too
  MaskMod mask;    // with a block mask (built for the capacity) when set
  bool has_mask = false;
  ScoreMod score;
  FlexAttentionOptions::Schedule schedule = FlexAttentionOptions::Schedule::Auto;
  uint32_t seed = 1;
  int v_dim() const { return Dv ? Dv : D; }
};

// One sequence's K and V: logical [1, Hkv, kv_len, D] floats.
struct Sequence {
  std::vector<float> k, v;
};

struct CacheTensors {
  DeviceBuffer k, v, table, lens;
  TensorView k_view, v_view, table_view, lens_view;
  std::vector<Sequence> seqs;
  std::vector<int32_t> table_host;
  int num_pages = 0, max_pages = 0;
};

// The cache of `c` with random K / V rows for each sequence's keys and NaN everywhere else;
// pages handed out in a random order.
CacheTensors make_cache(const CacheCase& c, std::mt19937& rng);
// The KvCache of flex_attention's options over `t`.
KvCache cache_of(const CacheCase& c, const CacheTensors& t);

// Runs the case and compares each sequence with its own float64 reference: out (a row nothing
// attends must be 0), and lse (-inf for such a row). The row of the variant table it took.
const KernelVariant* check_cache_case(const CacheCase& c);

// Appends n_new random tokens (BSHD or BHSD) to the cache of `c` and compares every element of
// both pools with what they held before plus the new rows at each sequence's length, and the
// lengths with theirs plus n_new; sequences in `bad` (whose tokens would pass the capacity or
// land on a page outside the pool) must be left alone and reported.
void check_append_case(const CacheCase& c, int n_new, bool bshd, std::vector<int> bad = {});

} // namespace flexjit::testing
