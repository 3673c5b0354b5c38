// The GPU block-mask builder (codegen/templates/blockmask_abi.h states the launch): tile
// classification, then the index arrays, in device memory.
//
// A tile's state over its in-range elements (q < q_len, kv < kv_len): empty (mask_mod false
// everywhere), full (true everywhere) or partial. The interval program (compiler/
// IntervalRules.h, the CPU analysis' rules) decides most tiles of a structured mask from the
// tile's index ranges alone (causal, windows, documents through their id buffers: a few
// instructions per tile); the mask_mod runs point by point only on the tiles it leaves
// undecided, a warp per tile, stopping once the warp has seen both a true and a false.
#include "codegen/templates/blockmask_abi.h"
#include "codegen/templates/prelude.h"
#include "compiler/IntervalRules.h"

using namespace flexjit::dev;
namespace iv = flexjit::iv;

namespace {
constexpr int kThreads = FLEXJIT_BLOCK_MASK_THREADS;
constexpr int kWarps = kThreads / kWarpSize;
constexpr int kVoteRows = 4; // rows a warp evaluates between its early-exit votes
constexpr uint8_t kEmpty = 0, kPartial = 1, kFull = 2, kUndecided = 3;

__device__ __forceinline__ unsigned lanes_below() {
  return (1u << lane_id()) - 1u;
}

// What the interval program reads at run time: the call's buffers and int params.
struct DeviceReader {
  const FlexjitModArgs* args;
  __device__ int32_t int_param(int slot) const { return args->int_params[slot]; }
  __device__ const int64_t* sizes(int slot) const { return args->buffers[slot].sizes; }
  __device__ const int64_t* strides(int slot) const { return args->buffers[slot].strides; }
  __device__ int64_t element(int slot, uint8_t type, int64_t offset) const {
    const void* data = args->buffers[slot].data;
    return type == iv::kLoadI32 ? static_cast<const int32_t*>(data)[offset]
                                : static_cast<const uint8_t*>(data)[offset] != 0;
  }
};

// The planes [b0, b1) x [h0, h1) that classified plane (bc, hc) broadcasts to.
struct Copies {
  int b0, b1, h0, h1;
  __device__ Copies(const FlexjitBlockMaskParams& p, int bc, int hc)
      : b0(p.Bc == p.B ? bc : 0), b1(p.Bc == p.B ? bc + 1 : p.B), h0(p.Hc == p.H ? hc : 0),
        h1(p.Hc == p.H ? hc + 1 : p.H) {}
};

// One warp: the positions i < n whose state (states[i * step]) is `want`, ascending, into
// row[0..count), 0 after them; the count into counts[0]; for each plane of `copies`, whose rows
// lie plane_count / plane_index elements apart. Returns the count.
__device__ int compact(const uint8_t* states, int n, long long step, uint8_t want,
                       const FlexjitBlockMaskParams& p, const Copies& copies, int32_t* counts,
                       int32_t* rows, long long plane_count, long long plane_index) {
  int total = 0;
  for (int c0 = 0; c0 < n; c0 += kWarpSize) {
    const int c = c0 + lane_id();
    const bool hit = c < n && states[c * step] == want;
    const unsigned m = warp_ballot(hit);
    if (hit) {
      const int at = total + __builtin_popcount(m & lanes_below());
      for (int b = copies.b0; b < copies.b1; ++b)
        for (int h = copies.h0; h < copies.h1; ++h)
          rows[(static_cast<long long>(b) * p.H + h) * plane_index + at] = c;
    }
    total += __builtin_popcount(m);
  }
  for (int b = copies.b0; b < copies.b1; ++b)
    for (int h = copies.h0; h < copies.h1; ++h) {
      const long long plane = static_cast<long long>(b) * p.H + h;
      for (int c = total + lane_id(); c < n; c += kWarpSize)
        rows[plane * plane_index + c] = 0;
      if (lane_id() == 0)
        counts[plane * plane_count] = total;
    }
  return total;
}

// One warp: a tile's state by the mask_mod at every in-range point (or until both a true and a
// false were seen).
__device__ uint8_t scan_tile(const FlexjitModArgs* args, int b, int h, int q0, int rows, int kv0,
                             int cols) {
  bool seen_true = false, seen_false = false;
  for (int r0 = 0; r0 < rows; r0 += kVoteRows) {
    const int r1 = min_i(r0 + kVoteRows, rows);
    for (int r = r0; r < r1; ++r)
      for (int c = lane_id(); c < cols; c += kWarpSize) {
        const bool m = flexjit_mask_mod(b, h, q0 + r, kv0 + c, args);
        seen_true |= m;
        seen_false |= !m;
      }
    if (warp_any(seen_true) && warp_any(seen_false)) // warp-uniform
      return kPartial;
  }
  return warp_any(seen_true) ? (warp_any(seen_false) ? kPartial : kFull) : kEmpty;
}

} // namespace

extern "C" __global__ void __attribute__((launch_bounds(kThreads, 1)))
flexjit_block_classify(FlexjitModArgs args, FlexjitBlockMaskParams p, iv::Program program) {
  // The program in shared memory (its members' initializers rule out a __shared__ object):
  // copied at constant offsets from the parameters, indexed by the evaluation.
  alignas(8) __shared__ unsigned char prog_bytes[sizeof(iv::Program)];
  iv::Program& prog = *reinterpret_cast<iv::Program*>(prog_bytes);
  if (thread_x() == 0)
    prog = program;
  sync_threads();
  const DeviceReader reader{&args};
  const int nq = p.num_q_blocks, nkv = p.num_kv_blocks;
  const int rows = p.Bc * p.Hc * nq; // below 2^31 (the host checks)
  const int warp = warp_id();
  for (int row = block_x(); row < rows; row += grid_dim_x()) {
    const int qb = row % nq, bh = row / nq;
    const int bc = bh / p.Hc, hc = bh % p.Hc;
    const int q0 = qb * p.q_block, q_rows = min_i(p.q_len - q0, p.q_block);
    uint8_t* states = p.states + static_cast<long long>(row) * nkv;

    // The interval program, a tile per thread.
    for (int kb = thread_x(); kb < nkv; kb += kThreads) {
      const int kv0 = kb * p.kv_block, kv_cols = min_i(p.kv_len - kv0, p.kv_block);
      const iv::Range vars[4] = {
          {bc, bc}, {hc, hc}, {q0, q0 + q_rows - 1}, {kv0, kv0 + kv_cols - 1}};
      iv::Value scratch[iv::kMaxInstrs];
      const uint8_t t = iv::evaluate(prog, vars, reader, scratch);
      states[kb] = t == iv::kTrue ? kFull : (t == iv::kFalse ? kEmpty : kUndecided);
    }
    sync_threads();

    // The undecided tiles point by point, tile c by warp c % kWarps: which warp takes a tile
    // depends on nothing another warp writes.
    for (int c0 = 0; c0 < nkv; c0 += kWarpSize) {
      const int kb = c0 + lane_id();
      unsigned m = warp_ballot(kb < nkv && kb % kWarps == warp && states[kb] == kUndecided);
      while (m) {
        const int c = c0 + __builtin_ctz(m);
        m &= m - 1;
        const int kv0 = c * p.kv_block;
        const uint8_t s =
            scan_tile(&args, bc, hc, q0, q_rows, kv0, min_i(p.kv_len - kv0, p.kv_block));
        if (lane_id() == 0)
          states[c] = s;
      }
    }
    sync_threads();

    // The row's q-major arrays: warp 0 the partial tiles, warp 1 the full ones.
    if (warp < 2) {
      const Copies copies(p, bc, hc);
      const bool full = warp == 1;
      const long long at = qb; // within a plane: counts [nq], index rows [nq, nkv]
      const int n = compact(states, nkv, 1, full ? kFull : kPartial, p, copies,
                            (full ? p.full_kv_num_blocks : p.kv_num_blocks) + at,
                            (full ? p.full_kv_indices : p.kv_indices) + at * nkv, nq,
                            static_cast<long long>(nq) * nkv);
      if (lane_id() == 0 && p.q_tiles > 0 && n > 0)
        atomic_add(p.q_block_work + qb, static_cast<unsigned long long>(n));
    }
    sync_threads(); // the next row's program evaluation reuses no state, but keeps warps together
  }
}

extern "C" __global__ void __attribute__((launch_bounds(kThreads, 1)))
flexjit_block_mask_columns(FlexjitModArgs args, FlexjitBlockMaskParams p, iv::Program program) {
  (void)args;
  (void)program;
  const int nq = p.num_q_blocks, nkv = p.num_kv_blocks;
  // The kv-major arrays: a warp per column (bc, hc, kv block) of the classified planes.
  const int columns = p.Bc * p.Hc * nkv; // below 2^31 (the host checks)
  const int warps = grid_dim_x() * kWarps;
  for (int col = block_x() * kWarps + warp_id(); col < columns; col += warps) {
    const int kb = col % nkv, bh = col / nkv;
    const Copies copies(p, bh / p.Hc, bh % p.Hc);
    const uint8_t* states = p.states + static_cast<long long>(bh) * nq * nkv + kb;
    const long long plane_index = static_cast<long long>(nkv) * nq;
    compact(states, nq, nkv, kPartial, p, copies, p.q_num_blocks + kb,
            p.q_indices + static_cast<long long>(kb) * nq, nkv, plane_index);
    compact(states, nq, nkv, kFull, p, copies, p.full_q_num_blocks + kb,
            p.full_q_indices + static_cast<long long>(kb) * nq, nkv, plane_index);
  }
  // The forward's q tiles heaviest first: tile t's rank is the number of tiles before it.
  const int sub = p.q_tiles > 0 ? p.q_block / p.q_tile_rows : 1;
  for (int t = static_cast<int>(global_thread_x()); t < p.q_tiles; t += grid_dim_x() * kThreads) {
    const unsigned long long w = p.q_block_work[t / sub];
    int rank = 0;
#pragma unroll 1
    for (int u = 0; u < p.q_tiles; ++u) {
      const unsigned long long wu = p.q_block_work[u / sub];
      rank += wu > w || (wu == w && u > t);
    }
    p.q_tile_order[rank] = static_cast<int32_t>(t);
  }
}
