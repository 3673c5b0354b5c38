// The CPU block-mask builder against brute force (the dense mask reduced per
// tile), the index arrays' layout and transposes, torch's sparsity and picture.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "flexjit/blockmask/BlockMask.h"
#include "flexjit/blockmask/DeviceCopy.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;

namespace {

// Tile states [B, H, nq, nkv] from the dense mask, over in-range elements only.
std::vector<uint8_t> brute_force_states(const MaskMod& mod, int B, int H, int Q, int KV,
                                        const BlockMaskOptions& options) {
  const std::vector<uint8_t> dense = create_mask(mod, B, H, Q, KV, options.bindings);
  const int nq = (Q + options.q_block - 1) / options.q_block;
  const int nkv = (KV + options.kv_block - 1) / options.kv_block;
  std::vector<int64_t> ones(static_cast<size_t>(B) * H * nq * nkv, 0);
  std::vector<int64_t> count(ones.size(), 0);
  for (int bh = 0; bh < B * H; ++bh)
    for (int q = 0; q < Q; ++q)
      for (int kv = 0; kv < KV; ++kv) {
        const size_t tile =
            (static_cast<size_t>(bh) * nq + q / options.q_block) * nkv + kv / options.kv_block;
        ones[tile] += dense[(static_cast<size_t>(bh) * Q + q) * KV + kv];
        count[tile] += 1;
      }
  std::vector<uint8_t> states(ones.size());
  for (size_t i = 0; i < states.size(); ++i)
    states[i] = ones[i] == 0 ? 0 : ones[i] == count[i] ? 2 : 1;
  return states;
}

// The index arrays are exactly the ordered lists of the states, both ways.
void check_layout(const BlockMask& bm) {
  const std::vector<uint8_t> states = bm.states();
  const int nq = bm.num_q_blocks, nkv = bm.num_kv_blocks;
  for (int bh = 0; bh < bm.B * bm.H; ++bh) {
    const uint8_t* s = states.data() + static_cast<size_t>(bh) * nq * nkv;
    for (int qb = 0; qb < nq; ++qb) {
      std::vector<int32_t> partial(nkv, 0), full(nkv, 0);
      int np = 0, nf = 0;
      for (int kb = 0; kb < nkv; ++kb) {
        if (s[qb * nkv + kb] == 1)
          partial[np++] = kb;
        if (s[qb * nkv + kb] == 2)
          full[nf++] = kb;
        CHECK(bm.tile_state(bh / bm.H, bh % bm.H, qb, kb) == s[qb * nkv + kb]);
      }
      const size_t row = static_cast<size_t>(bh) * nq + qb;
      REQUIRE(bm.kv_num_blocks[row] == np);
      REQUIRE(bm.full_kv_num_blocks[row] == nf);
      REQUIRE(std::equal(full.begin(), full.end(), bm.full_kv_indices.begin() + row * nkv));
      REQUIRE(std::equal(partial.begin(), partial.end(), bm.kv_indices.begin() + row * nkv));
    }
    for (int kb = 0; kb < nkv; ++kb) {
      std::vector<int32_t> partial(nq, 0), full(nq, 0);
      int np = 0, nf = 0;
      for (int qb = 0; qb < nq; ++qb) {
        if (s[qb * nkv + kb] == 1)
          partial[np++] = qb;
        if (s[qb * nkv + kb] == 2)
          full[nf++] = qb;
      }
      const size_t col = static_cast<size_t>(bh) * nkv + kb;
      REQUIRE(bm.q_num_blocks[col] == np);
      REQUIRE(bm.full_q_num_blocks[col] == nf);
      REQUIRE(std::equal(partial.begin(), partial.end(), bm.q_indices.begin() + col * nq));
      REQUIRE(std::equal(full.begin(), full.end(), bm.full_q_indices.begin() + col * nq));
    }
  }
}

void check_builder(const MaskMod& mod, int B, int H, int Q, int KV,
                   const BlockMaskOptions& options = {}) {
  INFO(mod.name() << " B=" << B << " H=" << H << " Q=" << Q << " KV=" << KV
                  << " blocks=" << options.q_block << "x" << options.kv_block);
  const BlockMask bm = create_block_mask(mod, B, H, Q, KV, options);
  REQUIRE(bm.B == B);
  REQUIRE(bm.H == H);
  REQUIRE(bm.num_q_blocks == (Q + options.q_block - 1) / options.q_block);
  REQUIRE(bm.num_kv_blocks == (KV + options.kv_block - 1) / options.kv_block);
  REQUIRE(bm.states() == brute_force_states(mod, B, H, Q, KV, options));
  check_layout(bm);
}

// Documents of random lengths 1..max_len covering `length` tokens.
std::vector<int32_t> random_documents(int length, int max_len, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids;
  for (int doc = 0; static_cast<int>(ids.size()) < length; ++doc)
    ids.insert(ids.end(), std::uniform_int_distribution<int>(1, max_len)(rng), doc);
  ids.resize(static_cast<size_t>(length));
  return ids;
}

const std::vector<std::pair<int, int>> kSizes = {{1024, 1024}, {1000, 1000}, {777, 1300},
                                                 {1, 1},       {129, 129},   {300, 129}};

} // namespace

TEST_CASE("create_block_mask equals brute force for the seed masks", "[blockmask]") {
  const std::vector<int32_t> docs = random_documents(1300, 300, 7);
  const std::vector<int32_t> offsets = {0, 100, 250, 600, 1000, 1300};
  std::vector<int32_t> seq_idx;
  for (size_t s = 0; s + 1 < offsets.size(); ++s)
    seq_idx.insert(seq_idx.end(), static_cast<size_t>(offsets[s + 1] - offsets[s]),
                   static_cast<int32_t>(s));
  const std::vector<MaskMod> masks = {
      seeds::causal(),
      seeds::sliding_window(256),
      seeds::prefix_lm(300),
      seeds::document(docs),
      seeds::sasa(32, 3),
      seeds::natten(32, 32, 7, 7),
      seeds::jagged_causal(offsets, seq_idx),
      noop_mask(),
  };
  for (const MaskMod& mod : masks)
    for (auto [Q, KV] : kSizes)
      check_builder(mod, 1, 1, Q, KV);
}

TEST_CASE("create_block_mask: other block sizes and broadcast B, H", "[blockmask]") {
  const std::vector<int32_t> docs = random_documents(1024, 100, 3);
  BlockMaskOptions options;
  options.q_block = 64;
  options.kv_block = 32;
  check_builder(seeds::causal(), 2, 3, 777, 1000, options);
  check_builder(seeds::document(docs), 1, 2, 1000, 1024, options);
  options.q_block = 16;
  options.kv_block = 256;
  check_builder(seeds::sasa(16, 2), 1, 1, 1024, 1024, options);
  check_builder(seeds::natten(32, 32, 5, 3), 1, 1, 1024, 1024, options);
}

TEST_CASE("create_block_mask: a mask that depends on h and b", "[blockmask]") {
  const MaskMod per_head = mask_mod("per_head_window", [](Idx, Idx h, Idx q, Idx kv) {
    return q >= kv && q - kv <= (h + 1) * 100;
  });
  check_builder(per_head, 1, 3, 1000, 1000);
  check_builder(per_head, 2, 3, 777, 1300, {64, 64, {}});
  // q block 7 against kv block 5: q - kv in [129, 383].
  const BlockMask bm = create_block_mask(per_head, 1, 3, 1024, 1024);
  REQUIRE(bm.tile_state(0, 0, 7, 5) == 0);
  REQUIRE(bm.tile_state(0, 2, 7, 5) == 1);

  const MaskMod per_batch =
      mask_mod("per_batch_offset", [](Idx b, Idx, Idx q, Idx kv) { return q + b * 200 >= kv; });
  check_builder(per_batch, 3, 2, 1000, 1000);
}

TEST_CASE("create_block_mask: flamingo cross attention, Q != KV", "[blockmask]") {
  const std::vector<int32_t> image_of_token = [] {
    std::vector<int32_t> v;
    for (int i = 0; i < 4 * 16; ++i)
      v.push_back(i / 16);
    return v;
  }();
  const std::vector<int32_t> intervals = {0, 10, 10, 30, 30, 50, 50, 100};
  const MaskMod mod = seeds::vision_cross_attention(image_of_token, intervals);
  check_builder(mod, 1, 1, 100, 64, {16, 16, {}});
  check_builder(mod, 1, 1, 129, 64, {32, 8, {}});
  check_builder(mod, 1, 1, 777, 64);
}

TEST_CASE("create_block_mask: call-time bindings override params and buffers", "[blockmask]") {
  const MaskMod swa = seeds::sliding_window(1024);
  BlockMaskOptions options;
  options.bindings.params["window"] = 100;
  check_builder(swa, 1, 1, 1000, 1000, options);
  REQUIRE(create_block_mask(swa, 1, 1, 1024, 1024, options).states() !=
          create_block_mask(swa, 1, 1, 1024, 1024).states());

  const std::vector<int32_t> docs = random_documents(1024, 200, 1);
  const std::vector<int32_t> other = random_documents(1024, 50, 2);
  BlockMaskOptions rebound;
  rebound.bindings.buffers["document_id"] =
      TensorView::contiguous(other.data(), DType::I32, {static_cast<int64_t>(other.size())});
  check_builder(seeds::document(docs), 1, 1, 1024, 1024, rebound);
  REQUIRE(create_block_mask(seeds::document(docs), 1, 1, 1024, 1024, rebound).states() ==
          create_block_mask(seeds::document(other), 1, 1, 1024, 1024).states());
}

TEST_CASE("block_mask_from_states: ordering, padding and transposes", "[blockmask]") {
  // q block 0: full, partial, empty; q block 1: partial, empty, full.
  const std::vector<uint8_t> states = {2, 1, 0, 1, 0, 2};
  const BlockMask bm = block_mask_from_states(states, 1, 1, 256, 300, 128, 128, seeds::causal());
  REQUIRE(bm.num_q_blocks == 2);
  REQUIRE(bm.num_kv_blocks == 3);
  CHECK(bm.kv_num_blocks == std::vector<int32_t>{1, 1});
  CHECK(bm.kv_indices == std::vector<int32_t>{1, 0, 0, 0, 0, 0});
  CHECK(bm.full_kv_num_blocks == std::vector<int32_t>{1, 1});
  CHECK(bm.full_kv_indices == std::vector<int32_t>{0, 0, 0, 2, 0, 0});
  CHECK(bm.q_num_blocks == std::vector<int32_t>{1, 1, 0});
  CHECK(bm.q_indices == std::vector<int32_t>{1, 0, 0, 0, 0, 0});
  CHECK(bm.full_q_num_blocks == std::vector<int32_t>{1, 0, 1});
  CHECK(bm.full_q_indices == std::vector<int32_t>{0, 0, 0, 0, 1, 0});
  CHECK(bm.states() == states);
  CHECK(bm.sparsity() == Approx(100.0 * 2 / 6));
  REQUIRE_THROWS_WITH(block_mask_from_states({1, 2}, 1, 1, 256, 300, 128, 128, {}),
                      Catch::Contains("expected 6 tile states") && Catch::Contains("got 2"));
}

TEST_CASE("sparsity matches torch: causal at 8192 is 49.21875%", "[blockmask]") {
  const BlockMask bm = create_block_mask(seeds::causal(), 1, 1, 8192, 8192);
  REQUIRE(bm.num_q_blocks == 64);
  int64_t nonempty = 0;
  for (size_t i = 0; i < bm.kv_num_blocks.size(); ++i)
    nonempty += bm.kv_num_blocks[i] + bm.full_kv_num_blocks[i];
  REQUIRE(nonempty == 2080);
  REQUIRE(bm.sparsity() == Approx((1.0 - 2080.0 / 4096.0) * 100.0));
  REQUIRE(bm.sparsity() == Approx(49.21875));
  REQUIRE(create_block_mask(noop_mask(), 1, 1, 1000, 1000).sparsity() == 0.0);
}

TEST_CASE("to_string matches torch's BlockMask picture", "[blockmask]") {
  const BlockMask bm = create_block_mask(seeds::causal(), 1, 1, 1024, 1024);
  const std::string expected = "BlockMask(shape=(1, 1, 1024, 1024), sparsity=43.75%, \n"
                               "(0, 0)\n"
                               "██              \n"
                               "████            \n"
                               "██████          \n"
                               "████████        \n"
                               "██████████      \n"
                               "████████████    \n"
                               "██████████████  \n"
                               "████████████████\n"
                               ")";
  REQUIRE(bm.to_string() == expected);

  // 16 x 16 tiles summarized 2 x 2 per cell: the diagonal cells mix full and
  // empty tiles ("░░").
  const BlockMask big = create_block_mask(seeds::causal(), 1, 1, 2048, 2048);
  const std::string summarized = "BlockMask(shape=(1, 1, 2048, 2048), sparsity=46.88%, \n"
                                 "(0, 0)\n"
                                 "░░\n"
                                 "██░░\n"
                                 "████░░\n"
                                 "██████░░\n"
                                 "████████░░\n"
                                 "██████████░░\n"
                                 "████████████░░\n"
                                 "██████████████░░\n"
                                 ")";
  std::string got = big.to_string(8);
  // Rows carry trailing "  " cells; compare without them.
  std::string trimmed;
  for (size_t start = 0; start < got.size();) {
    size_t end = got.find('\n', start);
    end = end == std::string::npos ? got.size() : end;
    std::string line = got.substr(start, end - start);
    if (line.rfind("BlockMask(", 0) != 0)
      line.erase(line.find_last_not_of(' ') + 1);
    trimmed += line + (end < got.size() ? "\n" : "");
    start = end + 1;
  }
  REQUIRE(trimmed == summarized);
}

TEST_CASE("to_string: one picture per (b, h), up to the limit", "[blockmask]") {
  const MaskMod per_head = mask_mod(
      "per_head", [](Idx, Idx h, Idx q, Idx kv) { return q >= kv && q - kv <= (h + 1) * 128; });
  const BlockMask bm = create_block_mask(per_head, 1, 6, 512, 512);
  const std::string s = bm.to_string(20, 4);
  CHECK_THAT(s, Catch::StartsWith("BlockMask(shape=(1, 6, 512, 512), sparsity="));
  CHECK_THAT(s, Catch::Contains("(0, 0)\n") && Catch::Contains("(0, 3)\n"));
  CHECK_THAT(s, !Catch::Contains("(0, 4)"));
  CHECK_THAT(s, Catch::Contains("\n...\nTo print out more, set BlockMask.to_string(limit=N)\n"));
  CHECK_THAT(s, Catch::EndsWith("choose a specific batch or head\n)"));
  CHECK_THAT(bm.to_string(20, 10), Catch::Contains("(0, 5)\n"));

  // grid <= 0: one cell per tile, like torch's grid_size=-1.
  const BlockMask causal = create_block_mask(seeds::causal(), 1, 1, 64 * 128, 64 * 128);
  const std::string full = causal.to_string(-1);
  CHECK(std::count(full.begin(), full.end(), '\n') == 1 + 1 + 64);
  CHECK_THAT(full, Catch::Contains("(0, 0)\n██" + std::string(63 * 2, ' ') + "\n"));
}

TEST_CASE("block mask argument errors name the bad value", "[blockmask]") {
  const MaskMod causal = seeds::causal();
  REQUIRE_THROWS_WITH(create_block_mask(causal, 1, 1, 1024, 1024, {100, 128, {}}),
                      Catch::Contains("100") && Catch::Contains("power of two"));
  REQUIRE_THROWS_WITH(create_block_mask(causal, 1, 1, 1024, 1024, {128, 96, {}}),
                      Catch::Contains("kv_block") && Catch::Contains("96") &&
                          Catch::Contains("power of two"));
  REQUIRE_THROWS_WITH(create_block_mask(causal, 1, 1, 0, 1024),
                      Catch::Contains("q_len") && Catch::Contains("got 0"));
  REQUIRE_THROWS_WITH(create_block_mask(causal, 1, 1, -5, 1024),
                      Catch::Contains("q_len") && Catch::Contains("-5"));
  REQUIRE_THROWS_WITH(create_block_mask(causal, 1, 1, 1024, -7),
                      Catch::Contains("kv_len") && Catch::Contains("-7"));
  REQUIRE_THROWS_WITH(create_block_mask(causal, 0, 1, 1024, 1024),
                      Catch::Contains("B ") && Catch::Contains("got 0"));
  REQUIRE_THROWS_WITH(create_block_mask(causal, 1, -2, 1024, 1024),
                      Catch::Contains("H ") && Catch::Contains("-2"));
  REQUIRE_THROWS_WITH(create_mask(causal, 1, 1, 0, 10), Catch::Contains("got 0"));
  REQUIRE_THROWS_WITH(create_mask(causal, 64, 64, 65536, 65536),
                      Catch::Contains("17592186044416 bytes"));
}

// The persistent forward's q-tile order (blockmask/DeviceCopy.h): heaviest first by the
// mask's kv blocks per q block, ties the later tile first.
TEST_CASE("blockmask: q tiles heaviest first for the persistent forward", "[blockmask]") {
  const BlockMask causal = create_block_mask(seeds::causal(), 1, 1, 1000, 1000);
  CHECK(heaviest_q_tiles_first(causal, 128) == std::vector<int32_t>{7, 6, 5, 4, 3, 2, 1, 0});
  // Documents of 300, 100 and 600 tokens: q block 2 (rows 256..383, docs 0 and 1) visits kv
  // blocks 0-2, more than blocks 3 and 4 (kv blocks 2-3 and 3-4).
  std::vector<int32_t> ids(1000);
  for (int i = 0; i < 1000; ++i)
    ids[static_cast<size_t>(i)] = i < 300 ? 0 : i < 400 ? 1 : 2;
  const BlockMask doc = create_block_mask(seeds::document(ids), 1, 1, 1000, 1000);
  std::vector<int64_t> work(static_cast<size_t>(doc.num_q_blocks));
  for (int qb = 0; qb < doc.num_q_blocks; ++qb)
    work[static_cast<size_t>(qb)] = doc.kv_num_blocks[static_cast<size_t>(qb)] +
                                    doc.full_kv_num_blocks[static_cast<size_t>(qb)];
  const std::vector<int32_t> order = heaviest_q_tiles_first(doc, 128);
  REQUIRE(order.size() == 8);
  for (size_t i = 0; i + 1 < order.size(); ++i) {
    const int64_t a = work[static_cast<size_t>(order[i])],
                  b = work[static_cast<size_t>(order[i + 1])];
    CHECK((a > b || (a == b && order[i] > order[i + 1])));
  }
  CHECK(order == std::vector<int32_t>{7, 6, 5, 2, 4, 3, 1, 0});
  // q blocks of 256 rows: two tiles of 128 each, the later first.
  BlockMaskOptions wide;
  wide.q_block = 256;
  const BlockMask coarse = create_block_mask(seeds::causal(), 1, 1, 1000, 1000, wide);
  CHECK(heaviest_q_tiles_first(coarse, 128) == std::vector<int32_t>{7, 6, 5, 4, 3, 2, 1, 0});
  // Per-(b, h) masks count every row: batch 1's longer rows decide.
  const BlockMask two = create_block_mask(seeds::causal(), 2, 1, 256, 256);
  CHECK(heaviest_q_tiles_first(two, 128) == std::vector<int32_t>{1, 0});
}
