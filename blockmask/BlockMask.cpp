// BlockMask: tile classification on the CPU (interval analysis, then the
// interpreter on undecided tiles), the index arrays in PyTorch's layout, and
// torch's sparsity() and picture.
#include "flexjit/blockmask/BlockMask.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "flexjit/blockmask/BlockMaskGpu.h"
#include "flexjit/blockmask/Memory.h"
#include "flexjit/compiler/Interpreter.h"
#include "flexjit/compiler/Interval.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/PreparedMods.h"
#include "flexjit/support/Error.h"

namespace flexjit {
namespace {

constexpr uint8_t kEmpty = 0, kPartial = 1, kFull = 2;
// Where a q block's index list ends, the rest is padded with this (torch leaves
// the remaining block ids there instead; kernels read only the first num).
constexpr int32_t kIndexPad = 0;
// create_mask refuses to allocate more than this.
constexpr int64_t kMaxDenseMaskBytes = int64_t{16} << 30;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Memory sizes of absurd shapes saturate instead of overflowing.
int64_t mul_sat(int64_t a, int64_t b) {
  if (a == 0 || b == 0)
    return 0;
  return a > INT64_MAX / b ? INT64_MAX : a * b;
}
int64_t add_sat(int64_t a, int64_t b) {
  return a > INT64_MAX - b ? INT64_MAX : a + b;
}

void check_positive(const char* what, int64_t value) {
  if (value <= 0)
    fail("{} must be positive, got {}", what, value);
}

void check_block_size(const char* what, int value) {
  if (value <= 0 || (value & (value - 1)) != 0)
    fail("{} must be a positive power of two, got {}", what, value);
}

void check_shape(int B, int H, int q_len, int kv_len) {
  check_positive("B (batch size; 1 broadcasts)", B);
  check_positive("H (number of heads; 1 broadcasts)", H);
  check_positive("q_len", q_len);
  check_positive("kv_len", kv_len);
}

// Runs fn(i) for i in [0, n) on up to hardware_concurrency threads; the first
// exception thrown by any worker is rethrown here.
template <class F> void parallel_for(int n, F fn) {
  const int workers =
      std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, std::max(n, 1));
  if (workers <= 1 || n <= 1) {
    for (int i = 0; i < n; ++i)
      fn(i);
    return;
  }
  std::atomic<int> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    try {
      for (int i = next++; i < n; i = next++)
        fn(i);
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error)
        error = std::current_exception();
      next = n;
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < workers; ++w)
    threads.emplace_back(work);
  work();
  for (std::thread& t : threads)
    t.join();
  if (error)
    std::rethrow_exception(error);
}

// Copies the [Bc, Hc, inner] array computed for the (b, h) the mask reads
// into [B, H, inner], replicating along the axes it does not read. Takes `src`
// by value so that a caller's moved array is freed once copied (or passed on).
template <class T>
std::vector<T> broadcast(std::vector<T> src, int Bc, int Hc, int B, int H, size_t inner) {
  if (Bc == B && Hc == H)
    return src;
  std::vector<T> out(static_cast<size_t>(B) * H * inner);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h) {
      const T* from = src.data() + (static_cast<size_t>(b % Bc) * Hc + h % Hc) * inner;
      std::copy(from, from + inner, out.data() + (static_cast<size_t>(b) * H + h) * inner);
    }
  return out;
}

// Ordered lists of the tiles in state `want` along the rows of a [rows, cols]
// state matrix read through `at(r, c)`: counts[r], then indices[r, :] ascending.
template <class At>
void ordered(int rows, int cols, uint8_t want, At at, int32_t* counts, int32_t* indices) {
  for (int r = 0; r < rows; ++r) {
    int32_t* row = indices + static_cast<size_t>(r) * cols;
    int32_t n = 0;
    for (int c = 0; c < cols; ++c)
      if (at(r, c) == want)
        row[n++] = c;
    std::fill(row + n, row + cols, kIndexPad);
    counts[r] = n;
  }
}

// The state of one tile by brute force, row by row, stopping as soon as both
// an attending and a masked pair were seen.
uint8_t scan_tile(const Program& program, int b, int h, int q0, int q1, int k0, int k1, bool* out) {
  const int n = k1 - k0 + 1;
  bool any_true = false, any_false = false;
  for (int q = q0; q <= q1; ++q) {
    program.eval_bool_row(b, h, q, k0, n, out);
    for (int i = 0; i < n; ++i) {
      any_true = any_true || out[i];
      any_false = any_false || !out[i];
    }
    if (any_true && any_false)
      return kPartial;
  }
  return any_true ? kFull : kEmpty;
}

// Tile states [Bc, Hc, nq, nkv] on the CPU.
std::vector<uint8_t> classify_tiles(const Expr& body, int Bc, int Hc, int q_len, int kv_len,
                                    int qbs, int kbs, const Bindings& bindings) {
  const int nq = static_cast<int>(ceil_div(q_len, qbs));
  const int nkv = static_cast<int>(ceil_div(kv_len, kbs));
  // Built once, shared read-only by the workers.
  const Program program(body, bindings);
  const IntervalAnalysis intervals(body, bindings);
  const size_t grid = static_cast<size_t>(nq) * nkv;
  std::vector<uint8_t> states(static_cast<size_t>(Bc) * Hc * grid);
  // One task per (b, h, q block) row of tiles.
  parallel_for(Bc * Hc * nq, [&](int task) {
    const int qb = task % nq, bh = task / nq, b = bh / Hc, h = bh % Hc;
    const int q0 = qb * qbs, q1 = std::min(q_len, q0 + qbs) - 1;
    uint8_t* out = states.data() + static_cast<size_t>(bh) * grid + static_cast<size_t>(qb) * nkv;
    std::unique_ptr<bool[]> row(new bool[kbs]);
    for (int kb = 0; kb < nkv; ++kb) {
      const int k0 = kb * kbs, k1 = std::min(kv_len, k0 + kbs) - 1;
      const Tile tile{{b, b}, {h, h}, {q0, q1}, {k0, k1}};
      switch (intervals.classify(tile)) {
      case Truth::True:
        out[kb] = kFull;
        break;
      case Truth::False:
        out[kb] = kEmpty;
        break;
      case Truth::Unknown:
        out[kb] = scan_tile(program, b, h, q0, q1, k0, k1, row.get());
        break;
      }
    }
  });
  return states;
}

// `mask` with its index arrays in host memory: a copy of a device-only mask, downloaded.
BlockMask with_host_arrays(const BlockMask& mask) {
  BlockMask copy = mask;
  copy.download_arrays();
  return copy;
}

} // namespace

double BlockMask::sparsity() const {
  if (arrays_on_device_only())
    return with_host_arrays(*this).sparsity();
  const int64_t tiles = static_cast<int64_t>(B) * H * num_q_blocks * num_kv_blocks;
  if (tiles == 0)
    return 0.0;
  int64_t nonempty = 0;
  for (size_t i = 0; i < kv_num_blocks.size(); ++i)
    nonempty += kv_num_blocks[i] + full_kv_num_blocks[i];
  return 100.0 * (1.0 - static_cast<double>(nonempty) / static_cast<double>(tiles));
}

std::vector<uint8_t> BlockMask::states() const {
  if (arrays_on_device_only())
    return with_host_arrays(*this).states();
  const size_t nq = static_cast<size_t>(num_q_blocks), nkv = static_cast<size_t>(num_kv_blocks);
  std::vector<uint8_t> out(static_cast<size_t>(B) * H * nq * nkv, kEmpty);
  for (size_t row = 0; row < static_cast<size_t>(B) * H * nq; ++row) {
    uint8_t* dst = out.data() + row * nkv;
    for (int32_t i = 0; i < kv_num_blocks[row]; ++i)
      dst[kv_indices[row * nkv + i]] = kPartial;
    for (int32_t i = 0; i < full_kv_num_blocks[row]; ++i)
      dst[full_kv_indices[row * nkv + i]] = kFull;
  }
  return out;
}

int BlockMask::tile_state(int b, int h, int qb, int kb) const {
  if (b < 0 || h < 0 || (B > 1 && b >= B) || (H > 1 && h >= H))
    fail("tile_state: (b, h) = ({}, {}) is outside B = {}, H = {}", b, h, B, H);
  if (qb < 0 || qb >= num_q_blocks || kb < 0 || kb >= num_kv_blocks)
    fail("tile ({}, {}) is outside the {} x {} block grid", qb, kb, num_q_blocks, num_kv_blocks);
  if (arrays_on_device_only())
    return with_host_arrays(*this).tile_state(b, h, qb, kb);
  const size_t row =
      (static_cast<size_t>(B == 1 ? 0 : b) * H + (H == 1 ? 0 : h)) * num_q_blocks + qb;
  const size_t base = row * num_kv_blocks;
  auto holds = [&](const std::vector<int32_t>& idx, int32_t n) {
    return std::find(idx.begin() + base, idx.begin() + base + n, kb) != idx.begin() + base + n;
  };
  if (holds(full_kv_indices, full_kv_num_blocks[row]))
    return kFull;
  if (holds(kv_indices, kv_num_blocks[row]))
    return kPartial;
  return kEmpty;
}

// Mirrors torch's BlockMask.__str__ / to_string: a tile counts 1 when partial
// or full; a cell is "██" when all its tiles are 1, "  " when none, "░░" else.
std::string BlockMask::to_string(int grid, int limit) const {
  if (arrays_on_device_only())
    return with_host_arrays(*this).to_string(grid, limit);
  const int rows = num_q_blocks, cols = num_kv_blocks;
  // grid <= 0 shows every tile (torch's grid_size=-1).
  const int row_step = grid > 0 ? static_cast<int>(std::max<int64_t>(1, ceil_div(rows, grid))) : 1;
  const int col_step = grid > 0 ? static_cast<int>(std::max<int64_t>(1, ceil_div(cols, grid))) : 1;
  const std::vector<uint8_t> dense = states();

  std::vector<std::string> parts;
  for (int b = 0, index = 0; b < B; ++b) {
    for (int h = 0; h < H; ++h, ++index) {
      if (index == limit) {
        parts.push_back("...");
        parts.push_back("To print out more, set BlockMask.to_string(limit=N)");
        parts.push_back("You can also index (BlockMask[batch, head]) to choose a specific "
                        "batch or head");
        b = B;
        break;
      }
      const uint8_t* tiles = dense.data() + (static_cast<size_t>(b) * H + h) * rows * cols;
      std::string vis = fmt::format("({}, {})\n", b, h);
      for (int r = 0; r < rows; r += row_step) {
        for (int c = 0; c < cols; c += col_step) {
          int ones = 0, count = 0;
          for (int i = r; i < std::min(rows, r + row_step); ++i)
            for (int j = c; j < std::min(cols, c + col_step); ++j, ++count)
              ones += tiles[static_cast<size_t>(i) * cols + j] != kEmpty;
          vis += ones == count ? "██" : ones == 0 ? "  " : "░░";
        }
        vis += "\n";
      }
      parts.push_back(std::move(vis));
    }
  }
  std::string body;
  for (size_t i = 0; i < parts.size(); ++i)
    body += (i ? "\n" : "") + parts[i];
  // torch strips the picture's surrounding whitespace.
  const size_t first = body.find_first_not_of(" \n");
  const size_t last = body.find_last_not_of(" \n");
  body = first == std::string::npos ? "" : body.substr(first, last - first + 1);
  return fmt::format("BlockMask(shape=({}, {}, {}, {}), sparsity={:.2f}%, \n{}\n)", B, H, q_len,
                     kv_len, sparsity(), body);
}

BlockMask block_mask_shape(int B, int H, int q_len, int kv_len, int q_block, int kv_block,
                           MaskMod mod) {
  check_block_size("q_block", q_block);
  check_block_size("kv_block", kv_block);
  check_shape(B, H, q_len, kv_len);
  BlockMask bm;
  bm.B = B;
  bm.H = H;
  bm.q_len = q_len;
  bm.kv_len = kv_len;
  bm.q_block = q_block;
  bm.kv_block = kv_block;
  bm.num_q_blocks = static_cast<int>(ceil_div(q_len, q_block));
  bm.num_kv_blocks = static_cast<int>(ceil_div(kv_len, kv_block));
  bm.mask_mod = std::move(mod);
  return bm;
}

BlockMask block_mask_from_states(const std::vector<uint8_t>& states, int B, int H, int q_len,
                                 int kv_len, int q_block, int kv_block, MaskMod mod) {
  BlockMask bm = block_mask_shape(B, H, q_len, kv_len, q_block, kv_block, std::move(mod));
  const int nq = bm.num_q_blocks, nkv = bm.num_kv_blocks;
  const size_t heads = static_cast<size_t>(B) * H, grid = static_cast<size_t>(nq) * nkv;
  if (states.size() != heads * grid)
    fail("block_mask_from_states: expected {} tile states ([{}, {}, {}, {}]), got {}", heads * grid,
         B, H, nq, nkv, states.size());

  bm.kv_num_blocks.resize(heads * nq);
  bm.full_kv_num_blocks.resize(heads * nq);
  bm.kv_indices.resize(heads * grid);
  bm.full_kv_indices.resize(heads * grid);
  bm.q_num_blocks.resize(heads * nkv);
  bm.full_q_num_blocks.resize(heads * nkv);
  bm.q_indices.resize(heads * grid);
  bm.full_q_indices.resize(heads * grid);
  for (size_t bh = 0; bh < heads; ++bh) {
    const uint8_t* s = states.data() + bh * grid;
    auto q_major = [&](int r, int c) { return s[static_cast<size_t>(r) * nkv + c]; };
    auto kv_major = [&](int r, int c) { return s[static_cast<size_t>(c) * nkv + r]; };
    ordered(nq, nkv, kPartial, q_major, &bm.kv_num_blocks[bh * nq], &bm.kv_indices[bh * grid]);
    ordered(nq, nkv, kFull, q_major, &bm.full_kv_num_blocks[bh * nq],
            &bm.full_kv_indices[bh * grid]);
    ordered(nkv, nq, kPartial, kv_major, &bm.q_num_blocks[bh * nkv], &bm.q_indices[bh * grid]);
    ordered(nkv, nq, kFull, kv_major, &bm.full_q_num_blocks[bh * nkv],
            &bm.full_q_indices[bh * grid]);
  }
  return bm;
}

int64_t BlockMaskBytes::build_host() const {
  return add_sat(arrays, states);
}

BlockMaskBytes block_mask_bytes(int B, int H, int q_len, int kv_len,
                                const BlockMaskOptions& options) {
  check_block_size("q_block", options.q_block);
  check_block_size("kv_block", options.kv_block);
  check_shape(B, H, q_len, kv_len);
  const int64_t heads = int64_t{B} * H;
  const int64_t nq = ceil_div(q_len, options.q_block), nkv = ceil_div(kv_len, options.kv_block);
  const int64_t tiles = mul_sat(mul_sat(heads, nq), nkv);
  BlockMaskBytes out;
  // Per (b, h): two count arrays of nq (forward) and two of nkv (transposes),
  // four index arrays of nq * nkv; int32 each.
  out.arrays = mul_sat(4, add_sat(mul_sat(2, mul_sat(heads, nq + nkv)), mul_sat(4, tiles)));
  out.states = tiles;
  out.device_copy = mul_sat(4, add_sat(mul_sat(2, mul_sat(heads, nq)), mul_sat(2, tiles)));
  return out;
}

BlockMask create_block_mask(const MaskMod& mod, int B, int H, int q_len, int kv_len,
                            const BlockMaskOptions& options) {
  const BlockMaskBytes bytes = block_mask_bytes(B, H, q_len, kv_len, options); // checks the shape
  // Memoized per mask (hash-consed, so equal masks share one entry): a repeated build
  // pays no type check and optimize (natten: ~55 us).
  const std::shared_ptr<const PreparedMods> prepared = prepare_mods(mod);
  const Expr& body = prepared->mask_body;
  const Dependence& dep = prepared->mask_dependence;
  const int qbs = options.q_block, kbs = options.kv_block;
  const int nq = static_cast<int>(ceil_div(q_len, qbs));
  const int nkv = static_cast<int>(ceil_div(kv_len, kbs));

  const int Bc = dep.b ? B : 1, Hc = dep.h ? H : 1;
  const size_t grid = static_cast<size_t>(nq) * nkv;
  // Memory first: the device's for the GPU builder (its tile states), then the host's.
  const bool on_gpu = runs_on_cuda(options.device, *prepared, options.bindings);
  if (on_gpu)
    check_block_mask_cuda(B, H, Bc, Hc, q_len, kv_len, qbs, kbs);
  if (!on_gpu || options.host_arrays)
    require_host_memory(
        fmt::format("create_block_mask: a [{}, {}, {}, {}] block mask of {} x {} "
                    "blocks",
                    B, H, q_len, kv_len, qbs, kbs),
        on_gpu ? bytes.arrays : bytes.build_host(),
        on_gpu ? std::string(" (index arrays)")
               : fmt::format(" (index arrays {}, tile states {})", bytes.arrays, bytes.states));
  if (on_gpu)
    return block_mask_cuda(*prepared, mod, B, H, Bc, Hc, q_len, kv_len, qbs, kbs, options.bindings,
                           options.host_arrays);
  std::vector<uint8_t> states =
      classify_tiles(body, Bc, Hc, q_len, kv_len, qbs, kbs, options.bindings);
  return block_mask_from_states(broadcast(std::move(states), Bc, Hc, B, H, grid), B, H, q_len,
                                kv_len, qbs, kbs, mod);
}

std::vector<uint8_t> create_mask(const MaskMod& mod, int B, int H, int q_len, int kv_len,
                                 const Bindings& bindings, Device device) {
  check_shape(B, H, q_len, kv_len);
  const int64_t bytes = int64_t{B} * H * q_len * kv_len;
  if (bytes > kMaxDenseMaskBytes)
    fail("create_mask: a dense [{}, {}, {}, {}] mask needs {} bytes, more than the {} byte "
         "limit; use create_block_mask instead",
         B, H, q_len, kv_len, bytes, kMaxDenseMaskBytes);
  // Memoized per mask (hash-consed, so equal masks share one entry): a repeated build
  // pays no type check and optimize (natten: ~55 us).
  const std::shared_ptr<const PreparedMods> prepared = prepare_mods(mod);
  const Expr& body = prepared->mask_body;
  const Dependence& dep = prepared->mask_dependence;
  const int Bc = dep.b ? B : 1, Hc = dep.h ? H : 1;
  const size_t plane = static_cast<size_t>(q_len) * kv_len;
  const int64_t computed = int64_t{Bc} * Hc * q_len * kv_len;
  const bool on_gpu = runs_on_cuda(device, *prepared, bindings);
  if (on_gpu)
    check_create_mask_cuda(Bc, Hc, q_len, kv_len);
  // The mask computed for the (b, h) it reads, and its broadcast copy.
  require_host_memory(
      fmt::format("create_mask: a dense [{}, {}, {}, {}] mask", B, H, q_len, kv_len),
      bytes + (computed < bytes ? computed : 0));
  if (on_gpu)
    return broadcast(create_mask_cuda(*prepared, Bc, Hc, q_len, kv_len, bindings), Bc, Hc, B, H,
                     plane);
  const Program program(body, bindings);

  std::vector<uint8_t> mask(static_cast<size_t>(Bc) * Hc * plane);
  // One task per (b, h, chunk of kRowsPerTask query rows).
  constexpr int kRowsPerTask = 64;
  const int chunks = static_cast<int>(ceil_div(q_len, kRowsPerTask));
  parallel_for(Bc * Hc * chunks, [&](int task) {
    const int bh = task / chunks, q0 = task % chunks * kRowsPerTask;
    std::unique_ptr<bool[]> row(new bool[kv_len]);
    uint8_t* dst = mask.data() + static_cast<size_t>(bh) * plane;
    for (int q = q0; q < std::min(q_len, q0 + kRowsPerTask); ++q) {
      program.eval_bool_row(bh / Hc, bh % Hc, q, 0, kv_len, row.get());
      std::transform(row.get(), row.get() + kv_len, dst + static_cast<size_t>(q) * kv_len,
                     [](bool v) { return static_cast<uint8_t>(v); });
    }
  });
  return broadcast(std::move(mask), Bc, Hc, B, H, plane);
}

} // namespace flexjit
