// flex_attention's launch: the checked problem, the kernel from the cache, the
// block mask's device copy, FlexjitAttentionParams and the mods' arguments.
#include "runtime/FlexAttention.h"

#include "codegen/templates/attention_abi.h"
#include "dsl/Error.h"
#include "runtime/AttentionChecks.h"
#include "runtime/CudaDriver.h"
#include "runtime/KernelCache.h"

namespace flexjit {

namespace {

void set_strides(const TensorView& t, int64_t* b, int64_t* h, int64_t* s) {
  *b = t.strides[0];
  *h = t.strides[1];
  *s = t.strides[2];
}

} // namespace

void flex_attention(const TensorView& q, const TensorView& k, const TensorView& v,
                    const TensorView& out, const FlexAttentionOptions& o) {
  const AttentionProblem p = check_attention(q, k, v, out, o);

  KernelSpec spec{TemplateKind::AttentionForward, Arch::SM90a, p.mask, o.score_mod};
  spec.dtype = p.dtype;
  spec.head_dim = p.head_dim;
  const auto kernel = cuda::get_kernel(spec);
  // Both signatures come from the same optimized bodies; slot counts suffice.
  FLEXJIT_ASSERT(kernel->signature.buffers.size() == p.signature->buffers.size() &&
                     kernel->signature.int_params.size() == p.signature->int_params.size() &&
                     kernel->signature.float_params.size() == p.signature->float_params.size(),
                 "kernel signature {} differs from the checked one {}",
                 kernel->signature.to_string(), p.signature->to_string());
  FlexjitModArgs mod_args = pack_mod_args(kernel->signature, p.args);
  const FlexjitFwdLaunch launch = flexjit_fwd_launch(kernel->arch == Arch::SM90a, p.head_dim);
  if (o.block_mask && o.block_mask->kv_block % launch.kv_multiple != 0)
    fail("flex_attention: block mask kv_block {} must be a multiple of {} on this GPU ({} kernel "
         "tiles are {} kv rows)",
         o.block_mask->kv_block, launch.kv_multiple, to_string(kernel->arch), launch.kv_multiple);

  FlexjitAttentionParams params{};
  params.q = q.data;
  params.k = k.data;
  params.v = v.data;
  params.out = const_cast<void*>(out.data);
  set_strides(q, &params.q_stride_b, &params.q_stride_h, &params.q_stride_s);
  set_strides(k, &params.k_stride_b, &params.k_stride_h, &params.k_stride_s);
  set_strides(v, &params.v_stride_b, &params.v_stride_h, &params.v_stride_s);
  set_strides(out, &params.out_stride_b, &params.out_stride_h, &params.out_stride_s);
  if (o.lse) {
    params.lse = static_cast<float*>(const_cast<void*>(o.lse->data));
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
    const BlockMaskDeviceCopy::Arrays arrays = bm->device_copy.get(*bm);
    params.kv_num_blocks = arrays.kv_num_blocks;
    params.kv_indices = arrays.kv_indices;
    params.full_kv_num_blocks = arrays.full_kv_num_blocks;
    params.full_kv_indices = arrays.full_kv_indices;
    params.mask_B = bm->B;
    params.mask_H = bm->H;
    params.num_q_blocks = bm->num_q_blocks;
    params.num_kv_blocks = bm->num_kv_blocks;
    params.q_block_size = bm->q_block;
    params.kv_block_size = bm->kv_block;
    params.has_mask = 1;
  }

  void* args[] = {&params, &mod_args};
  const unsigned grid_x =
      static_cast<unsigned>((p.q_len + FLEXJIT_FWD_BLOCK_M - 1) / FLEXJIT_FWD_BLOCK_M);
  cuda::check(cuda::driver().cuLaunchKernel(kernel->function, grid_x, static_cast<unsigned>(p.Hq),
                                            static_cast<unsigned>(p.B),
                                            static_cast<unsigned>(launch.threads), 1, 1,
                                            static_cast<unsigned>(launch.smem_bytes),
                                            static_cast<CUstream>(o.stream), args, nullptr),
              kernel->entry.c_str());
}

} // namespace flexjit
