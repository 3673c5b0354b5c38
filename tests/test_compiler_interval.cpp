#include <catch2/catch.hpp>

#include <climits>

#include <flexjit/flexjit.h>

#include "flexjit/compiler/Interval.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/PreparedMods.h"
#include "flexjit/testing/RandomMods.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

namespace {

// Every point of the tile, by the interpreter: all true, all false, or mixed.
Truth brute_force(const Program& prog, const Tile& t) {
  int64_t n = t.kv.hi - t.kv.lo + 1;
  std::vector<uint8_t> row(static_cast<size_t>(n));
  bool any_true = false, any_false = false;
  for (int64_t b = t.b.lo; b <= t.b.hi; ++b)
    for (int64_t h = t.h.lo; h <= t.h.hi; ++h)
      for (int64_t q = t.q.lo; q <= t.q.hi; ++q) {
        prog.eval_bool_row(static_cast<int32_t>(b), static_cast<int32_t>(h),
                           static_cast<int32_t>(q), static_cast<int32_t>(t.kv.lo),
                           static_cast<int32_t>(n), reinterpret_cast<bool*>(row.data()));
        for (uint8_t v : row)
          (v ? any_true : any_false) = true;
      }
  if (any_true && any_false)
    return Truth::Unknown;
  return any_true ? Truth::True : Truth::False;
}

IntRange range(std::mt19937& rng, int64_t max_start, int64_t max_size) {
  int64_t lo = std::uniform_int_distribution<int64_t>(0, max_start)(rng);
  int64_t size = std::uniform_int_distribution<int64_t>(1, max_size)(rng);
  return IntRange{lo, lo + size - 1};
}

const char* name(Truth t) {
  return t == Truth::True ? "True" : t == Truth::False ? "False" : "Unknown";
}

// The GPU block-mask builder's program (interval_program, iv::evaluate) run on the host, over
// host data: what classify.cu computes per tile.
struct GpuProgram {
  std::shared_ptr<const PreparedMods> prepared;
  ResolvedArgs args;
  iv::Program program;
  GpuProgram(const MaskMod& m, const Bindings& bind)
      : prepared(prepare_mods(m)), args(resolve(prepared->signature, bind)),
        program(interval_program(prepared->mask_body, prepared->signature)) {}
  int32_t int_param(int slot) const { return args.int_params[slot]; }
  const int64_t* sizes(int slot) const { return args.buffers[slot].sizes.data(); }
  const int64_t* strides(int slot) const { return args.buffers[slot].strides.data(); }
  int64_t element(int slot, uint8_t type, int64_t offset) const {
    const void* data = args.buffers[slot].data;
    return type == iv::kLoadI32 ? static_cast<const int32_t*>(data)[offset]
                                : static_cast<const uint8_t*>(data)[offset] != 0;
  }
  Truth classify(const Tile& t) const {
    const iv::Range vars[4] = {
        {t.b.lo, t.b.hi}, {t.h.lo, t.h.hi}, {t.q.lo, t.q.hi}, {t.kv.lo, t.kv.hi}};
    iv::Value scratch[iv::kMaxInstrs];
    return static_cast<Truth>(iv::evaluate(program, vars, *this, scratch));
  }
};

// Checks soundness on `tiles` random tiles, of the CPU analysis and of the GPU builder's
// program; returns how many the CPU analysis decided (and adds the program's to *gpu_decided).
int check_sound(const MaskMod& m, const Bindings& bind, std::mt19937& rng, int tiles,
                int64_t max_start, int64_t max_size, int* gpu_decided = nullptr) {
  IntervalAnalysis ia(m.body(), bind);
  Program prog(m.body(), bind, DataIndexCheck::ReadZero);
  const GpuProgram gpu(m, bind);
  int decided = 0;
  for (int i = 0; i < tiles; ++i) {
    Tile t{range(rng, 3, 2), range(rng, 7, 2), range(rng, max_start, max_size),
           range(rng, max_start, max_size)};
    const Truth on_gpu = gpu.classify(t);
    if (on_gpu != Truth::Unknown) {
      if (gpu_decided)
        ++*gpu_decided;
      INFO(m.name() << " tile q [" << t.q.lo << ", " << t.q.hi << "] kv [" << t.kv.lo << ", "
                    << t.kv.hi << "]: the GPU program says " << name(on_gpu) << "\n"
                    << print(m.body()));
      REQUIRE(on_gpu == brute_force(prog, t));
    }
    Truth got = ia.classify(t);
    if (got == Truth::Unknown)
      continue;
    ++decided;
    Truth truth = brute_force(prog, t);
    INFO(m.name() << " tile q [" << t.q.lo << ", " << t.q.hi << "] kv [" << t.kv.lo << ", "
                  << t.kv.hi << "] b [" << t.b.lo << ", " << t.b.hi << "] h [" << t.h.lo << ", "
                  << t.h.hi << "]: analysis " << name(got) << ", points " << name(truth) << "\n"
                  << print(m.body()));
    REQUIRE(got == truth);
  }
  return decided;
}

Tile qkv(int64_t q0, int64_t q1, int64_t k0, int64_t k1) {
  return Tile{{0, 0}, {0, 0}, {q0, q1}, {k0, k1}};
}

// Test data for the buffer-reading seeds, sized past the tiles' reach.
struct SeedData {
  std::vector<int32_t> doc = seeds::notebook_document_ids(12000);
  std::vector<int32_t> offsets, seq, image, intervals;
  SeedData() {
    std::mt19937 rng(7);
    offsets.push_back(0);
    while (offsets.back() < 11000) {
      offsets.push_back(offsets.back() + std::uniform_int_distribution<int>(50, 3000)(rng));
      for (int i = offsets[offsets.size() - 2]; i < offsets.back(); ++i)
        seq.push_back(static_cast<int32_t>(offsets.size() - 2));
    }
    // 40 images of 250 tokens; image i is seen by text tokens [200 i, 200 i + 400).
    for (int i = 0; i < 10000; ++i)
      image.push_back(i / 250);
    for (int i = 0; i < 40; ++i) {
      intervals.push_back(200 * i);
      intervals.push_back(200 * i + 400);
    }
  }
};

} // namespace

TEST_CASE("interval: seed masks are classified soundly", "[compiler][interval]") {
  SeedData data;
  std::vector<MaskMod> masks = {seeds::causal(),
                                seeds::sliding_window(256),
                                seeds::prefix_lm(1000),
                                seeds::document(data.doc),
                                seeds::sasa(),
                                seeds::natten(),
                                seeds::jagged_causal(data.offsets, data.seq),
                                seeds::vision_cross_attention(data.image, data.intervals)};
  std::mt19937 rng(99);
  for (const MaskMod& m : masks) {
    int gpu_decided = 0;
    int decided = check_sound(m, {}, rng, 150, 10000, 300, &gpu_decided);
    decided += check_sound(m, {}, rng, 150, 1000, 40, &gpu_decided);
    INFO(m.name());
    CHECK(decided > 30);
    // The GPU program has the CPU analysis' int rules: it decides these masks' tiles too
    // (natten and sasa divide and take remainders; the others compare and load ids).
    CHECK(gpu_decided > 30);
  }
}

TEST_CASE("interval: obviously decidable tiles are decided", "[compiler][interval]") {
  SeedData data;
  IntervalAnalysis causal(seeds::causal().body());
  CHECK(causal.classify(qkv(1000, 1127, 0, 127)) == Truth::True);
  CHECK(causal.classify(qkv(0, 127, 1000, 1127)) == Truth::False);
  CHECK(causal.classify(qkv(0, 127, 0, 127)) == Truth::Unknown);

  IntervalAnalysis swa(seeds::sliding_window(256).body());
  CHECK(swa.classify(qkv(5000, 5127, 0, 127)) == Truth::False);
  CHECK(swa.classify(qkv(1000, 1127, 900, 999)) == Truth::True);
  CHECK(swa.classify(qkv(0, 127, 1000, 1127)) == Truth::False);
  Bindings wide;
  wide.params["window"] = 10000;
  CHECK(
      IntervalAnalysis(seeds::sliding_window(256).body(), wide).classify(qkv(5000, 5127, 0, 127)) ==
      Truth::True);

  IntervalAnalysis prefix(seeds::prefix_lm(1000).body());
  CHECK(prefix.classify(qkv(0, 127, 0, 127)) == Truth::True);
  CHECK(prefix.classify(qkv(0, 127, 3000, 3127)) == Truth::False);

  IntervalAnalysis doc(seeds::document(data.doc).body());
  CHECK(doc.classify(qkv(2000, 2127, 0, 127)) == Truth::True);
  CHECK(doc.classify(qkv(4200, 4327, 100, 227)) == Truth::False);

  IntervalAnalysis sasa(seeds::sasa().body());
  CHECK(sasa.classify(qkv(0, 127, 128 * 20, 128 * 21 - 1)) == Truth::False);
  CHECK(sasa.classify(qkv(128 * 40, 128 * 41 - 1, 0, 127)) == Truth::False);
  CHECK(sasa.classify(qkv(128 * 5 + 60, 128 * 5 + 60, 128 * 5 + 56, 128 * 5 + 64)) == Truth::True);

  IntervalAnalysis natten(seeds::natten().body());
  CHECK(natten.classify(qkv(0, 127, 128 * 20, 128 * 21 - 1)) == Truth::False);
  CHECK(natten.classify(qkv(128 * 60, 128 * 61 - 1, 128 * 2, 128 * 3 - 1)) == Truth::False);

  IntervalAnalysis jagged(seeds::jagged_causal(data.offsets, data.seq).body());
  // Tokens of the first and the last sequence never attend to each other.
  int64_t last = data.offsets[data.offsets.size() - 2];
  CHECK(jagged.classify(qkv(last, last + 40, 0, 40)) == Truth::False);

  IntervalAnalysis vision(seeds::vision_cross_attention(data.image, data.intervals).body());
  // Image 0 (kv 0..249) is seen by text tokens [0, 400): q 100..199 always, q 5000.. never.
  CHECK(vision.classify(qkv(100, 199, 0, 249)) == Truth::True);
  CHECK(vision.classify(qkv(5000, 5127, 0, 249)) == Truth::False);
}

TEST_CASE("interval: random masks are classified soundly", "[compiler][interval]") {
  std::mt19937 rng(2024);
  int masks = 0, decided = 0, gpu_decided = 0;
  for (int iter = 0; iter < 600; ++iter) {
    testing::RandomMod mod = testing::random_mask(rng, 1 + iter % 6);
    MaskMod m("random", BoolExpr(mod.body));
    try {
      IntervalAnalysis probe(mod.body, mod.bindings);
    } catch (const Error&) {
      continue; // folding revealed a division by a constant zero
    }
    ++masks;
    decided += check_sound(m, mod.bindings, rng, 4, 40, 24, &gpu_decided);
    decided += check_sound(m, mod.bindings, rng, 2, 10000, 64, &gpu_decided);
  }
  CHECK(masks > 500);
  CHECK(decided > 500);
  CHECK(gpu_decided > 300);
}

TEST_CASE("interval: ranges near the int32 limits stay sound", "[compiler][interval]") {
  IntExpr q = var_q(), kv = var_kv();
  std::vector<MaskMod> masks = {MaskMod("wrap_add", q + 10 > kv), MaskMod("wrap_mul", q * 3 < kv),
                                MaskMod("wrap_neg", -q <= kv),    MaskMod("wrap_abs", abs(q) >= 0),
                                MaskMod("div", q / -1 < 0),       MaskMod("mod", q % 7 == kv % 7)};
  std::mt19937 rng(5);
  for (const MaskMod& m : masks) {
    IntervalAnalysis ia(m.body());
    Program prog(m.body());
    const GpuProgram gpu(m, {});
    for (int64_t base : {int64_t{INT_MAX} - 40, int64_t{INT_MIN}, int64_t{-20}, int64_t{0}}) {
      Tile t{{0, 0}, {0, 0}, {base, base + 30}, {base, base + 30}};
      for (int shift : {0, 5}) {
        t.kv = {base + shift, base + 30};
        Truth got = ia.classify(t);
        INFO(m.name() << " base " << base);
        if (got != Truth::Unknown)
          CHECK(got == brute_force(prog, t));
        got = gpu.classify(t);
        if (got != Truth::Unknown)
          CHECK(got == brute_force(prog, t));
      }
    }
  }
}

TEST_CASE("interval: a data-indexed load that may fall outside leaves its tile undecided",
          "[compiler][interval]") {
  // jagged_causal reads offsets[seq_idx[q]]: tiles whose ids stay inside offsets are decided
  // as before; a tile holding an id outside offsets is Unknown for the CPU analysis and the GPU
  // builder's program, so its points are evaluated and the bad one raises (or reports).
  const std::vector<int32_t> offsets = {0, 100, 300};
  std::vector<int32_t> seq(300, 0);
  for (int i = 100; i < 300; ++i)
    seq[i] = 1;
  seq[250] = 7;
  const MaskMod m = seeds::jagged_causal(offsets, seq);
  const IntervalAnalysis cpu(m.body());
  const GpuProgram gpu(m, {});
  for (const auto& [tile, want] : {std::pair{qkv(50, 99, 0, 40), Truth::True},
                                   {qkv(0, 40, 150, 199), Truth::False},
                                   {qkv(200, 260, 150, 199), Truth::Unknown},
                                   {qkv(120, 199, 240, 260), Truth::Unknown}}) {
    INFO("q [" << tile.q.lo << ", " << tile.q.hi << "], kv [" << tile.kv.lo << ", " << tile.kv.hi
               << "]");
    CHECK(name(cpu.classify(tile)) == std::string(name(want)));
    CHECK(name(gpu.classify(tile)) == std::string(name(want)));
  }
}
