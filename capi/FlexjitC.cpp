// flexjit's C API (include/flexjit/flexjit_c.h): opaque handles over MaskMod / ScoreMod,
// Bindings and BlockMask, C structs and DLPack tensors mapped onto TensorView and the
// options of the C++ calls. Every entry point runs inside guard(), which turns an exception
// into a status and the per-thread message; what the C++ calls check (shapes, memory,
// dtypes of attention tensors) is left to them, only what C adds (null pointers, struct
// sizes, enum values, DLPack's fields) is checked here.
#include "flexjit/flexjit_c.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flexjit/attention/FlexAttention.h"
#include "flexjit/blockmask/BlockMask.h"
#include "flexjit/compiler/Parser.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Signature.h"
#include "flexjit/runtime/Runtime.h"
#include "flexjit/support/Error.h"

using namespace flexjit;

struct flexjit_mod_s {
  bool is_mask = false;
  MaskMod mask;      // when is_mask
  ScoreMod score;    // otherwise
  std::string text;  // the canonical text, print(body)
  uint64_t hash = 0; // structural_hash(mod).hi
};

struct flexjit_bindings_s {
  Bindings bindings;
};

struct flexjit_block_mask_s {
  BlockMask mask; // holds its own copy of the mask_mod
};

static_assert(FLEXJIT_I32 == static_cast<int>(DType::I32) &&
                  FLEXJIT_F32 == static_cast<int>(DType::F32) &&
                  FLEXJIT_F16 == static_cast<int>(DType::F16) &&
                  FLEXJIT_BF16 == static_cast<int>(DType::BF16) &&
                  FLEXJIT_BOOL == static_cast<int>(DType::Bool),
              "flexjit_dtype follows DType");

namespace {

thread_local std::string last_error;

void set_last_error(const char* message) noexcept {
  try {
    last_error = message;
  } catch (...) { // out of memory for the message itself
    last_error.clear();
  }
}

// runtime/CudaDriver.cpp's message when libcuda, cuInit or a device is missing.
bool is_no_cuda(const Error& e) {
  return std::string_view(e.what()).starts_with("flexjit: CUDA is not available");
}

// Runs `body`; an exception becomes a status and the thread's message.
template <class F> flexjit_status guard(F&& body) noexcept {
  try {
    body();
    return FLEXJIT_OK;
  } catch (const Error& e) {
    set_last_error(e.what());
    return is_no_cuda(e) ? FLEXJIT_ERROR_NO_CUDA : FLEXJIT_ERROR;
  } catch (const std::exception& e) {
    try {
      set_last_error(("flexjit: internal error: " + std::string(e.what())).c_str());
    } catch (...) {
      set_last_error(e.what());
    }
    return FLEXJIT_ERROR_INTERNAL;
  } catch (...) {
    set_last_error("flexjit: internal error: an exception that is not a std::exception");
    return FLEXJIT_ERROR_INTERNAL;
  }
}

// `fn`: the C function's name; `what`: the argument; `expected`: what it should be.
void require(const void* p, const char* fn, std::string_view what, std::string_view expected) {
  if (!p)
    fail("{}: {} is NULL; expected {}", fn, what, expected);
}

template <class Options>
void require_size(const Options& options, const char* fn, std::string_view what,
                  std::string_view init) {
  if (options.struct_size != sizeof(Options))
    fail("{}: {}.struct_size is {}; expected {} (call {}_init first)", fn, what,
         options.struct_size, sizeof(Options), init);
}

// A value outside its enum or flag range.
[[noreturn]] void bad_value(const char* fn, std::string_view what, long long value,
                            std::string_view expected) {
  fail("{}: {} is {}; expected {}", fn, what, value, expected);
}

bool flag(int32_t value, const char* fn, std::string_view what) {
  if (value != 0 && value != 1)
    bad_value(fn, what, value, "0 or 1");
  return value == 1;
}

// The kDLBool type code of DLPack 0.8 and later (Debian's dlpack.h, 0.6, predates it).
constexpr int kDLBoolCode = 6;

TensorView view_of_dlpack(const DLTensor& t, const char* fn, const std::string& what) {
  TensorView v;
  if (t.ndim < 0 || t.ndim > kMaxRank)
    fail("{}: {}DLPack ndim {} is not supported; expected 0 to {}", fn, what, t.ndim, kMaxRank);
  const DLDataType d = t.dtype;
  const bool one_lane = d.lanes == 1;
  if (one_lane && d.code == kDLInt && d.bits == 32)
    v.dtype = DType::I32;
  else if (one_lane && d.code == kDLFloat && d.bits == 32)
    v.dtype = DType::F32;
  else if (one_lane && d.code == kDLFloat && d.bits == 16)
    v.dtype = DType::F16;
  else if (one_lane && d.code == kDLBfloat && d.bits == 16)
    v.dtype = DType::BF16;
  else if (one_lane && (d.code == kDLBoolCode || d.code == kDLUInt) && d.bits == 8)
    v.dtype = DType::Bool;
  else
    fail("{}: {}DLPack dtype (code {}, bits {}, lanes {}) is not supported; expected int32, "
         "float32, float16, bfloat16 or bool (code 6, or uint8), one lane",
         fn, what, d.code, d.bits, d.lanes);
  switch (static_cast<int>(t.device.device_type)) {
  case kDLCPU:
    v.device = Device::Host;
    break;
  case kDLCUDA:
  case kDLCUDAHost:
  case kDLCUDAManaged:
    v.device = Device::Cuda;
    break;
  default:
    fail("{}: {}DLPack device type {} is not supported; expected kDLCPU (1), kDLCUDA (2), "
         "kDLCUDAHost (3) or kDLCUDAManaged (13)",
         fn, what, static_cast<int>(t.device.device_type));
  }
  v.rank = t.ndim;
  if (v.rank > 0)
    require(t.shape, fn, what + "DLPack shape", "ndim sizes");
  for (int i = 0; i < v.rank; ++i) {
    if (t.shape[i] < 0)
      fail("{}: {}size {} in dimension {} is negative; expected >= 0", fn, what, t.shape[i], i);
    v.sizes[i] = t.shape[i];
  }
  int64_t stride = 1; // NULL strides: row-major
  for (int i = v.rank - 1; i >= 0; --i) {
    v.strides[i] = t.strides ? t.strides[i] : stride;
    stride *= std::max<int64_t>(v.sizes[i], 1);
  }
  v.data = t.data ? static_cast<const char*>(t.data) + t.byte_offset : nullptr;
  return v;
}

// The view a flexjit_tensor stands for; `name` names it in messages ("q", "options.lse").
TensorView view_of(const flexjit_tensor* t, const char* fn, std::string_view name) {
  require(t, fn, name, "a flexjit_tensor");
  const std::string what = std::string(name) + ": ";
  if (t->dlpack)
    return view_of_dlpack(t->dlpack->dl_tensor, fn, what);
  TensorView v;
  if (t->dtype < FLEXJIT_I32 || t->dtype > FLEXJIT_BOOL)
    bad_value(fn, std::string(name) + ".dtype", t->dtype,
              "0 (FLEXJIT_I32), 1 (FLEXJIT_F32), 2 (FLEXJIT_F16), 3 (FLEXJIT_BF16) or 4 "
              "(FLEXJIT_BOOL)");
  if (t->device != FLEXJIT_HOST && t->device != FLEXJIT_CUDA)
    bad_value(fn, std::string(name) + ".device", t->device, "0 (FLEXJIT_HOST) or 1 (FLEXJIT_CUDA)");
  if (t->rank < 0 || t->rank > FLEXJIT_MAX_RANK)
    bad_value(fn, std::string(name) + ".rank", t->rank, "0 to 4 (FLEXJIT_MAX_RANK)");
  v.dtype = static_cast<DType>(t->dtype);
  v.device = t->device == FLEXJIT_CUDA ? Device::Cuda : Device::Host;
  v.rank = t->rank;
  for (int i = 0; i < v.rank; ++i) {
    if (t->sizes[i] < 0)
      fail("{}: {}size {} in dimension {} is negative; expected >= 0", fn, what, t->sizes[i], i);
    v.sizes[i] = t->sizes[i];
    v.strides[i] = t->strides[i];
  }
  v.data = t->data;
  return v;
}

// A view of an optional tensor argument: `storage` holds it, nullptr when `t` is NULL.
const TensorView* optional_view(const flexjit_tensor* t, TensorView& storage, const char* fn,
                                std::string_view name) {
  if (!t)
    return nullptr;
  storage = view_of(t, fn, name);
  return &storage;
}

// The (buffer, capacity, needed) protocol of flexjit_c.h.
void write_string(const std::string& text, char* buffer, size_t capacity, size_t* needed,
                  const char* fn) {
  if (capacity > 0)
    require(buffer, fn, "buffer", "capacity bytes (or capacity 0)");
  if (capacity > 0) {
    const size_t n = std::min(text.size(), capacity - 1);
    std::memcpy(buffer, text.data(), n);
    buffer[n] = '\0';
  }
  if (needed)
    *needed = text.size() + 1;
}

const flexjit_mod_s& mod_of(flexjit_mod mod, bool mask, const char* fn, std::string_view what) {
  require(mod, fn, what, mask ? "a mask_mod" : "a score_mod");
  if (mod->is_mask != mask)
    fail("{}: {} is a {}; expected a {}", fn, what, mod->is_mask ? "mask_mod" : "score_mod",
         mask ? "mask_mod" : "score_mod");
  return *mod;
}

flexjit_status mod_from_text(const char* text, flexjit_mod* out, bool mask, const char* fn) {
  return guard([&] {
    require(text, fn, "text", "a NUL-terminated mod text");
    require(out, fn, "out", "a flexjit_mod to write");
    auto mod = std::make_unique<flexjit_mod_s>();
    mod->is_mask = mask;
    if (mask) {
      mod->mask = parse_mask_mod(text);
      mod->text = print(mod->mask.body());
      mod->hash = structural_hash(mod->mask).hi;
    } else {
      mod->score = parse_score_mod(text);
      mod->text = print(mod->score.body());
      mod->hash = structural_hash(mod->score).hi;
    }
    *out = mod.release();
  });
}

std::string signature_text(const flexjit_mod_s& mod) {
  const Expr body = mod.is_mask ? Expr(mod.mask.body()) : Expr(mod.score.body());
  const ModSignature sig = ModSignature::of({body});
  std::vector<std::pair<std::string, std::string>> lines;
  for (const auto& b : sig.buffers)
    lines.emplace_back(b->name,
                       fmt::format("buffer {} {} {}\n", b->name, to_string(b->dtype), b->rank));
  for (const auto* params : {&sig.int_params, &sig.float_params})
    for (const auto& p : *params)
      lines.emplace_back(p->name, fmt::format("param {} {}\n", p->name, to_string(p->type)));
  std::stable_sort(lines.begin(), lines.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string text;
  for (const auto& line : lines)
    text += line.second;
  return text;
}

// The C++ options of a flexjit_attention_options; the views it points to live here too.
struct AttentionArgs {
  FlexAttentionOptions options;
  TensorView lse, kv_lens, block_table;
  KvCache kv_cache;

  AttentionArgs(const flexjit_attention_options* o, const char* fn) {
    if (!o)
      return;
    require_size(*o, fn, "options", "flexjit_attention_options");
    if (o->score_mod)
      options.score_mod = mod_of(o->score_mod, false, fn, "options.score_mod").score;
    if (o->block_mask)
      options.block_mask = &o->block_mask->mask;
    if (flag(o->has_scale, fn, "options.has_scale"))
      options.scale = o->scale;
    options.lse = optional_view(o->lse, lse, fn, "options.lse");
    options.stream = o->stream;
    if (o->bindings)
      options.bindings = o->bindings->bindings;
    using Schedule = FlexAttentionOptions::Schedule;
    switch (o->schedule) {
    case FLEXJIT_SCHEDULE_AUTO:
      options.schedule = Schedule::Auto;
      break;
    case FLEXJIT_SCHEDULE_ONE_TILE_PER_CTA:
      options.schedule = Schedule::OneTilePerCta;
      break;
    case FLEXJIT_SCHEDULE_PERSISTENT:
      options.schedule = Schedule::Persistent;
      break;
    case FLEXJIT_SCHEDULE_SPLIT_KV:
      options.schedule = Schedule::SplitKv;
      break;
    default:
      bad_value(fn, "options.schedule", o->schedule,
                "0 (AUTO), 1 (ONE_TILE_PER_CTA), 2 (PERSISTENT) or 3 (SPLIT_KV)");
    }
    if (o->kv_cache) {
      kv_cache = kv_cache_of(*o->kv_cache, fn, "options.kv_cache", kv_lens, block_table);
      options.kv_cache = &kv_cache;
    }
  }
  AttentionArgs(const AttentionArgs&) = delete; // options points into *this
  AttentionArgs& operator=(const AttentionArgs&) = delete;

  static KvCache kv_cache_of(const flexjit_kv_cache& c, const char* fn, const std::string& what,
                             TensorView& kv_lens, TensorView& block_table) {
    KvCache cache;
    cache.kv_lens = optional_view(c.kv_lens, kv_lens, fn, what + ".kv_lens");
    cache.block_table = optional_view(c.block_table, block_table, fn, what + ".block_table");
    cache.page_size = c.page_size;
    return cache;
  }
};

} // namespace

extern "C" {

const char* flexjit_last_error(void) {
  return last_error.c_str();
}

int flexjit_api_version(void) {
  return FLEXJIT_C_API_VERSION;
}

int flexjit_cuda_available(void) {
  return cuda_available() ? 1 : 0;
}

const char* flexjit_cuda_unavailable_reason(void) {
  // The driver is loaded once per process, so the reason never changes.
  static const std::string reason = [] {
    try {
      return cuda_unavailable_reason();
    } catch (...) {
      return std::string("unknown");
    }
  }();
  return reason.c_str();
}

// ---- Tensors ---------------------------------------------------------------------------------

flexjit_status flexjit_tensor_from_dlpack(const DLTensor* tensor, flexjit_tensor* out) {
  constexpr const char* fn = "flexjit_tensor_from_dlpack";
  return guard([&] {
    require(tensor, fn, "tensor", "a DLTensor");
    require(out, fn, "out", "a flexjit_tensor to write");
    const TensorView v = view_of_dlpack(*tensor, fn, "tensor: ");
    flexjit_tensor t{};
    t.data = const_cast<void*>(v.data);
    t.dtype = static_cast<int32_t>(v.dtype);
    t.device = v.device == Device::Cuda ? FLEXJIT_CUDA : FLEXJIT_HOST;
    t.rank = v.rank;
    for (int i = 0; i < v.rank; ++i) {
      t.sizes[i] = v.sizes[i];
      t.strides[i] = v.strides[i];
    }
    *out = t;
  });
}

// ---- Mods from text ----------------------------------------------------------------------

flexjit_status flexjit_mask_mod_from_text(const char* text, flexjit_mod* out) {
  return mod_from_text(text, out, true, "flexjit_mask_mod_from_text");
}

flexjit_status flexjit_score_mod_from_text(const char* text, flexjit_mod* out) {
  return mod_from_text(text, out, false, "flexjit_score_mod_from_text");
}

int flexjit_mod_is_mask(flexjit_mod mod) {
  return mod && mod->is_mask ? 1 : 0;
}

flexjit_status flexjit_mod_text(flexjit_mod mod, char* buffer, size_t capacity, size_t* needed) {
  constexpr const char* fn = "flexjit_mod_text";
  return guard([&] {
    require(mod, fn, "mod", "a flexjit_mod");
    write_string(mod->text, buffer, capacity, needed, fn);
  });
}

uint64_t flexjit_mod_hash(flexjit_mod mod) {
  return mod ? mod->hash : 0;
}

flexjit_status flexjit_mod_signature(flexjit_mod mod, char* buffer, size_t capacity,
                                     size_t* needed) {
  constexpr const char* fn = "flexjit_mod_signature";
  return guard([&] {
    require(mod, fn, "mod", "a flexjit_mod");
    write_string(signature_text(*mod), buffer, capacity, needed, fn);
  });
}

void flexjit_mod_destroy(flexjit_mod mod) {
  delete mod;
}

// ---- Bindings ----------------------------------------------------------------------------

flexjit_status flexjit_bindings_create(flexjit_bindings* out) {
  return guard([&] {
    require(out, "flexjit_bindings_create", "out", "a flexjit_bindings to write");
    *out = new flexjit_bindings_s();
  });
}

flexjit_status flexjit_bindings_set_buffer(flexjit_bindings bindings, const char* name,
                                           const flexjit_tensor* tensor) {
  constexpr const char* fn = "flexjit_bindings_set_buffer";
  return guard([&] {
    require(bindings, fn, "bindings", "a flexjit_bindings");
    require(name, fn, "name", "the buffer's name");
    const TensorView v = view_of(tensor, fn, "tensor");
    bindings->bindings.buffers.insert_or_assign(name, v);
  });
}

flexjit_status flexjit_bindings_set_param_i32(flexjit_bindings bindings, const char* name,
                                              int32_t value) {
  constexpr const char* fn = "flexjit_bindings_set_param_i32";
  return guard([&] {
    require(bindings, fn, "bindings", "a flexjit_bindings");
    require(name, fn, "name", "the param's name");
    bindings->bindings.params.insert_or_assign(name, static_cast<double>(value));
  });
}

flexjit_status flexjit_bindings_set_param_f32(flexjit_bindings bindings, const char* name,
                                              float value) {
  constexpr const char* fn = "flexjit_bindings_set_param_f32";
  return guard([&] {
    require(bindings, fn, "bindings", "a flexjit_bindings");
    require(name, fn, "name", "the param's name");
    bindings->bindings.params.insert_or_assign(name, static_cast<double>(value));
  });
}

void flexjit_bindings_destroy(flexjit_bindings bindings) {
  delete bindings;
}

// ---- Block masks -------------------------------------------------------------------------

void flexjit_block_mask_options_init(flexjit_block_mask_options* options) {
  if (!options)
    return;
  *options = flexjit_block_mask_options{};
  options->struct_size = sizeof(flexjit_block_mask_options);
  options->q_block = kDefaultBlockSize;
  options->kv_block = kDefaultBlockSize;
  options->device = FLEXJIT_HOST;
  options->host_arrays = 1;
}

flexjit_status flexjit_create_block_mask(flexjit_mod mask_mod, int32_t B, int32_t H, int32_t q_len,
                                         int32_t kv_len, const flexjit_block_mask_options* options,
                                         flexjit_bindings bindings, flexjit_block_mask* out) {
  constexpr const char* fn = "flexjit_create_block_mask";
  return guard([&] {
    const flexjit_mod_s& mod = mod_of(mask_mod, true, fn, "mask_mod");
    require(out, fn, "out", "a flexjit_block_mask to write");
    BlockMaskOptions o;
    if (options) {
      require_size(*options, fn, "options", "flexjit_block_mask_options");
      o.q_block = options->q_block;
      o.kv_block = options->kv_block;
      switch (options->device) {
      case FLEXJIT_HOST:
        o.device = Device::Host;
        break;
      case FLEXJIT_CUDA:
        o.device = Device::Cuda;
        break;
      case 2:
        o.device = Device::Auto;
        break;
      default:
        bad_value(fn, "options.device", options->device,
                  "0 (FLEXJIT_HOST), 1 (FLEXJIT_CUDA) or 2 (auto)");
      }
      o.host_arrays = flag(options->host_arrays, fn, "options.host_arrays");
    }
    if (bindings)
      o.bindings = bindings->bindings;
    auto mask = std::make_unique<flexjit_block_mask_s>();
    mask->mask = create_block_mask(mod.mask, B, H, q_len, kv_len, o);
    *out = mask.release();
  });
}

flexjit_status flexjit_block_mask_get_info(flexjit_block_mask mask, flexjit_block_mask_info* out) {
  constexpr const char* fn = "flexjit_block_mask_get_info";
  return guard([&] {
    require(mask, fn, "mask", "a flexjit_block_mask");
    require(out, fn, "out", "a flexjit_block_mask_info to write");
    const BlockMask& m = mask->mask;
    flexjit_block_mask_info info{};
    info.B = m.B;
    info.H = m.H;
    info.q_len = m.q_len;
    info.kv_len = m.kv_len;
    info.q_block = m.q_block;
    info.kv_block = m.kv_block;
    info.num_q_blocks = m.num_q_blocks;
    info.num_kv_blocks = m.num_kv_blocks;
    info.sparsity = m.sparsity();
    *out = info;
  });
}

flexjit_status flexjit_block_mask_to_string(flexjit_block_mask mask, int32_t grid, int32_t limit,
                                            char* buffer, size_t capacity, size_t* needed) {
  constexpr const char* fn = "flexjit_block_mask_to_string";
  return guard([&] {
    require(mask, fn, "mask", "a flexjit_block_mask");
    write_string(mask->mask.to_string(grid, limit), buffer, capacity, needed, fn);
  });
}

flexjit_status flexjit_block_mask_states(flexjit_block_mask mask, uint8_t* out, size_t count) {
  constexpr const char* fn = "flexjit_block_mask_states";
  return guard([&] {
    require(mask, fn, "mask", "a flexjit_block_mask");
    const BlockMask& m = mask->mask;
    const uint64_t tiles = static_cast<uint64_t>(m.B) * static_cast<uint64_t>(m.H) *
                           static_cast<uint64_t>(m.num_q_blocks) *
                           static_cast<uint64_t>(m.num_kv_blocks);
    if (count != tiles)
      fail("{}: count is {}; expected B * H * num_q_blocks * num_kv_blocks = {}", fn, count, tiles);
    require(out, fn, "out", "count bytes");
    const std::vector<uint8_t> states = m.states();
    FLEXJIT_ASSERT(states.size() == tiles, "states() gave {} tiles for {}", states.size(), tiles);
    std::copy(states.begin(), states.end(), out);
  });
}

void flexjit_block_mask_destroy(flexjit_block_mask mask) {
  delete mask;
}

// ---- Attention ---------------------------------------------------------------------------

void flexjit_attention_options_init(flexjit_attention_options* options) {
  if (!options)
    return;
  *options = flexjit_attention_options{};
  options->struct_size = sizeof(flexjit_attention_options);
  options->schedule = FLEXJIT_SCHEDULE_AUTO;
}

flexjit_status flexjit_flex_attention(const flexjit_tensor* q, const flexjit_tensor* k,
                                      const flexjit_tensor* v, const flexjit_tensor* out,
                                      const flexjit_attention_options* options) {
  constexpr const char* fn = "flexjit_flex_attention";
  return guard([&] {
    // The views in argument order, so that a message names the first bad one.
    const TensorView vq = view_of(q, fn, "q"), vk = view_of(k, fn, "k"), vv = view_of(v, fn, "v"),
                     vout = view_of(out, fn, "out");
    const AttentionArgs args(options, fn);
    flex_attention(vq, vk, vv, vout, args.options);
  });
}

flexjit_status flexjit_flex_attention_backward(const flexjit_tensor* q, const flexjit_tensor* k,
                                               const flexjit_tensor* v, const flexjit_tensor* out,
                                               const flexjit_tensor* d_out,
                                               const flexjit_tensor* dq, const flexjit_tensor* dk,
                                               const flexjit_tensor* dv,
                                               const flexjit_attention_options* options) {
  constexpr const char* fn = "flexjit_flex_attention_backward";
  return guard([&] {
    const TensorView vq = view_of(q, fn, "q"), vk = view_of(k, fn, "k"), vv = view_of(v, fn, "v"),
                     vout = view_of(out, fn, "out"), vd_out = view_of(d_out, fn, "d_out"),
                     vdq = view_of(dq, fn, "dq"), vdk = view_of(dk, fn, "dk"),
                     vdv = view_of(dv, fn, "dv");
    require(options, fn, "options", "the forward's options with options->lse set");
    const AttentionArgs args(options, fn);
    flex_attention_backward(vq, vk, vv, vout, vd_out, vdq, vdk, vdv, args.options);
  });
}

flexjit_status flexjit_append_kv_cache(const flexjit_tensor* k_new, const flexjit_tensor* v_new,
                                       const flexjit_tensor* k_cache, const flexjit_tensor* v_cache,
                                       const flexjit_kv_cache* cache, void* stream) {
  constexpr const char* fn = "flexjit_append_kv_cache";
  return guard([&] {
    const TensorView vk_new = view_of(k_new, fn, "k_new"), vv_new = view_of(v_new, fn, "v_new"),
                     vk_cache = view_of(k_cache, fn, "k_cache"),
                     vv_cache = view_of(v_cache, fn, "v_cache");
    require(cache, fn, "cache", "a flexjit_kv_cache with kv_lens");
    TensorView kv_lens, block_table;
    const KvCache c = AttentionArgs::kv_cache_of(*cache, fn, "cache", kv_lens, block_table);
    append_kv_cache(vk_new, vv_new, vk_cache, vv_cache, c, stream);
  });
}

flexjit_status flexjit_check_device_errors(void* stream) {
  return guard([&] { check_device_errors(stream); });
}

void flexjit_varlen_options_init(flexjit_varlen_options* options) {
  if (!options)
    return;
  *options = flexjit_varlen_options{};
  options->struct_size = sizeof(flexjit_varlen_options);
  options->window_left = -1;
  options->window_right = -1;
}

flexjit_status flexjit_attention_forward_varlen(const flexjit_tensor* q, const flexjit_tensor* k,
                                                const flexjit_tensor* v,
                                                const flexjit_tensor* cu_seqlens_q,
                                                const flexjit_tensor* cu_seqlens_k,
                                                const flexjit_tensor* out,
                                                const flexjit_varlen_options* options) {
  constexpr const char* fn = "flexjit_attention_forward_varlen";
  return guard([&] {
    const TensorView vq = view_of(q, fn, "q"), vk = view_of(k, fn, "k"), vv = view_of(v, fn, "v"),
                     vcu_q = view_of(cu_seqlens_q, fn, "cu_seqlens_q"),
                     vcu_k = view_of(cu_seqlens_k, fn, "cu_seqlens_k"),
                     vout = view_of(out, fn, "out");
    VarlenOptions o;
    TensorView alibi, lse;
    if (options) {
      require_size(*options, fn, "options", "flexjit_varlen_options");
      o.max_seqlen_q = options->max_seqlen_q;
      o.max_seqlen_k = options->max_seqlen_k;
      o.softmax_scale = options->softmax_scale;
      o.causal = flag(options->causal, fn, "options.causal");
      o.window_left = options->window_left;
      o.window_right = options->window_right;
      o.softcap = options->softcap;
      o.alibi_slopes = optional_view(options->alibi_slopes, alibi, fn, "options.alibi_slopes");
      o.deterministic = flag(options->deterministic, fn, "options.deterministic");
      o.dropout_p = options->dropout_p;
      o.lse = optional_view(options->lse, lse, fn, "options.lse");
      if (options->mask_mod)
        o.mask_mod = mod_of(options->mask_mod, true, fn, "options.mask_mod").mask;
      if (options->score_mod)
        o.score_mod = mod_of(options->score_mod, false, fn, "options.score_mod").score;
      if (options->bindings)
        o.bindings = options->bindings->bindings;
      o.stream = options->stream;
    }
    attention_forward_varlen(vq, vk, vv, vcu_q, vcu_k, vout, o);
  });
}

flexjit_status flexjit_merge_attention(const flexjit_tensor* out_a, const flexjit_tensor* lse_a,
                                       const flexjit_tensor* out_b, const flexjit_tensor* lse_b,
                                       const flexjit_tensor* out, const flexjit_tensor* lse,
                                       void* stream) {
  constexpr const char* fn = "flexjit_merge_attention";
  return guard([&] {
    const TensorView va = view_of(out_a, fn, "out_a"), vlse_a = view_of(lse_a, fn, "lse_a"),
                     vb = view_of(out_b, fn, "out_b"), vlse_b = view_of(lse_b, fn, "lse_b"),
                     vout = view_of(out, fn, "out"), vlse = view_of(lse, fn, "lse");
    merge_attention(va, vlse_a, vb, vlse_b, vout, vlse, stream);
  });
}

} // extern "C"
