/* flexjit's C API: mods from text, buffers and params bound by name, block masks, flex_attention,
 * its backward, decoding over a KV cache, varlen batches and merges, on raw device pointers with
 * sizes and strides or on DLPack tensors. extern "C", opaque handles, status codes and a
 * per-thread message; nothing here throws or aborts. The Python package (python/flexjit) is
 * ctypes over this header.
 *
 * Conventions:
 * - Every function that can fail returns flexjit_status; FLEXJIT_OK is 0. On failure,
 *   flexjit_last_error() returns the message (the flexjit::Error's text: it names the value and
 *   what was expected) until the next failing call on the same thread. Outputs are written only
 *   on success.
 * - Handles (flexjit_mod, flexjit_bindings, flexjit_block_mask) are created by the library and
 *   released with their destroy function (NULL is accepted and ignored). A handle may be used
 *   from several threads at once for reading (attention calls); creating and destroying are the
 *   caller's to order.
 * - Strings the library returns through (buffer, capacity, needed): at most capacity bytes are
 *   written, NUL-terminated when capacity > 0; *needed (if not NULL) gets the full length + 1.
 *   A capacity too small is not an error: call again with *needed bytes.
 * - Options structs start with struct_size; call the matching *_init function first, then set
 *   fields. A struct_size the library does not know is an error.
 */
#ifndef FLEXJIT_FLEXJIT_C_H
#define FLEXJIT_FLEXJIT_C_H

#include <stddef.h>
#include <stdint.h>

#include <dlpack/dlpack.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLEXJIT_C_API_VERSION 1

typedef enum flexjit_status {
  FLEXJIT_OK = 0,
  FLEXJIT_ERROR = 1,          /* bad input or state: a flexjit::Error (see flexjit_last_error) */
  FLEXJIT_ERROR_NO_CUDA = 2,  /* the call needs a GPU and none is usable (the reason is given) */
  FLEXJIT_ERROR_INTERNAL = 3, /* anything else the library caught (out of memory, ...) */
} flexjit_status;

/* The message of the last failing call on this thread ("" if none). Valid until the next
 * failing call on this thread. */
const char* flexjit_last_error(void);
/* FLEXJIT_C_API_VERSION of the library. */
int flexjit_api_version(void);
/* 1 when a CUDA device is usable, else 0 (and flexjit_cuda_unavailable_reason says why). */
int flexjit_cuda_available(void);
const char* flexjit_cuda_unavailable_reason(void);

/* ---- Tensors ------------------------------------------------------------------------------ */

typedef enum flexjit_dtype {
  FLEXJIT_I32 = 0,
  FLEXJIT_F32 = 1,
  FLEXJIT_F16 = 2,
  FLEXJIT_BF16 = 3,
  FLEXJIT_BOOL = 4, /* one byte per element, 0 or 1 */
} flexjit_dtype;

typedef enum flexjit_device {
  FLEXJIT_HOST = 0,
  FLEXJIT_CUDA = 1,
} flexjit_device;

#define FLEXJIT_MAX_RANK 4

/* A borrowed strided view (flexjit never frees or copies what it points to). Sizes and strides
 * count elements. Either fill data .. strides, or set dlpack to a DLPack tensor and leave the
 * rest zero: its data (+ byte_offset), dtype (int32, float32, float16, bfloat16, bool), device
 * (kDLCPU, kDLCUDA, kDLCUDAHost, kDLCUDAManaged), shape and strides (NULL: row-major) are used;
 * its deleter is never called. dlpack wins when both are set. */
typedef struct flexjit_tensor {
  void* data;
  int32_t dtype;  /* flexjit_dtype */
  int32_t device; /* flexjit_device */
  int32_t rank;   /* 0 .. FLEXJIT_MAX_RANK */
  int64_t sizes[FLEXJIT_MAX_RANK];
  int64_t strides[FLEXJIT_MAX_RANK];
  const DLManagedTensor* dlpack;
} flexjit_tensor;

/* The view a DLPack tensor stands for (the checks above, each an Error naming the field). */
flexjit_status flexjit_tensor_from_dlpack(const DLTensor* tensor, flexjit_tensor* out);

/* ---- Mods from text ----------------------------------------------------------------------- */

/* A mask_mod or a score_mod, parsed from the canonical printer's language
 * (README.md, "Mods from text"); an Error gives line and column. */
typedef struct flexjit_mod_s* flexjit_mod;

flexjit_status flexjit_mask_mod_from_text(const char* text, flexjit_mod* out);
flexjit_status flexjit_score_mod_from_text(const char* text, flexjit_mod* out);
/* 1 for a mask_mod, 0 for a score_mod. */
int flexjit_mod_is_mask(flexjit_mod mod);
/* The canonical text (print(parse(text))). */
flexjit_status flexjit_mod_text(flexjit_mod mod, char* buffer, size_t capacity, size_t* needed);
/* The structural hash (the kernel cache's key of the mod). */
uint64_t flexjit_mod_hash(flexjit_mod mod);
/* The buffers and params the mod reads, one per line: "buffer NAME DTYPE RANK" or
 * "param NAME int|float" (sorted by name). */
flexjit_status flexjit_mod_signature(flexjit_mod mod, char* buffer, size_t capacity,
                                     size_t* needed);
void flexjit_mod_destroy(flexjit_mod mod);

/* ---- Call-time buffers and params, by name ------------------------------------------------ */

typedef struct flexjit_bindings_s* flexjit_bindings;

flexjit_status flexjit_bindings_create(flexjit_bindings* out);
/* Binds (or rebinds) a buffer of the mods by name; the view is copied, its data is borrowed. */
flexjit_status flexjit_bindings_set_buffer(flexjit_bindings bindings, const char* name,
                                           const flexjit_tensor* tensor);
flexjit_status flexjit_bindings_set_param_i32(flexjit_bindings bindings, const char* name,
                                              int32_t value);
flexjit_status flexjit_bindings_set_param_f32(flexjit_bindings bindings, const char* name,
                                              float value);
void flexjit_bindings_destroy(flexjit_bindings bindings);

/* ---- Block masks -------------------------------------------------------------------------- */

typedef struct flexjit_block_mask_s* flexjit_block_mask;

typedef struct flexjit_block_mask_options {
  uint32_t struct_size;
  int32_t q_block;     /* default 128 */
  int32_t kv_block;    /* default 128 */
  int32_t device;      /* where the tiles are classified: FLEXJIT_HOST (default), FLEXJIT_CUDA,
                          or 2 = auto (CUDA when available and every buffer is device memory) */
  int32_t host_arrays; /* GPU builder: 1 (default) also copies the index arrays to the host */
} flexjit_block_mask_options;
void flexjit_block_mask_options_init(flexjit_block_mask_options* options);

/* create_block_mask(mask_mod, B, H, q_len, kv_len): B and H may be 1 (broadcast). options and
 * bindings may be NULL. The mask keeps its own copy of the mod. */
flexjit_status flexjit_create_block_mask(flexjit_mod mask_mod, int32_t B, int32_t H, int32_t q_len,
                                         int32_t kv_len, const flexjit_block_mask_options* options,
                                         flexjit_bindings bindings, flexjit_block_mask* out);

typedef struct flexjit_block_mask_info {
  int32_t B, H, q_len, kv_len, q_block, kv_block, num_q_blocks, num_kv_blocks;
  double sparsity; /* percent of empty tiles */
} flexjit_block_mask_info;
flexjit_status flexjit_block_mask_get_info(flexjit_block_mask mask, flexjit_block_mask_info* out);
/* Torch's picture (BlockMask.to_string(grid, limit)). */
flexjit_status flexjit_block_mask_to_string(flexjit_block_mask mask, int32_t grid, int32_t limit,
                                            char* buffer, size_t capacity, size_t* needed);
/* Every tile's state, 0 empty / 1 partial / 2 full, [B, H, num_q_blocks, num_kv_blocks]:
 * count must be that product. */
flexjit_status flexjit_block_mask_states(flexjit_block_mask mask, uint8_t* out, size_t count);
void flexjit_block_mask_destroy(flexjit_block_mask mask);

/* ---- Attention ---------------------------------------------------------------------------- */

/* A KV cache read by the sm_90a kernels (flexjit::KvCache): kv_lens int32 [B] (device) or
 * NULL; block_table int32 [B, max_pages] (device) or NULL; page_size with a block table. */
typedef struct flexjit_kv_cache {
  const flexjit_tensor* kv_lens;
  const flexjit_tensor* block_table;
  int32_t page_size;
} flexjit_kv_cache;

typedef enum flexjit_schedule {
  FLEXJIT_SCHEDULE_AUTO = 0,
  FLEXJIT_SCHEDULE_ONE_TILE_PER_CTA = 1,
  FLEXJIT_SCHEDULE_PERSISTENT = 2,
  FLEXJIT_SCHEDULE_SPLIT_KV = 3, /* decoding */
} flexjit_schedule;

typedef struct flexjit_attention_options {
  uint32_t struct_size;
  flexjit_mod score_mod;         /* NULL: identity */
  flexjit_block_mask block_mask; /* NULL: every pair attends */
  int32_t has_scale;             /* 0: 1 / sqrt(head dim) */
  float scale;
  const flexjit_tensor* lse;        /* float32 [B, Hq, q_len] or NULL (required by the backward) */
  void* stream;                     /* a CUstream; NULL: the legacy default stream */
  flexjit_bindings bindings;        /* NULL: none */
  int32_t schedule;                 /* flexjit_schedule */
  const flexjit_kv_cache* kv_cache; /* NULL: k and v are whole [B, Hkv, kv_len, D] tensors */
} flexjit_attention_options;
void flexjit_attention_options_init(flexjit_attention_options* options);

/* flexjit::flex_attention (and decoding: q_len <= 16 takes the split-KV kernel under AUTO).
 * q [B, Hq, q_len, Dqk], k [B, Hkv, kv_len, Dqk], v [B, Hkv, kv_len, Dv], out [B, Hq, q_len, Dv],
 * f16/bf16 device views with any strides (head dim contiguous). options may be NULL. */
flexjit_status flexjit_flex_attention(const flexjit_tensor* q, const flexjit_tensor* k,
                                      const flexjit_tensor* v, const flexjit_tensor* out,
                                      const flexjit_attention_options* options);
/* flexjit::flex_attention_backward: options->lse (the forward's) is required. */
flexjit_status flexjit_flex_attention_backward(const flexjit_tensor* q, const flexjit_tensor* k,
                                               const flexjit_tensor* v, const flexjit_tensor* out,
                                               const flexjit_tensor* d_out,
                                               const flexjit_tensor* dq, const flexjit_tensor* dk,
                                               const flexjit_tensor* dv,
                                               const flexjit_attention_options* options);
/* flexjit::append_kv_cache. */
flexjit_status flexjit_append_kv_cache(const flexjit_tensor* k_new, const flexjit_tensor* v_new,
                                       const flexjit_tensor* k_cache, const flexjit_tensor* v_cache,
                                       const flexjit_kv_cache* cache, void* stream);
/* flexjit::check_device_errors: synchronises the stream; FLEXJIT_ERROR names bad device data an
 * earlier call's kernel found. */
flexjit_status flexjit_check_device_errors(void* stream);

typedef struct flexjit_varlen_options {
  uint32_t struct_size;
  int32_t max_seqlen_q, max_seqlen_k; /* > 0: checked */
  float softmax_scale;                /* 0: 1 / sqrt(Dqk) */
  int32_t causal;
  int32_t window_left, window_right;  /* -1: no bound (the default) */
  float softcap;                      /* > 0: softcap * tanh(s / softcap) */
  const flexjit_tensor* alibi_slopes; /* f32 [Hq] or [B, Hq], device, or NULL */
  int32_t deterministic;
  float dropout_p;           /* anything but 0 is an Error */
  const flexjit_tensor* lse; /* f32 [Hq, total_q] or NULL */
  flexjit_mod mask_mod;      /* NULL: none */
  flexjit_mod score_mod;     /* NULL: none */
  flexjit_bindings bindings; /* NULL: none */
  void* stream;
} flexjit_varlen_options;
void flexjit_varlen_options_init(flexjit_varlen_options* options);

/* flexjit::attention_forward_varlen: q [total_q, Hq, Dqk], k [total_k, Hkv, Dqk],
 * v [total_k, Hkv, Dv], out [total_q, Hq, Dv], cu_seqlens int32 [B + 1] (device). */
flexjit_status flexjit_attention_forward_varlen(const flexjit_tensor* q, const flexjit_tensor* k,
                                                const flexjit_tensor* v,
                                                const flexjit_tensor* cu_seqlens_q,
                                                const flexjit_tensor* cu_seqlens_k,
                                                const flexjit_tensor* out,
                                                const flexjit_varlen_options* options);

/* flexjit::merge_attention (out and lse may alias a part: merge in place). */
flexjit_status flexjit_merge_attention(const flexjit_tensor* out_a, const flexjit_tensor* lse_a,
                                       const flexjit_tensor* out_b, const flexjit_tensor* lse_b,
                                       const flexjit_tensor* out, const flexjit_tensor* lse,
                                       void* stream);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FLEXJIT_FLEXJIT_C_H */
