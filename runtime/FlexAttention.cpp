// flex_attention's launch: the checked problem, the kernel from the cache, the
// block mask's device copy, FlexjitAttentionParams and the mods' arguments.
#include "runtime/FlexAttention.h"

#include "codegen/templates/attention_abi.h"
#include "dsl/Error.h"
#include "runtime/AttentionChecks.h"
#include "runtime/CudaDriver.h"
#include "runtime/KernelCache.h"
#include "runtime/Runtime.h"

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

// The attention kernel of `kind` for a checked problem, and its packed mod arguments.
// `arch`: SM90a for the device's own architecture, SM80 for the sm_80 kernel on any device.
std::shared_ptr<const cuda::LoadedKernel>
attention_kernel(TemplateKind kind, const AttentionProblem& p, const FlexAttentionOptions& o,
                 FlexjitModArgs* mod_args, Arch arch = Arch::SM90a) {
  KernelSpec spec{kind, arch, p.mask, o.score_mod};
  spec.dtype = p.dtype;
  spec.head_dim = p.head_dim;
  auto kernel = cuda::get_kernel(spec);
  // Both signatures come from the same optimized bodies; slot counts suffice.
  FLEXJIT_ASSERT(kernel->signature.buffers.size() == p.signature->buffers.size() &&
                     kernel->signature.int_params.size() == p.signature->int_params.size() &&
                     kernel->signature.float_params.size() == p.signature->float_params.size(),
                 "kernel signature {} differs from the checked one {}",
                 kernel->signature.to_string(), p.signature->to_string());
  *mod_args = pack_mod_args(kernel->signature, p.args);
  return kernel;
}

void launch(CUfunction f, const char* what, unsigned gx, unsigned gy, unsigned gz, unsigned threads,
            unsigned smem, void* stream, void** args) {
  cuda::check(cuda::driver().cuLaunchKernel(f, gx, gy, gz, threads, 1, 1, smem,
                                            static_cast<CUstream>(stream), args, nullptr),
              what);
}

} // namespace

void flex_attention(const TensorView& q, const TensorView& k, const TensorView& v,
                    const TensorView& out, const FlexAttentionOptions& o) {
  const AttentionProblem p = check_attention(q, k, v, out, o);
  FlexjitModArgs mod_args;
  const auto kernel = attention_kernel(TemplateKind::AttentionForward, p, o, &mod_args);
  const FlexjitLaunch cfg = flexjit_fwd_launch(kernel->arch == Arch::SM90a, p.head_dim);
  if (o.block_mask && o.block_mask->kv_block % cfg.kv_rows != 0)
    fail("flex_attention: block mask kv_block {} must be a multiple of {} on this GPU ({} kernel "
         "tiles are {} kv rows)",
         o.block_mask->kv_block, cfg.kv_rows, to_string(kernel->arch), cfg.kv_rows);

  FlexjitAttentionParams params{};
  params.q = q.data;
  params.k = k.data;
  params.v = v.data;
  params.out = const_cast<void*>(out.data);
  set_common(params, p, q, k, v, out, o);
  if (o.lse)
    params.lse = static_cast<float*>(const_cast<void*>(o.lse->data));
  if (const BlockMask* bm = o.block_mask) {
    const BlockMaskDeviceCopy::Arrays arrays = bm->device_copy.get(*bm);
    params.kv_num_blocks = arrays.kv_num_blocks;
    params.kv_indices = arrays.kv_indices;
    params.full_kv_num_blocks = arrays.full_kv_num_blocks;
    params.full_kv_indices = arrays.full_kv_indices;
  }

  void* args[] = {&params, &mod_args};
  const unsigned grid_x =
      static_cast<unsigned>((p.q_len + FLEXJIT_FWD_BLOCK_M - 1) / FLEXJIT_FWD_BLOCK_M);
  launch(kernel->function, kernel->entry.c_str(), grid_x, static_cast<unsigned>(p.Hq),
         static_cast<unsigned>(p.B), static_cast<unsigned>(cfg.threads),
         static_cast<unsigned>(cfg.smem_bytes), o.stream, args);
}

void flex_attention_backward(const TensorView& q, const TensorView& k, const TensorView& v,
                             const TensorView& out, const TensorView& d_out, const TensorView& dq,
                             const TensorView& dk, const TensorView& dv,
                             const FlexAttentionOptions& o) {
  const AttentionProblem p = check_attention_backward(q, k, v, out, d_out, dq, dk, dv, o);
  FlexjitModArgs mod_args;
  // The sm_90a kernel owns 128 kv rows per CTA; a block mask with a finer kv_block (a
  // multiple of 64) runs the sm_80 kernel, on any GPU.
  const bool fine_mask =
      o.block_mask && o.block_mask->kv_block % flexjit_bwd_launch(true, p.head_dim).kv_rows != 0;
  const auto kernel = attention_kernel(TemplateKind::AttentionBackward, p, o, &mod_args,
                                       fine_mask ? Arch::SM80 : Arch::SM90a);
  const FlexjitLaunch cfg = flexjit_bwd_launch(kernel->arch == Arch::SM90a, p.head_dim);

  // Workspace: delta [B, Hq, q_len] and dq_acc [B, Hq, q_len, D], fp32, grow-only per thread.
  const size_t rows = static_cast<size_t>(p.B) * p.Hq * p.q_len;
  const size_t bytes = rows * (static_cast<size_t>(p.head_dim) + 1) * sizeof(float);
  thread_local DeviceBuffer workspace;
  if (workspace.bytes() < bytes)
    workspace = DeviceBuffer(bytes);

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
  params.dq_acc = static_cast<float*>(workspace.data());
  params.delta = params.dq_acc + rows * static_cast<size_t>(p.head_dim);
  set_common(params, p, q, k, v, out, o);
  set_strides(d_out, &params.dout_stride_b, &params.dout_stride_h, &params.dout_stride_s);
  set_strides(dq, &params.dq_stride_b, &params.dq_stride_h, &params.dq_stride_s);
  set_strides(dk, &params.dk_stride_b, &params.dk_stride_h, &params.dk_stride_s);
  set_strides(dv, &params.dv_stride_b, &params.dv_stride_h, &params.dv_stride_s);
  if (const BlockMask* bm = o.block_mask) {
    const BlockMaskDeviceCopy::Arrays arrays = bm->device_copy.get(*bm, /*backward=*/true);
    params.q_num_blocks = arrays.q_num_blocks;
    params.q_indices = arrays.q_indices;
    params.full_q_num_blocks = arrays.full_q_num_blocks;
    params.full_q_indices = arrays.full_q_indices;
  } else {
    params.kv_block_size = cfg.kv_rows; // any multiple of the kv tile
  }

  void* args[] = {&params, &mod_args};
  const unsigned row_blocks = static_cast<unsigned>((p.q_len + 7) / 8);
  const char* what = kernel->entry.c_str();
  launch(kernel->companions.at(0), what, row_blocks, static_cast<unsigned>(p.Hq),
         static_cast<unsigned>(p.B), FLEXJIT_BWD_ROW_THREADS, 0, o.stream, args);
  launch(kernel->function, what, static_cast<unsigned>((p.kv_len + cfg.kv_rows - 1) / cfg.kv_rows),
         static_cast<unsigned>(p.Hkv), static_cast<unsigned>(p.B),
         static_cast<unsigned>(cfg.threads), static_cast<unsigned>(cfg.smem_bytes), o.stream, args);
  launch(kernel->companions.at(1), what, row_blocks, static_cast<unsigned>(p.Hq),
         static_cast<unsigned>(p.B), FLEXJIT_BWD_ROW_THREADS, 0, o.stream, args);
}

} // namespace flexjit
