// flex_attention's launch: the checked problem, the kernel from the cache, the
// block mask's device copy, FlexjitAttentionParams and the mods' arguments.
#include "flexjit/attention/FlexAttention.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "flexjit/attention/AttentionChecks.h"
#include "flexjit/blockmask/DeviceCopy.h"
#include "flexjit/codegen/PackArgs.h"
#include "flexjit/codegen/templates/attention_abi.h"
#include "flexjit/runtime/CudaDriver.h"
#include "flexjit/runtime/DeviceErrors.h"
#include "flexjit/runtime/KernelCache.h"
#include "flexjit/runtime/Runtime.h"
#include "flexjit/runtime/Target.h"
#include "flexjit/runtime/Workspace.h"
#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

void set_strides(const TensorView& t, int64_t* b, int64_t* h, int64_t* s) {
  *b = t.strides[0];
  *h = t.strides[1];
  *s = t.strides[2];
}

// What the forward's and the backward's launch parameters share: the tensors' strides, the
// lse strides, the problem's sizes and scale, and the block mask's geometry.
template <class Params>
void set_common(Params& params, const AttentionProblem& p, const TensorView& q, const TensorView& k,
                const TensorView& v, const TensorView& out, const FlexAttentionOptions& o) {
  set_strides(q, &params.q_stride_b, &params.q_stride_h, &params.q_stride_s);
  set_strides(k, &params.k_stride_b, &params.k_stride_h, &params.k_stride_s);
  set_strides(v, &params.v_stride_b, &params.v_stride_h, &params.v_stride_s);
  set_strides(out, &params.out_stride_b, &params.out_stride_h, &params.out_stride_s);
  if (o.lse) {
    params.lse_stride_b = o.lse->strides[0];
    params.lse_stride_h = o.lse->strides[1];
  }
  params.B = p.B;
  params.Hq = p.Hq;
  params.Hkv = p.Hkv;
  params.q_len = p.q_len;
  params.kv_len = p.kv_len;
  params.scale = p.scale;
  if (const BlockMask* bm = o.block_mask) {
    params.mask_B = bm->B;
    params.mask_H = bm->H;
    params.num_q_blocks = bm->num_q_blocks;
    params.num_kv_blocks = bm->num_kv_blocks;
    params.q_block_size = bm->q_block;
    params.kv_block_size = bm->kv_block;
    params.has_mask = 1;
  }
}

// The kernel of `kind` for a checked problem on `target` (this device: current_target()),
// and its packed mod arguments.
std::shared_ptr<const cuda::LoadedKernel> attention_kernel(TemplateKind kind, const Target& target,
                                                           const AttentionProblem& p,
                                                           FlexjitModArgs* mod_args) {
  auto kernel = cuda::get_kernel(target, select_variant(kind, target, p), *p.mods);
  *mod_args = pack_mod_args(p.mods->signature, p.args, cuda::device_error_word());
  return kernel;
}

// A tensor map over t's data: rank dims (the head dim first, then dims[1..] with their byte
// strides), boxes of 64 head-dim elements (128 bytes, 128-byte swizzle) by box[1..].
FlexjitTensorMap encode_map(const char* name, const TensorView& t, cuuint32_t rank,
                            const cuuint64_t* dims, const cuuint64_t* strides,
                            const cuuint32_t* box) {
  const cuuint32_t element_strides[5] = {1, 1, 1, 1, 1};
  CUtensorMap map;
  const CUresult result = cuda::driver().cuTensorMapEncodeTiled(
      &map,
      t.dtype == DType::BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
      rank, const_cast<void*>(t.data), dims, strides, box, element_strides,
      CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (result != CUDA_SUCCESS) // the message is formatted only then: this runs on every call
    cuda::check(result,
                fmt::format("cuTensorMapEncodeTiled({} [{}, {}, {}, {}], strides [{}, {}, {}])",
                            name, t.sizes[0], t.sizes[1], t.sizes[2], t.sizes[3], t.strides[0],
                            t.strides[1], t.strides[2])
                    .c_str());
  static_assert(sizeof(map) == sizeof(FlexjitTensorMap), "an opaque CUtensorMap");
  FlexjitTensorMap out;
  std::memcpy(&out, &map, sizeof(map));
  return out;
}

// t's stride over dimension d in bytes. A dimension of size 1 is never stepped; its stride
// may be anything, so 16 bytes stands in for one TMA would reject (0); check_attention sends
// zero strides of larger dimensions to kernels without tensor maps.
cuuint64_t map_stride(const TensorView& t, int d, int64_t times = 1) {
  constexpr int64_t kElemBytes = 2;
  return static_cast<cuuint64_t>(t.sizes[d] == 1 ? 16 : t.strides[d] * times * kElemBytes);
}

// A rank-4 tensor map over t with dims (D, S, H, B) in t's own strides and boxes of 64
// head-dim elements by `rows` rows (attention_abi.h).
FlexjitTensorMap tensor_map(const char* name, const TensorView& t, int rows) {
  const cuuint64_t dims[4] = {
      static_cast<cuuint64_t>(t.sizes[3]), static_cast<cuuint64_t>(t.sizes[2]),
      static_cast<cuuint64_t>(t.sizes[1]), static_cast<cuuint64_t>(t.sizes[0])};
  const cuuint64_t strides[3] = {map_stride(t, 2), map_stride(t, 1), map_stride(t, 0)};
  const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(rows), 1, 1};
  return encode_map(name, t, 4, dims, strides, box);
}

// A page pool [num_pages, page_size, Hkv, D] as the kernel's K / V map: dims (D, page slots,
// Hkv, num_pages), boxes of 64 head-dim elements by `rows` slots (attention_abi.h).
FlexjitTensorMap page_map(const char* name, const TensorView& t, int rows) {
  const cuuint64_t dims[4] = {
      static_cast<cuuint64_t>(t.sizes[3]), static_cast<cuuint64_t>(t.sizes[1]),
      static_cast<cuuint64_t>(t.sizes[2]), static_cast<cuuint64_t>(t.sizes[0])};
  const cuuint64_t strides[3] = {map_stride(t, 1), map_stride(t, 2), map_stride(t, 0)};
  const cuuint32_t box[4] = {64, static_cast<cuuint32_t>(rows), 1, 1};
  return encode_map(name, t, 4, dims, strides, box);
}

// A paged cache's table in a kernel's params (FlexjitAttentionParams, FlexjitKvAppendParams: the
// same four fields): the table, its pages per sequence, log2 of the page size, the pool's pages.
template <class Params>
void set_pages(Params& params, const KvCache& cache, const TensorView& pool) {
  params.block_table = static_cast<const int32_t*>(cache.block_table->data);
  params.max_pages = static_cast<int32_t>(cache.block_table->sizes[1]);
  params.page_shift = std::countr_zero(static_cast<unsigned>(cache.page_size));
  params.num_pages = static_cast<int32_t>(pool.sizes[0]);
}

// Raises what kernels reported in the device error word (runtime/DeviceErrors.h) since it was
// last read: every attention entry point calls it first (a read of host memory, no
// synchronisation), and check_device_errors after a synchronisation.
void raise_device_errors(const char* fn) {
  const uint32_t bits = cuda::take_device_errors();
  if (bits == 0)
    return;
  std::string what;
  auto found = [&](uint32_t bit, const char* text) {
    if (bits & bit)
      what += std::string(what.empty() ? "" : "; and ") + text;
  };
  found(FLEXJIT_DEVICE_ERROR_KV_LEN,
        "a kv_cache.kv_lens entry outside [0, the cache's capacity] (it read the capacity)");
  found(FLEXJIT_DEVICE_ERROR_PAGE,
        "a kv_cache.block_table entry outside [0, num_pages) (it read page 0)");
  found(FLEXJIT_DEVICE_ERROR_LOAD,
        "a mod's load at an index read from buffer data (a document id, say) outside its buffer "
        "(it read 0)");
  fail("{}: a kernel of an earlier call found {}: that call's output is wrong", fn, what);
}

// The decode kernel's rank-5 map over q: dims (D, heads of a group, S, Hkv, B), boxes of 64
// head-dim elements by `heads` heads by all q_len rows (attention_abi.h).
FlexjitTensorMap decode_q_map(const TensorView& q, int group, int heads) {
  const int64_t hkv = q.sizes[1] / group;
  const cuuint64_t dims[5] = {static_cast<cuuint64_t>(q.sizes[3]), static_cast<cuuint64_t>(group),
                              static_cast<cuuint64_t>(q.sizes[2]), static_cast<cuuint64_t>(hkv),
                              static_cast<cuuint64_t>(q.sizes[0])};
  const cuuint64_t h_stride = map_stride(q, 1);
  const cuuint64_t strides[4] = {group == 1 ? 16 : h_stride, map_stride(q, 2),
                                 hkv == 1 ? 16 : map_stride(q, 1, group), map_stride(q, 0)};
  const cuuint32_t box[5] = {64, static_cast<cuuint32_t>(heads),
                             static_cast<cuuint32_t>(q.sizes[2]), 1, 1};
  return encode_map("q", q, 5, dims, strides, box);
}

// A kernel of `kind` that calls no mods (built with the noop pair: append, merge) for the
// current device, and its empty mod args.
struct ModsFreeKernel {
  const KernelVariant* variant = nullptr;
  std::shared_ptr<const cuda::LoadedKernel> kernel;
  FlexjitModArgs mod_args{};
};
ModsFreeKernel mods_free_kernel(TemplateKind kind) {
  static const std::shared_ptr<const PreparedMods> noop = prepare_mods(MaskMod(), ScoreMod());
  const Target& target = current_target();
  ModsFreeKernel k;
  k.variant = &find_variant(kind, target.arch);
  k.kernel = cuda::get_kernel(target, *k.variant, *noop);
  k.mod_args = pack_mod_args(noop->signature, {}, nullptr);
  return k;
}

// A persistent forward's schedule (codegen/templates/tile_scheduler.h): a CTA per SM (the
// warp-specialized forward holds a whole SM), and sections of (b, h) planes -- whole GQA
// groups, which share K and V -- whose K and V fit in half the L2.
void schedule_work_tiles(const AttentionProblem& p, const KernelVariant& variant,
                         const Target& target, FlexjitAttentionParams* params, LaunchSizes* sizes) {
  const int64_t group = p.Hq / p.Hkv;
  const int64_t kv_bytes = static_cast<int64_t>(p.kv_len) * (variant.dqk + variant.dv) * 2;
  const int64_t groups = std::max<int64_t>(1, target.l2_bytes / 2 / kv_bytes);
  params->sched_planes = static_cast<int32_t>(std::min<int64_t>(groups * group, p.B * p.Hq));
  sizes->resident_ctas = target.sm_count;
}

// The decode kernel's schedule: the packed heads, the kv splits (decode_splits) and, with
// more than one, the partial O and lse workspace (f32, grow-only per thread: a cached call
// allocates nothing once it has grown) and the combine's grid (a warp per row).
void schedule_decode(const AttentionProblem& p, const KernelVariant& variant, const Target& target,
                     FlexjitAttentionParams* params, LaunchSizes* sizes) {
  const int splits = decode_splits(p, variant.main.kv_rows, target.sm_count);
  params->decode_heads = p.decode_heads;
  params->decode_splits = splits;
  sizes->kv_splits = splits;
  if (splits == 1)
    return;
  const size_t rows = static_cast<size_t>(p.B) * p.Hq * p.q_len;
  const size_t bytes =
      static_cast<size_t>(splits) * rows * (static_cast<size_t>(p.head_dim_v) + 1) * sizeof(float);
  thread_local Workspace workspace;
  params->o_part = static_cast<float*>(workspace.get(bytes));
  params->lse_part = params->o_part + static_cast<size_t>(splits) * rows * p.head_dim_v;
  sizes->elements = static_cast<int64_t>(rows) * 32;
}

} // namespace

void flex_attention(const TensorView& q, const TensorView& k, const TensorView& v,
                    const TensorView& out, const FlexAttentionOptions& o) {
  const AttentionProblem p = check_attention(q, k, v, out, o);
  raise_device_errors("flex_attention");
  FlexjitModArgs mod_args;
  const Target& target = current_target(); // once per call: its lookup takes a lock
  const auto kernel = attention_kernel(TemplateKind::AttentionForward, target, p, &mod_args);

  FlexjitAttentionParams params{};
  params.q = q.data;
  params.k = k.data;
  params.v = v.data;
  params.out = const_cast<void*>(out.data);
  set_common(params, p, q, k, v, out, o);
  if (o.lse)
    params.lse = static_cast<float*>(const_cast<void*>(o.lse->data));
  if (const BlockMask* bm = o.block_mask) {
    const BlockMaskDeviceArrays arrays = device_arrays(*bm, false, FLEXJIT_FWD_BLOCK_M);
    params.kv_num_blocks = arrays.kv_num_blocks;
    params.kv_indices = arrays.kv_indices;
    params.full_kv_num_blocks = arrays.full_kv_num_blocks;
    params.full_kv_indices = arrays.full_kv_indices;
    params.q_tile_order = arrays.q_tile_order;
  }

  const KernelVariant& variant = *kernel->variant;
  FlexjitTensorMaps maps;
  if (variant.tensor_maps) {
    maps.q = tensor_map("q", q, variant.main.q_rows);
    maps.k = tensor_map("k", k, variant.main.kv_rows);
    maps.v = tensor_map("v", v, variant.main.kv_rows);
  }
  LaunchSizes sizes = p.launch_sizes();
  if (variant.persistent())
    schedule_work_tiles(p, variant, target, &params, &sizes);
  if (variant.decode()) {
    maps.q = decode_q_map(q, p.Hq / p.Hkv, p.decode_heads);
    schedule_decode(p, variant, target, &params, &sizes);
  }
  // A KV cache (the rows that read one: variant.kv_cache, which check_attention required): the
  // lengths, the table and the pools' maps (boxes of min(page, kv tile) rows), and the device
  // error word the kernel reports bad lengths and pages in.
  if (variant.decode() || o.kv_cache)
    params.device_error = cuda::device_error_word();
  if (const KvCache* cache = o.kv_cache) {
    FLEXJIT_ASSERT(variant.kv_cache, "{} does not read a KV cache", variant.describe());
    if (cache->kv_lens)
      params.kv_lens = static_cast<const int32_t*>(cache->kv_lens->data);
    if (cache->block_table) {
      set_pages(params, *cache, k);
      const int rows = std::min(cache->page_size, variant.main.kv_rows);
      maps.k = page_map("k", k, rows);
      maps.v = page_map("v", v, rows);
    }
  }
  void* args[] = {&params, &mod_args, &maps};
  const CUstream stream = static_cast<CUstream>(o.stream);
  cuda::launch(*kernel, sizes, stream, args);
  if (variant.decode() && params.decode_splits > 1)
    cuda::launch(*kernel, CompanionRole::Epilogue, sizes, stream, args);
}

void check_device_errors(void* stream) {
  Stream{stream}.synchronize();
  raise_device_errors("check_device_errors");
}

void append_kv_cache(const TensorView& k_new, const TensorView& v_new, const TensorView& k_cache,
                     const TensorView& v_cache, const KvCache& cache, void* stream) {
  const KvAppendProblem p = check_kv_append(k_new, v_new, k_cache, v_cache, cache);
  ModsFreeKernel k = mods_free_kernel(TemplateKind::KvAppend);
  FlexjitKvAppendParams params{};
  params.k_new = k_new.data;
  params.v_new = v_new.data;
  params.k_cache = const_cast<void*>(k_cache.data);
  params.v_cache = const_cast<void*>(v_cache.data);
  params.kv_lens = static_cast<int32_t*>(const_cast<void*>(cache.kv_lens->data));
  params.device_error = cuda::device_error_word();
  set_strides(k_new, &params.kn_stride_b, &params.kn_stride_h, &params.kn_stride_s);
  set_strides(v_new, &params.vn_stride_b, &params.vn_stride_h, &params.vn_stride_s);
  // Unpaged (b, h, position), paged (page, slot, h): dimensions 0, 1, 2 either way.
  set_strides(k_cache, &params.kc_stride_0, &params.kc_stride_1, &params.kc_stride_2);
  set_strides(v_cache, &params.vc_stride_0, &params.vc_stride_1, &params.vc_stride_2);
  params.B = p.B;
  params.Hkv = p.Hkv;
  params.n_new = p.n_new;
  params.dk = p.dk;
  params.dv = p.dv;
  params.capacity = p.capacity;
  if (cache.block_table)
    set_pages(params, cache, k_cache);
  void* args[] = {&params, &k.mod_args};
  LaunchSizes sizes;
  sizes.elements = static_cast<int64_t>(p.B) * p.Hkv * p.n_new * ((p.dk + p.dv) / 8);
  cuda::launch(*k.kernel, sizes, static_cast<CUstream>(stream), args);
  sizes.elements = p.B;
  cuda::launch(*k.kernel, CompanionRole::Epilogue, sizes, static_cast<CUstream>(stream), args);
}

void merge_attention(const TensorView& out_a, const TensorView& lse_a, const TensorView& out_b,
                     const TensorView& lse_b, const TensorView& out, const TensorView& lse,
                     void* stream) {
  const MergeProblem p = check_merge(out_a, lse_a, out_b, lse_b, out, lse);
  ModsFreeKernel k = mods_free_kernel(TemplateKind::MergeAttention);
  FlexjitMergeParams params{};
  params.out_a = out_a.data;
  params.out_b = out_b.data;
  params.out = const_cast<void*>(out.data);
  params.lse_a = static_cast<const float*>(lse_a.data);
  params.lse_b = static_cast<const float*>(lse_b.data);
  params.lse = static_cast<float*>(const_cast<void*>(lse.data));
  set_strides(out_a, &params.oa_stride_b, &params.oa_stride_h, &params.oa_stride_s);
  set_strides(out_b, &params.ob_stride_b, &params.ob_stride_h, &params.ob_stride_s);
  set_strides(out, &params.o_stride_b, &params.o_stride_h, &params.o_stride_s);
  params.la_stride_b = lse_a.strides[0];
  params.la_stride_h = lse_a.strides[1];
  params.lb_stride_b = lse_b.strides[0];
  params.lb_stride_h = lse_b.strides[1];
  params.l_stride_b = lse.strides[0];
  params.l_stride_h = lse.strides[1];
  params.B = p.B;
  params.H = p.H;
  params.S = p.S;
  params.D = p.D;
  params.bf16 = out_a.dtype == DType::BF16;
  void* args[] = {&params, &k.mod_args};
  LaunchSizes sizes;
  sizes.elements = static_cast<int64_t>(p.B) * p.H * p.S * 32; // a warp per row
  cuda::launch(*k.kernel, sizes, static_cast<CUstream>(stream), args);
}

void flex_attention_backward(const TensorView& q, const TensorView& k, const TensorView& v,
                             const TensorView& out, const TensorView& d_out, const TensorView& dq,
                             const TensorView& dk, const TensorView& dv,
                             const FlexAttentionOptions& o) {
  const AttentionProblem p = check_attention_backward(q, k, v, out, d_out, dq, dk, dv, o);
  raise_device_errors("flex_attention_backward");
  FlexjitModArgs mod_args;
  // The sm_90a kernel owns 128 kv rows per CTA; a block mask with a finer kv_block (a
  // multiple of 64) runs the sm_80 kernel, on any GPU (select_variant).
  const auto kernel =
      attention_kernel(TemplateKind::AttentionBackward, current_target(), p, &mod_args);
  const KernelVariant& variant = *kernel->variant;

  // Workspace: delta [B, Hq, q_len] and dq_acc [B, Hq, q_len, D], fp32, grow-only per thread.
  const size_t rows = static_cast<size_t>(p.B) * p.Hq * p.q_len;
  const size_t bytes = rows * (static_cast<size_t>(p.head_dim) + 1) * sizeof(float);
  thread_local Workspace workspace;
  void* const scratch = workspace.get(bytes);

  FlexjitAttentionBwdParams params{};
  params.q = q.data;
  params.k = k.data;
  params.v = v.data;
  params.out = out.data;
  params.d_out = d_out.data;
  params.dq = const_cast<void*>(dq.data);
  params.dk = const_cast<void*>(dk.data);
  params.dv = const_cast<void*>(dv.data);
  params.lse = static_cast<const float*>(o.lse->data);
  params.dq_acc = static_cast<float*>(scratch);
  params.delta = params.dq_acc + rows * static_cast<size_t>(p.head_dim);
  set_common(params, p, q, k, v, out, o);
  set_strides(d_out, &params.dout_stride_b, &params.dout_stride_h, &params.dout_stride_s);
  set_strides(dq, &params.dq_stride_b, &params.dq_stride_h, &params.dq_stride_s);
  set_strides(dk, &params.dk_stride_b, &params.dk_stride_h, &params.dk_stride_s);
  set_strides(dv, &params.dv_stride_b, &params.dv_stride_h, &params.dv_stride_s);
  if (const BlockMask* bm = o.block_mask) {
    // The forward's tile rows too: one device copy serves both directions.
    const BlockMaskDeviceArrays arrays = device_arrays(*bm, /*backward=*/true, FLEXJIT_FWD_BLOCK_M);
    params.q_num_blocks = arrays.q_num_blocks;
    params.q_indices = arrays.q_indices;
    params.full_q_num_blocks = arrays.full_q_num_blocks;
    params.full_q_indices = arrays.full_q_indices;
  } else {
    params.kv_block_size = variant.main.kv_rows; // any multiple of the kv tile
  }

  void* args[] = {&params, &mod_args};
  const LaunchSizes sizes = p.launch_sizes();
  const CUstream stream = static_cast<CUstream>(o.stream);
  cuda::launch(*kernel, CompanionRole::Prologue, sizes, stream, args);
  cuda::launch(*kernel, sizes, stream, args);
  cuda::launch(*kernel, CompanionRole::Epilogue, sizes, stream, args);
}

} // namespace flexjit
