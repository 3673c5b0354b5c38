// Block classification: for one (q block, kv block) tile of one (b, h), decides
// whether mask_mod is false everywhere (empty), true everywhere (full) or mixed
// (partial), over the tile's in-range elements (q < q_len, kv < kv_len).
//
// Grid (num_kv_blocks, num_q_blocks, B * H), kThreads threads as kRowsPerPass x kCols:
// thread (ty, tx) evaluates columns tx, tx + kCols, ... of rows ty, ty + kRowsPerPass, ...
// (no per-element division). The CTA walks the tile in bands of kBandRows rows and stops
// after a band once it has seen both a true and a false (a CTA-wide vote per band).
#include "codegen/templates/prelude.h"

using namespace flexjit::dev;

namespace {
constexpr int kThreads = 256;
constexpr int kCols = 64;
constexpr int kRowsPerPass = kThreads / kCols;
constexpr int kBandRows = 8 * kRowsPerPass; // rows between early-exit votes (two bar.red each)
constexpr unsigned char kEmpty = 0, kPartial = 1, kFull = 2;
} // namespace

// q_block * kv_block must fit in an int; B * H must fit in gridDim.z (65535).
extern "C" __global__ void __launch_bounds__(kThreads)
    flexjit_block_classify(FlexjitModArgs args, int B, int H, int q_len, int kv_len, int q_block,
                           int kv_block, int num_q_blocks, int num_kv_blocks,
                           unsigned char* states) {
  (void)B;
  const int kb = block_x(), qb = block_y(), bh = block_z();
  const int b = bh / H, h = bh % H;
  const int q0 = qb * q_block, kv0 = kb * kv_block;
  const int rows = max_i(min_i(q_len - q0, q_block), 0);
  const int cols = max_i(min_i(kv_len - kv0, kv_block), 0);
  const int tx = thread_x() % kCols, ty = thread_x() / kCols;

  bool seen_true = false, seen_false = false;
  for (int band = 0; band < rows; band += kBandRows) {
    const int band_end = min_i(band + kBandRows, rows);
    for (int r = band + ty; r < band_end; r += kRowsPerPass)
      for (int c = tx; c < cols; c += kCols) {
        const bool m = flexjit_mask_mod(b, h, q0 + r, kv0 + c, &args);
        seen_true |= m;
        seen_false |= !m;
      }
    // CTA-uniform: every thread leaves together.
    if (band_end < rows && block_any(seen_true) && block_any(seen_false))
      break;
  }
  const bool any_true = block_any(seen_true);
  const bool any_false = block_any(seen_false);
  if (thread_x() != 0)
    return;
  const long long index = ((static_cast<long long>(bh) * num_q_blocks + qb) * num_kv_blocks) + kb;
  states[index] = any_true ? (any_false ? kPartial : kFull) : kEmpty;
}
