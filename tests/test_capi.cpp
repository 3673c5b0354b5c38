// The C API (capi/, include/flexjit/flexjit_c.h) against the C++ API it wraps: the seed mods
// printed, read back through the C API, give the C++ text, hash and block masks; bindings and
// DLPack views reach the C++ calls as TensorViews; every error the C layer adds is a status
// with a message naming the value and what was expected (README.md, "Errors", "C API"), kept
// per thread. tests/c_api/test_c_api.c uses the same API from C.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include <flexjit/flexjit.h>
#include <flexjit/flexjit_c.h>

#include "flexjit/compiler/Passes.h"
#include "flexjit/testing/SeedMods.h"

using namespace flexjit;
using Catch::Contains;

namespace {

std::string last_error() {
  return flexjit_last_error();
}

std::string mod_text(flexjit_mod mod) {
  size_t needed = 0;
  REQUIRE(flexjit_mod_text(mod, nullptr, 0, &needed) == FLEXJIT_OK);
  std::string text(needed, '\0');
  REQUIRE(flexjit_mod_text(mod, text.data(), text.size(), nullptr) == FLEXJIT_OK);
  text.resize(needed - 1);
  return text;
}

// A parsed mod, destroyed at scope exit.
struct Mod {
  flexjit_mod handle = nullptr;
  Mod(const std::string& text, bool mask) {
    const flexjit_status s = mask ? flexjit_mask_mod_from_text(text.c_str(), &handle)
                                  : flexjit_score_mod_from_text(text.c_str(), &handle);
    INFO(text << ": " << last_error());
    REQUIRE(s == FLEXJIT_OK);
  }
  ~Mod() { flexjit_mod_destroy(handle); }
};

struct CBindings {
  flexjit_bindings handle = nullptr;
  CBindings() { REQUIRE(flexjit_bindings_create(&handle) == FLEXJIT_OK); }
  ~CBindings() { flexjit_bindings_destroy(handle); }
};

std::vector<uint8_t> c_states(const Mod& mod, int B, int H, int q_len, int kv_len,
                              const flexjit_block_mask_options* options,
                              flexjit_bindings bindings) {
  flexjit_block_mask mask = nullptr;
  INFO(last_error());
  REQUIRE(flexjit_create_block_mask(mod.handle, B, H, q_len, kv_len, options, bindings, &mask) ==
          FLEXJIT_OK);
  flexjit_block_mask_info info{};
  REQUIRE(flexjit_block_mask_get_info(mask, &info) == FLEXJIT_OK);
  std::vector<uint8_t> states(static_cast<size_t>(info.B) * info.H * info.num_q_blocks *
                              info.num_kv_blocks);
  REQUIRE(flexjit_block_mask_states(mask, states.data(), states.size()) == FLEXJIT_OK);
  flexjit_block_mask_destroy(mask);
  return states;
}

flexjit_tensor raw(const TensorView& v) {
  flexjit_tensor t{};
  t.data = const_cast<void*>(v.data);
  t.dtype = static_cast<int32_t>(v.dtype);
  t.device = v.device == Device::Cuda ? FLEXJIT_CUDA : FLEXJIT_HOST;
  t.rank = v.rank;
  for (int i = 0; i < v.rank; ++i) {
    t.sizes[i] = v.sizes[i];
    t.strides[i] = v.strides[i];
  }
  return t;
}

} // namespace

TEST_CASE("capi: mods, block masks and bindings agree with the C++ API", "[capi]") {
  const std::vector<int32_t> ids = seeds::notebook_document_ids(1536); // docs 0 and 1
  std::vector<int32_t> short_ids(1536);
  for (size_t i = 0; i < short_ids.size(); ++i)
    short_ids[i] = static_cast<int32_t>(i / 300);
  const std::vector<MaskMod> masks = {
      seeds::causal(),    seeds::sliding_window(300),  seeds::prefix_lm(200),
      seeds::sasa(32, 3), seeds::natten(32, 48, 5, 7), seeds::document(short_ids)};
  for (const MaskMod& mask : masks) {
    INFO(mask.name());
    const std::string text = print(mask.body());
    const Mod mod(text, true);
    CHECK(flexjit_mod_is_mask(mod.handle) == 1);
    CHECK(mod_text(mod.handle) == text);
    CHECK(flexjit_mod_hash(mod.handle) == structural_hash(mask).hi);
    // The text declares params without their defaults and buffers without data: bind them.
    CBindings bindings;
    BlockMaskOptions cpp;
    cpp.q_block = 64;
    cpp.kv_block = 128;
    for (const char* param : {"window", "prefix_length"})
      REQUIRE(flexjit_bindings_set_param_i32(bindings.handle, param,
                                             std::string(param) == "window" ? 300 : 200) ==
              FLEXJIT_OK);
    const flexjit_tensor doc = raw(TensorView::contiguous(short_ids.data(), DType::I32, {1536}));
    REQUIRE(flexjit_bindings_set_buffer(bindings.handle, "document_id", &doc) == FLEXJIT_OK);
    flexjit_block_mask_options options;
    flexjit_block_mask_options_init(&options);
    options.q_block = 64;
    for (int B : {1, 2})
      CHECK(c_states(mod, B, 1, 1536, 1200, &options, bindings.handle) ==
            create_block_mask(mask, B, 1, 1536, 1200, cpp).states());
  }
  for (const ScoreMod& score :
       {seeds::soft_cap(20.0f), seeds::alibi(8), seeds::checkerboard(), seeds::causal_bias()}) {
    INFO(score.name());
    const std::string text = print(score.body());
    const Mod mod(text, false);
    CHECK(flexjit_mod_is_mask(mod.handle) == 0);
    CHECK(mod_text(mod.handle) == text);
    CHECK(flexjit_mod_hash(mod.handle) == structural_hash(score).hi);
  }
  // Rebinding a buffer by name replaces the view: another document split, another mask.
  const Mod doc_mod(print(seeds::document(ids).body()), true);
  CBindings bindings;
  const flexjit_tensor first = raw(TensorView::contiguous(ids.data(), DType::I32, {1536}));
  const flexjit_tensor second = raw(TensorView::contiguous(short_ids.data(), DType::I32, {1536}));
  REQUIRE(flexjit_bindings_set_buffer(bindings.handle, "document_id", &first) == FLEXJIT_OK);
  CHECK(c_states(doc_mod, 1, 1, 1536, 1536, nullptr, bindings.handle) ==
        create_block_mask(seeds::document(ids), 1, 1, 1536, 1536).states());
  REQUIRE(flexjit_bindings_set_buffer(bindings.handle, "document_id", &second) == FLEXJIT_OK);
  CHECK(c_states(doc_mod, 1, 1, 1536, 1536, nullptr, bindings.handle) ==
        create_block_mask(seeds::document(short_ids), 1, 1, 1536, 1536).states());
}

TEST_CASE("capi: block mask info and picture", "[capi]") {
  const Mod causal("kv_idx <= q_idx", true);
  flexjit_block_mask mask = nullptr;
  REQUIRE(flexjit_create_block_mask(causal.handle, 1, 1, 1024, 1024, nullptr, nullptr, &mask) ==
          FLEXJIT_OK);
  const BlockMask cpp = create_block_mask(seeds::causal(), 1, 1, 1024, 1024);
  flexjit_block_mask_info info{};
  REQUIRE(flexjit_block_mask_get_info(mask, &info) == FLEXJIT_OK);
  CHECK(info.sparsity == cpp.sparsity());
  CHECK(info.sparsity == 43.75);
  for (int grid : {0, 4, 20}) {
    size_t needed = 0;
    REQUIRE(flexjit_block_mask_to_string(mask, grid, 4, nullptr, 0, &needed) == FLEXJIT_OK);
    std::string picture(needed, '\0');
    REQUIRE(flexjit_block_mask_to_string(mask, grid, 4, picture.data(), picture.size(), nullptr) ==
            FLEXJIT_OK);
    picture.resize(needed - 1);
    CHECK(picture == cpp.to_string(grid, 4));
  }
  flexjit_block_mask_destroy(mask);
}

TEST_CASE("capi: null pointers, struct sizes and enum values are Errors", "[capi][errors]") {
  flexjit_mod mod = nullptr;
  CHECK(flexjit_mask_mod_from_text(nullptr, &mod) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("flexjit_mask_mod_from_text: text is NULL; expected a "
                                    "NUL-terminated mod text"));
  CHECK(mod == nullptr);
  const Mod causal("kv_idx <= q_idx", true);
  const Mod score("score * 0.5f", false);

  flexjit_block_mask_options options;
  flexjit_block_mask_options_init(&options);
  options.struct_size = sizeof options + 4;
  flexjit_block_mask mask = nullptr;
  CHECK(flexjit_create_block_mask(causal.handle, 1, 1, 128, 128, &options, nullptr, &mask) ==
        FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("flexjit_create_block_mask: options.struct_size is " +
                                    std::to_string(sizeof options + 4) + "; expected " +
                                    std::to_string(sizeof options) +
                                    " (call flexjit_block_mask_options_init first)"));
  flexjit_block_mask_options_init(&options);
  options.device = 3;
  CHECK(flexjit_create_block_mask(causal.handle, 1, 1, 128, 128, &options, nullptr, &mask) ==
        FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("options.device is 3; expected 0 (FLEXJIT_HOST), 1 "
                                    "(FLEXJIT_CUDA) or 2 (auto)"));
  CHECK(flexjit_create_block_mask(score.handle, 1, 1, 128, 128, nullptr, nullptr, &mask) ==
        FLEXJIT_ERROR);
  CHECK_THAT(last_error(),
             Contains("flexjit_create_block_mask: mask_mod is a score_mod; expected a mask_mod"));
  CHECK(mask == nullptr);

  REQUIRE(flexjit_create_block_mask(causal.handle, 2, 1, 256, 128, nullptr, nullptr, &mask) ==
          FLEXJIT_OK);
  std::vector<uint8_t> states(5, 9);
  CHECK(flexjit_block_mask_states(mask, states.data(), states.size()) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(),
             Contains("count is 5; expected B * H * num_q_blocks * num_kv_blocks = 4"));
  CHECK(states == std::vector<uint8_t>(5, 9));
  CHECK(flexjit_block_mask_states(mask, nullptr, 4) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("out is NULL; expected count bytes"));
  flexjit_block_mask_destroy(mask);

  flexjit_attention_options attention;
  flexjit_attention_options_init(&attention);
  attention.schedule = -1;
  flexjit_tensor t{};
  CHECK(flexjit_flex_attention(&t, &t, &t, &t, &attention) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("flexjit_flex_attention: options.schedule is -1; expected 0 "
                                    "(AUTO), 1 (ONE_TILE_PER_CTA), 2 (PERSISTENT) or 3 "
                                    "(SPLIT_KV)"));
  flexjit_attention_options_init(&attention);
  attention.score_mod = causal.handle;
  CHECK(flexjit_flex_attention(&t, &t, &t, &t, &attention) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("options.score_mod is a mask_mod; expected a score_mod"));
  flexjit_varlen_options varlen;
  flexjit_varlen_options_init(&varlen);
  varlen.causal = 2;
  CHECK(flexjit_attention_forward_varlen(&t, &t, &t, &t, &t, &t, &varlen) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("options.causal is 2; expected 0 or 1"));
  t.rank = 7;
  CHECK(flexjit_flex_attention(&t, &t, &t, &t, nullptr) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("flexjit_flex_attention: q.rank is 7; expected 0 to 4"));
  t.rank = 1;
  t.sizes[0] = -2;
  CHECK(flexjit_flex_attention(&t, &t, &t, &t, nullptr) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("q: size -2 in dimension 0 is negative; expected >= 0"));
  t.sizes[0] = 2;
  CHECK(flexjit_merge_attention(&t, &t, &t, &t, &t, nullptr, nullptr) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(),
             Contains("flexjit_merge_attention: lse is NULL; expected a flexjit_tensor"));
}

TEST_CASE("capi: DLPack tensors and raw views", "[capi][errors]") {
  std::vector<float> data(64);
  int64_t shape[3] = {2, 4, 8};
  DLTensor dl{};
  dl.data = data.data();
  dl.device = {kDLCPU, 0};
  dl.ndim = 3;
  dl.dtype = {kDLFloat, 32, 1};
  dl.shape = shape;
  dl.byte_offset = 4;
  flexjit_tensor t{};
  REQUIRE(flexjit_tensor_from_dlpack(&dl, &t) == FLEXJIT_OK);
  CHECK(t.data == data.data() + 1);
  CHECK(t.dtype == FLEXJIT_F32);
  CHECK(t.rank == 3);
  CHECK((t.strides[0] == 32 && t.strides[1] == 8 && t.strides[2] == 1));

  // A float buffer bound through DLPack reaches a score_mod evaluated by the C++ API: the
  // bindings' view is the DLPack tensor's (byte_offset and strides applied).
  int64_t strides[1] = {4};
  DLManagedTensor managed{};
  managed.dl_tensor = dl;
  managed.dl_tensor.ndim = 1;
  managed.dl_tensor.strides = strides;
  flexjit_tensor via{};
  via.dlpack = &managed;
  via.dtype = 77; // ignored: dlpack wins
  CBindings bindings;
  REQUIRE(flexjit_bindings_set_buffer(bindings.handle, "doc", &via) == FLEXJIT_OK);
  const Mod mod("doc:f32:1[q_idx] <= doc:f32:1[kv_idx]", true);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<float>((i * 37) % 11);
  // Element i is data[1 + 4 i]: 37 % 11 = 4 and 185 % 11 = 9: q 0 attends both, q 1 only kv 1.
  std::vector<float> doc = {data[1], data[5]};
  const MaskMod cpp = mask_mod("m", [&](Idx, Idx, Idx q, Idx kv) {
    FloatBuffer d = buffer_f32("doc", TensorView::contiguous(doc.data(), DType::F32, {2}));
    return d[q] <= d[kv];
  });
  BlockMaskOptions tiles;
  tiles.q_block = tiles.kv_block = 1;
  flexjit_block_mask_options options;
  flexjit_block_mask_options_init(&options);
  options.q_block = options.kv_block = 1;
  CHECK(c_states(mod, 1, 1, 2, 2, &options, bindings.handle) ==
        create_block_mask(cpp, 1, 1, 2, 2, tiles).states());
  CHECK(c_states(mod, 1, 1, 2, 2, &options, bindings.handle) == std::vector<uint8_t>{2, 2, 0, 2});

  dl.dtype = {kDLFloat, 64, 1};
  CHECK(flexjit_tensor_from_dlpack(&dl, &t) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(),
             Contains("flexjit_tensor_from_dlpack: tensor: DLPack dtype (code 2, bits 64, lanes "
                      "1) is not supported; expected int32, float32, float16, bfloat16 or bool "
                      "(code 6, or uint8), one lane"));
  dl.dtype = {kDLFloat, 32, 1};
  dl.device = {kDLVulkan, 0};
  CHECK(flexjit_tensor_from_dlpack(&dl, &t) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("DLPack device type 7 is not supported; expected kDLCPU (1), "
                                    "kDLCUDA (2), kDLCUDAHost (3) or kDLCUDAManaged (13)"));
  dl.device = {kDLCUDAManaged, 0};
  REQUIRE(flexjit_tensor_from_dlpack(&dl, &t) == FLEXJIT_OK);
  CHECK(t.device == FLEXJIT_CUDA);
  dl.ndim = -1;
  CHECK(flexjit_tensor_from_dlpack(&dl, &t) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("DLPack ndim -1 is not supported; expected 0 to 4"));
  dl.ndim = 2;
  dl.shape = nullptr;
  CHECK(flexjit_tensor_from_dlpack(&dl, &t) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("tensor: DLPack shape is NULL; expected ndim sizes"));
  dl.ndim = 0; // a scalar needs no shape
  REQUIRE(flexjit_tensor_from_dlpack(&dl, &t) == FLEXJIT_OK);
  CHECK(t.rank == 0);

  flexjit_tensor bad{};
  bad.dtype = 5;
  CHECK(flexjit_bindings_set_buffer(bindings.handle, "x", &bad) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("flexjit_bindings_set_buffer: tensor.dtype is 5; expected 0 "
                                    "(FLEXJIT_I32), 1 (FLEXJIT_F32), 2 (FLEXJIT_F16), 3 "
                                    "(FLEXJIT_BF16) or 4 (FLEXJIT_BOOL)"));
  bad.dtype = FLEXJIT_F16;
  bad.device = 2;
  CHECK(flexjit_bindings_set_buffer(bindings.handle, "x", &bad) == FLEXJIT_ERROR);
  CHECK_THAT(last_error(), Contains("tensor.device is 2; expected 0 (FLEXJIT_HOST) or 1 "
                                    "(FLEXJIT_CUDA)"));
}

TEST_CASE("capi: errors are per thread, and a missing GPU is FLEXJIT_ERROR_NO_CUDA", "[capi]") {
  std::string other;
  flexjit_mod mod = nullptr;
  CHECK(flexjit_mask_mod_from_text("q_idx >", &mod) == FLEXJIT_ERROR);
  const std::string mine = last_error();
  CHECK_THAT(mine, Contains("line 1, column 8"));
  std::thread([&] {
    other = last_error(); // a fresh thread has no message
    flexjit_mod m = nullptr;
    CHECK(flexjit_score_mod_from_text("score +", &m) == FLEXJIT_ERROR);
    other += "|" + last_error();
  }).join();
  CHECK(other.rfind("|flexjit: line 1, column 8", 0) == 0);
  CHECK(last_error() == mine);

  CHECK(flexjit_cuda_available() == (cuda_available() ? 1 : 0));
  CHECK(flexjit_cuda_unavailable_reason() == cuda_unavailable_reason());
  if (cuda_available()) {
    SUCCEED("a GPU is present: FLEXJIT_ERROR_NO_CUDA is not reachable");
    return;
  }
  const Mod causal("kv_idx <= q_idx", true);
  flexjit_block_mask_options options;
  flexjit_block_mask_options_init(&options);
  options.device = FLEXJIT_CUDA;
  flexjit_block_mask mask = nullptr;
  CHECK(flexjit_create_block_mask(causal.handle, 1, 1, 256, 256, &options, nullptr, &mask) ==
        FLEXJIT_ERROR_NO_CUDA);
  CHECK_THAT(last_error(), Contains("CUDA is not available: " + cuda_unavailable_reason()));
  CHECK(flexjit_check_device_errors(nullptr) == FLEXJIT_ERROR_NO_CUDA);
  // Device views without a device: every check passes, then the driver is missing.
  TensorView v = TensorView::contiguous(nullptr, DType::F16, {1, 1, 128, 64}, Device::Cuda);
  v.data = reinterpret_cast<const void*>(uintptr_t{1} << 20);
  const flexjit_tensor q = raw(v);
  CHECK(flexjit_flex_attention(&q, &q, &q, &q, nullptr) == FLEXJIT_ERROR_NO_CUDA);
  CHECK_THAT(last_error(), Contains("CUDA is not available"));
}
