/* flexjit's C API (flexjit_c.h) from C: mods from text, bindings, host block masks against
 * tile states computed here from the masks' definitions, DLPack and raw tensors, the string
 * protocol and the error paths, without a GPU; with one (flexjit_cuda_available()), a small
 * flex_attention on device memory (libcuda through dlopen) against a float64 reference
 * computed here. Prints each failed check and exits 1 if any failed. */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <flexjit/flexjit_c.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    ++checks;                                                                                      \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                     \
      ++failures;                                                                                  \
    }                                                                                              \
  } while (0)

/* A call that must succeed. */
#define CHECK_OK(call)                                                                             \
  do {                                                                                             \
    flexjit_status status_ = (call);                                                               \
    ++checks;                                                                                      \
    if (status_ != FLEXJIT_OK) {                                                                   \
      fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #call, (int)status_,      \
              flexjit_last_error());                                                               \
      ++failures;                                                                                  \
    }                                                                                              \
  } while (0)

/* A call that must fail with `expected` and a message holding both fragments. */
#define CHECK_FAILS(call, expected, fragment1, fragment2)                                          \
  do {                                                                                             \
    flexjit_status status_ = (call);                                                               \
    ++checks;                                                                                      \
    if (status_ != (expected) || !strstr(flexjit_last_error(), (fragment1)) ||                     \
        !strstr(flexjit_last_error(), (fragment2))) {                                              \
      fprintf(stderr,                                                                              \
              "%s:%d: %s returned %d (expected %d) with \"%s\" (expected \"%s\", \"%s\")\n",       \
              __FILE__, __LINE__, #call, (int)status_, (int)(expected), flexjit_last_error(),      \
              (fragment1), (fragment2));                                                           \
      ++failures;                                                                                  \
    }                                                                                              \
  } while (0)

/* ---- Mods ----------------------------------------------------------------------------------- */

/* The mod's canonical text through the (buffer, capacity, needed) protocol; malloc'ed. */
static char* mod_text(flexjit_mod mod) {
  size_t needed = 0;
  if (flexjit_mod_text(mod, NULL, 0, &needed) != FLEXJIT_OK || needed == 0)
    return NULL;
  char* text = malloc(needed);
  size_t again = 0;
  if (flexjit_mod_text(mod, text, needed, &again) != FLEXJIT_OK || again != needed ||
      strlen(text) + 1 != needed) {
    free(text);
    return NULL;
  }
  return text;
}

static void test_mods(void) {
  CHECK(flexjit_api_version() == FLEXJIT_C_API_VERSION);
  CHECK(strcmp(flexjit_last_error(), "") == 0);

  flexjit_mod causal = NULL, causal2 = NULL, causal3 = NULL, other = NULL;
  CHECK_OK(flexjit_mask_mod_from_text("(kv_idx <= q_idx)", &causal));
  CHECK(causal != NULL && flexjit_mod_is_mask(causal) == 1);
  char* text = mod_text(causal);
  CHECK(text != NULL && strcmp(text, "(kv_idx <= q_idx)") == 0);
  /* Round trip: the canonical text parses to the same text and hash; hand-written text with
   * whitespace, a comment and C precedence is the same mod. */
  CHECK_OK(flexjit_mask_mod_from_text(text, &causal2));
  CHECK_OK(flexjit_mask_mod_from_text("  kv_idx<=q_idx   # causal\n", &causal3));
  CHECK_OK(flexjit_mask_mod_from_text("(q_idx <= kv_idx)", &other));
  char* text2 = mod_text(causal2);
  char* text3 = mod_text(causal3);
  CHECK(text2 && strcmp(text2, text) == 0);
  CHECK(text3 && strcmp(text3, text) == 0);
  CHECK(flexjit_mod_hash(causal) != 0);
  CHECK(flexjit_mod_hash(causal) == flexjit_mod_hash(causal2));
  CHECK(flexjit_mod_hash(causal) == flexjit_mod_hash(causal3));
  CHECK(flexjit_mod_hash(causal) != flexjit_mod_hash(other));
  free(text);
  free(text2);
  free(text3);

  /* The capacity protocol: a short buffer gets a NUL-terminated prefix, needed the length + 1;
   * capacity 0 writes nothing. */
  char small[6];
  memset(small, 'x', sizeof small);
  size_t needed = 0;
  CHECK_OK(flexjit_mod_text(causal, small, sizeof small, &needed));
  CHECK(needed == strlen("(kv_idx <= q_idx)") + 1);
  CHECK(strcmp(small, "(kv_i") == 0);
  memset(small, 'x', sizeof small);
  CHECK_OK(flexjit_mod_text(causal, small, 0, NULL));
  CHECK(small[0] == 'x');
  CHECK_FAILS(flexjit_mod_text(causal, NULL, 10, &needed), FLEXJIT_ERROR, "flexjit_mod_text",
              "buffer is NULL");

  /* A score_mod, and its text; a mask_mod text given as a score_mod and back. */
  flexjit_mod softcap = NULL;
  CHECK_OK(flexjit_score_mod_from_text("30.0f * tanh(score / 30.0f)", &softcap));
  CHECK(softcap != NULL && flexjit_mod_is_mask(softcap) == 0);
  char* soft_text = mod_text(softcap);
  CHECK(soft_text && strcmp(soft_text, "(30.0f * tanh((score / 30.0f)))") == 0);
  free(soft_text);

  /* Bad texts: FLEXJIT_ERROR, a located message, *out untouched. */
  flexjit_mod untouched = (flexjit_mod)&failures;
  CHECK_FAILS(flexjit_mask_mod_from_text("q_idx <= kv_idz", &untouched), FLEXJIT_ERROR,
              "line 1, column 10", "unknown name 'kv_idz'");
  CHECK(untouched == (flexjit_mod)&failures);
  CHECK_FAILS(flexjit_mask_mod_from_text("let t = q_idx - kv_idx\n(t <= )", &untouched),
              FLEXJIT_ERROR, "line 2, column 7", "expected an expression");
  CHECK_FAILS(flexjit_mask_mod_from_text("score > 0.0f", &untouched), FLEXJIT_ERROR,
              "line 1, column 1", "'score' is not available in a mask_mod");
  CHECK_FAILS(flexjit_score_mod_from_text("q_idx >= kv_idx", &untouched), FLEXJIT_ERROR,
              "line 1, column", "a score_mod is a float expression");
  CHECK_FAILS(flexjit_mask_mod_from_text("", &untouched), FLEXJIT_ERROR, "line 1, column 1",
              "the text is empty");
  CHECK(untouched == (flexjit_mod)&failures);
  CHECK_FAILS(flexjit_mask_mod_from_text(NULL, &untouched), FLEXJIT_ERROR,
              "flexjit_mask_mod_from_text: text is NULL", "expected");
  CHECK_FAILS(flexjit_score_mod_from_text("score", NULL), FLEXJIT_ERROR,
              "flexjit_score_mod_from_text: out is NULL", "expected");
  /* The message stays until the next failing call; a successful call leaves it. */
  CHECK_OK(flexjit_mod_text(causal, NULL, 0, NULL));
  CHECK(strstr(flexjit_last_error(), "out is NULL") != NULL);

  /* Signatures: buffers and params by name, sorted. */
  flexjit_mod doc_swa = NULL, biased = NULL;
  CHECK_OK(flexjit_mask_mod_from_text(
      "(doc:i32:1[q_idx] == doc:i32:1[kv_idx]) && ((q_idx - kv_idx) <= window:int)", &doc_swa));
  CHECK_OK(flexjit_score_mod_from_text(
      "score * scale:float + bias:f32:2[h, kv_idx] + float(zeta:int)", &biased));
  char signature[256];
  CHECK_OK(flexjit_mod_signature(doc_swa, signature, sizeof signature, &needed));
  CHECK(strcmp(signature, "buffer doc i32 1\nparam window int\n") == 0);
  CHECK(needed == strlen(signature) + 1);
  CHECK_OK(flexjit_mod_signature(biased, signature, sizeof signature, NULL));
  CHECK(strcmp(signature, "buffer bias f32 2\nparam scale float\nparam zeta int\n") == 0);
  CHECK_OK(flexjit_mod_signature(causal, signature, sizeof signature, &needed));
  CHECK(strcmp(signature, "") == 0 && needed == 1);
  CHECK_FAILS(flexjit_mod_signature(NULL, signature, sizeof signature, &needed), FLEXJIT_ERROR,
              "flexjit_mod_signature: mod is NULL", "flexjit_mod");

  /* NULL handles are ignored or answered neutrally. */
  CHECK(flexjit_mod_is_mask(NULL) == 0);
  CHECK(flexjit_mod_hash(NULL) == 0);
  flexjit_mod_destroy(NULL);

  flexjit_mod_destroy(causal);
  flexjit_mod_destroy(causal2);
  flexjit_mod_destroy(causal3);
  flexjit_mod_destroy(other);
  flexjit_mod_destroy(softcap);
  flexjit_mod_destroy(doc_swa);
  flexjit_mod_destroy(biased);
}

/* ---- Tensors -------------------------------------------------------------------------------- */

static void test_tensors(void) {
  int32_t data[24];
  int64_t shape[3] = {2, 3, 4};
  DLTensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.device.device_type = kDLCPU;
  t.ndim = 3;
  t.dtype.code = kDLInt;
  t.dtype.bits = 32;
  t.dtype.lanes = 1;
  t.shape = shape;
  t.strides = NULL;
  t.byte_offset = 8;
  flexjit_tensor out;
  CHECK_OK(flexjit_tensor_from_dlpack(&t, &out));
  CHECK(out.data == (void*)(data + 2));
  CHECK(out.dtype == FLEXJIT_I32 && out.device == FLEXJIT_HOST && out.rank == 3);
  CHECK(out.sizes[0] == 2 && out.sizes[1] == 3 && out.sizes[2] == 4);
  CHECK(out.strides[0] == 12 && out.strides[1] == 4 && out.strides[2] == 1);
  CHECK(out.dlpack == NULL);

  int64_t strides[3] = {1, 2, 6};
  t.strides = strides;
  t.byte_offset = 0;
  t.device.device_type = kDLCUDA;
  t.dtype.code = kDLBfloat;
  t.dtype.bits = 16;
  CHECK_OK(flexjit_tensor_from_dlpack(&t, &out));
  CHECK(out.dtype == FLEXJIT_BF16 && out.device == FLEXJIT_CUDA);
  CHECK(out.strides[0] == 1 && out.strides[1] == 2 && out.strides[2] == 6);

  /* Every dtype and device DLPack tensors may have. */
  struct {
    uint8_t code, bits;
    int32_t dtype;
  } dtypes[] = {{kDLInt, 32, FLEXJIT_I32},          {kDLFloat, 32, FLEXJIT_F32},
                {kDLFloat, 16, FLEXJIT_F16},        {kDLBfloat, 16, FLEXJIT_BF16},
                {6 /* kDLBool */, 8, FLEXJIT_BOOL}, {kDLUInt, 8, FLEXJIT_BOOL}};
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; ++i) {
    t.dtype.code = dtypes[i].code;
    t.dtype.bits = dtypes[i].bits;
    CHECK_OK(flexjit_tensor_from_dlpack(&t, &out));
    CHECK(out.dtype == dtypes[i].dtype);
  }
  DLDeviceType devices[] = {kDLCPU, kDLCUDA, kDLCUDAHost, kDLCUDAManaged};
  int32_t expected_devices[] = {FLEXJIT_HOST, FLEXJIT_CUDA, FLEXJIT_CUDA, FLEXJIT_CUDA};
  for (size_t i = 0; i < 4; ++i) {
    t.device.device_type = devices[i];
    CHECK_OK(flexjit_tensor_from_dlpack(&t, &out));
    CHECK(out.device == expected_devices[i]);
  }

  /* What DLPack may hold that flexjit does not take; out is untouched. */
  memset(&out, 0x5a, sizeof out);
  t.dtype.code = kDLFloat;
  t.dtype.bits = 64;
  CHECK_FAILS(flexjit_tensor_from_dlpack(&t, &out), FLEXJIT_ERROR,
              "DLPack dtype (code 2, bits 64, lanes 1) is not supported", "float16");
  t.dtype.bits = 32;
  t.dtype.lanes = 4;
  CHECK_FAILS(flexjit_tensor_from_dlpack(&t, &out), FLEXJIT_ERROR, "lanes 4", "one lane");
  t.dtype.lanes = 1;
  t.device.device_type = kDLOpenCL;
  CHECK_FAILS(flexjit_tensor_from_dlpack(&t, &out), FLEXJIT_ERROR, "DLPack device type 4",
              "kDLCUDAManaged");
  t.device.device_type = kDLCPU;
  t.ndim = 5;
  CHECK_FAILS(flexjit_tensor_from_dlpack(&t, &out), FLEXJIT_ERROR, "DLPack ndim 5", "0 to 4");
  t.ndim = 3;
  shape[1] = -3;
  CHECK_FAILS(flexjit_tensor_from_dlpack(&t, &out), FLEXJIT_ERROR,
              "size -3 in dimension 1 is negative", ">= 0");
  shape[1] = 3;
  t.shape = NULL;
  CHECK_FAILS(flexjit_tensor_from_dlpack(&t, &out), FLEXJIT_ERROR, "tensor: DLPack shape is NULL",
              "ndim sizes");
  CHECK_FAILS(flexjit_tensor_from_dlpack(NULL, &out), FLEXJIT_ERROR, "tensor is NULL", "DLTensor");
  t.shape = shape;
  CHECK_FAILS(flexjit_tensor_from_dlpack(&t, NULL), FLEXJIT_ERROR, "out is NULL", "flexjit_tensor");
  {
    flexjit_tensor poison;
    memset(&poison, 0x5a, sizeof poison);
    CHECK(memcmp(&out, &poison, sizeof out) == 0);
  }
}

/* ---- Block masks ---------------------------------------------------------------------------- */

typedef int (*allowed_fn)(const void* ctx, int b, int h, int q, int kv);

/* Tile states [B, H, nq, nkv] from the definition: 2 when every in-range pair of the tile
 * attends, 0 when none, else 1. */
static uint8_t* brute_states(allowed_fn allowed, const void* ctx, int B, int H, int q_len,
                             int kv_len, int q_block, int kv_block) {
  const int nq = (q_len + q_block - 1) / q_block, nkv = (kv_len + kv_block - 1) / kv_block;
  uint8_t* states = malloc((size_t)B * H * nq * nkv);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int qb = 0; qb < nq; ++qb)
        for (int kb = 0; kb < nkv; ++kb) {
          long yes = 0, all = 0;
          for (int q = qb * q_block; q < (qb + 1) * q_block && q < q_len; ++q)
            for (int kv = kb * kv_block; kv < (kb + 1) * kv_block && kv < kv_len; ++kv) {
              yes += allowed(ctx, b, h, q, kv) != 0;
              ++all;
            }
          states[((size_t)(b * H + h) * nq + qb) * nkv + kb] = yes == 0 ? 0 : (yes == all ? 2 : 1);
        }
  return states;
}

/* Checks a mask's info and states against the brute force; returns its sparsity. */
static void check_mask(flexjit_block_mask mask, allowed_fn allowed, const void* ctx, int B, int H,
                       int q_len, int kv_len, int q_block, int kv_block, const char* what) {
  flexjit_block_mask_info info;
  memset(&info, 0, sizeof info);
  CHECK_OK(flexjit_block_mask_get_info(mask, &info));
  const int nq = (q_len + q_block - 1) / q_block, nkv = (kv_len + kv_block - 1) / kv_block;
  CHECK(info.B == B && info.H == H && info.q_len == q_len && info.kv_len == kv_len);
  CHECK(info.q_block == q_block && info.kv_block == kv_block);
  CHECK(info.num_q_blocks == nq && info.num_kv_blocks == nkv);
  const size_t count = (size_t)B * H * nq * nkv;
  uint8_t* expected = brute_states(allowed, ctx, B, H, q_len, kv_len, q_block, kv_block);
  uint8_t* states = malloc(count);
  memset(states, 7, count);
  CHECK_OK(flexjit_block_mask_states(mask, states, count));
  size_t empty = 0, wrong = 0;
  for (size_t i = 0; i < count; ++i) {
    empty += expected[i] == 0;
    wrong += states[i] != expected[i];
  }
  if (wrong)
    fprintf(stderr, "%s: %zu of %zu tile states differ from the brute force\n", what, wrong, count);
  CHECK(wrong == 0);
  CHECK(fabs(info.sparsity - 100.0 * (double)empty / (double)count) < 1e-9);
  /* A count that is not the tile count is an error, and nothing is written. */
  memset(states, 7, count);
  CHECK_FAILS(flexjit_block_mask_states(mask, states, count - 1), FLEXJIT_ERROR, "count is",
              "expected B * H * num_q_blocks * num_kv_blocks");
  CHECK(states[0] == 7);
  free(states);
  free(expected);
}

static int causal_allowed(const void* ctx, int b, int h, int q, int kv) {
  (void)ctx, (void)b, (void)h;
  return kv <= q;
}

static int window_allowed(const void* ctx, int b, int h, int q, int kv) {
  (void)b, (void)h;
  return kv <= q && q - kv <= *(const int*)ctx;
}

/* doc ids read through strides, as the mask reads them. */
typedef struct {
  const int32_t* ids;
  int64_t stride;
} Docs;
static int document_allowed(const void* ctx, int b, int h, int q, int kv) {
  const Docs* d = ctx;
  (void)b, (void)h;
  return d->ids[q * d->stride] == d->ids[kv * d->stride];
}

/* keep[b][kv]: a bool buffer. */
typedef struct {
  const uint8_t* keep;
  int kv_len;
} Keep;
static int keep_allowed(const void* ctx, int b, int h, int q, int kv) {
  const Keep* k = ctx;
  (void)h, (void)q;
  return k->keep[b * k->kv_len + kv] != 0;
}

static void test_block_masks(void) {
  flexjit_mod causal = NULL, window = NULL, document = NULL, keep = NULL, score = NULL;
  CHECK_OK(flexjit_mask_mod_from_text("kv_idx <= q_idx", &causal));
  CHECK_OK(flexjit_mask_mod_from_text("kv_idx <= q_idx && q_idx - kv_idx <= window:int", &window));
  CHECK_OK(flexjit_mask_mod_from_text("doc:i32:1[q_idx] == doc:i32:1[kv_idx]", &document));
  CHECK_OK(flexjit_mask_mod_from_text("keep:bool:2[b, kv_idx]", &keep));
  CHECK_OK(flexjit_score_mod_from_text("score * 2.0f", &score));

  /* Causal, ragged last blocks, default options (NULL) and 128 x 128 tiles. */
  flexjit_block_mask mask = NULL;
  CHECK_OK(flexjit_create_block_mask(causal, 1, 1, 1000, 1000, NULL, NULL, &mask));
  check_mask(mask, causal_allowed, NULL, 1, 1, 1000, 1000, 128, 128, "causal");

  /* to_string's capacity protocol: capacity 0 asks, a short buffer is a prefix. */
  size_t needed = 0;
  CHECK_OK(flexjit_block_mask_to_string(mask, 20, 4, NULL, 0, &needed));
  CHECK(needed > 40);
  char* picture = malloc(needed);
  size_t again = 0;
  CHECK_OK(flexjit_block_mask_to_string(mask, 20, 4, picture, needed, &again));
  CHECK(again == needed && strlen(picture) + 1 == needed);
  CHECK(strstr(picture, "BlockMask(shape=(1, 1, 1000, 1000), sparsity=") == picture);
  char prefix[11];
  CHECK_OK(flexjit_block_mask_to_string(mask, 20, 4, prefix, sizeof prefix, &again));
  CHECK(again == needed && strlen(prefix) == 10 && strncmp(prefix, picture, 10) == 0);
  free(picture);
  flexjit_block_mask_destroy(mask);

  /* A sliding window, its param bound by name, 64 x 128 tiles; an unbound param is an error. */
  flexjit_block_mask_options options;
  flexjit_block_mask_options_init(&options);
  CHECK(options.struct_size == sizeof options && options.q_block == 128 &&
        options.kv_block == 128 && options.device == FLEXJIT_HOST && options.host_arrays == 1);
  options.q_block = 64;
  flexjit_bindings bindings = NULL;
  CHECK_OK(flexjit_bindings_create(&bindings));
  mask = NULL;
  CHECK_FAILS(flexjit_create_block_mask(window, 1, 1, 777, 900, &options, bindings, &mask),
              FLEXJIT_ERROR, "param 'window' was never bound", "bind it at call time");
  CHECK(mask == NULL);
  int w = 200;
  CHECK_OK(flexjit_bindings_set_param_i32(bindings, "window", w));
  CHECK_OK(flexjit_create_block_mask(window, 1, 1, 777, 900, &options, bindings, &mask));
  check_mask(mask, window_allowed, &w, 1, 1, 777, 900, 64, 128, "sliding window");
  flexjit_block_mask_destroy(mask);
  w = 37; /* rebinding changes the mask */
  CHECK_OK(flexjit_bindings_set_param_i32(bindings, "window", w));
  CHECK_OK(flexjit_create_block_mask(window, 1, 1, 777, 900, &options, bindings, &mask));
  check_mask(mask, window_allowed, &w, 1, 1, 777, 900, 64, 128, "sliding window 37");
  flexjit_block_mask_destroy(mask);

  /* A document mask: ids of 4 documents in a host int32 buffer, strided (every other int32)
   * and one element in, given through a DLManagedTensor (byte_offset, strides); then the same
   * ids contiguous through a raw flexjit_tensor. */
  enum { S = 1100 };
  int32_t* interleaved = malloc(sizeof(int32_t) * (2 * S + 1));
  int32_t* ids = malloc(sizeof(int32_t) * S);
  const int lengths[4] = {300, 517, 100, 183};
  for (int i = 0, d = 0, end = lengths[0]; i < S; ++i) {
    if (i == end)
      end += lengths[++d];
    ids[i] = d;
    interleaved[1 + 2 * i] = d;
    interleaved[2 + 2 * i] = -1 - i; /* noise between the ids */
  }
  interleaved[0] = 1234;
  int64_t dl_shape[1] = {S}, dl_strides[1] = {2};
  DLManagedTensor managed;
  memset(&managed, 0, sizeof managed);
  managed.dl_tensor.data = interleaved;
  managed.dl_tensor.byte_offset = sizeof(int32_t);
  managed.dl_tensor.device.device_type = kDLCPU;
  managed.dl_tensor.ndim = 1;
  managed.dl_tensor.dtype.code = kDLInt;
  managed.dl_tensor.dtype.bits = 32;
  managed.dl_tensor.dtype.lanes = 1;
  managed.dl_tensor.shape = dl_shape;
  managed.dl_tensor.strides = dl_strides;
  flexjit_tensor doc;
  memset(&doc, 0, sizeof doc);
  doc.dlpack = &managed;
  CHECK_OK(flexjit_bindings_set_buffer(bindings, "doc", &doc));
  flexjit_block_mask_options_init(&options);
  CHECK_OK(flexjit_create_block_mask(document, 1, 1, S, S, &options, bindings, &mask));
  const Docs strided = {interleaved + 1, 2};
  check_mask(mask, document_allowed, &strided, 1, 1, S, S, 128, 128, "document (DLPack)");
  flexjit_block_mask_destroy(mask);

  memset(&doc, 0, sizeof doc);
  doc.data = ids;
  doc.dtype = FLEXJIT_I32;
  doc.device = FLEXJIT_HOST;
  doc.rank = 1;
  doc.sizes[0] = S;
  doc.strides[0] = 1;
  CHECK_OK(flexjit_bindings_set_buffer(bindings, "doc", &doc));
  options.kv_block = 64;
  CHECK_OK(flexjit_create_block_mask(document, 1, 1, S, S, &options, bindings, &mask));
  const Docs contiguous = {ids, 1};
  check_mask(mask, document_allowed, &contiguous, 1, 1, S, S, 128, 64, "document (raw)");
  flexjit_block_mask_destroy(mask);

  /* A bool buffer [B, kv_len] from DLPack (kDLBool, then uint8), B = 2. */
  enum { KV = 300 };
  uint8_t flags[2 * KV];
  for (int i = 0; i < 2 * KV; ++i)
    flags[i] = (uint8_t)(i < KV ? (i % 97) < 60 : i > KV + 150);
  int64_t keep_shape[2] = {2, KV};
  DLManagedTensor keep_dl;
  memset(&keep_dl, 0, sizeof keep_dl);
  keep_dl.dl_tensor.data = flags;
  keep_dl.dl_tensor.device.device_type = kDLCPU;
  keep_dl.dl_tensor.ndim = 2;
  keep_dl.dl_tensor.dtype.code = 6; /* kDLBool */
  keep_dl.dl_tensor.dtype.bits = 8;
  keep_dl.dl_tensor.dtype.lanes = 1;
  keep_dl.dl_tensor.shape = keep_shape;
  flexjit_tensor keep_tensor;
  memset(&keep_tensor, 0, sizeof keep_tensor);
  keep_tensor.dlpack = &keep_dl;
  const Keep keep_ctx = {flags, KV};
  for (int code = 0; code < 2; ++code) {
    keep_dl.dl_tensor.dtype.code = code == 0 ? 6 : kDLUInt;
    CHECK_OK(flexjit_bindings_set_buffer(bindings, "keep", &keep_tensor));
    flexjit_block_mask_options_init(&options);
    options.q_block = 32;
    options.kv_block = 16;
    CHECK_OK(flexjit_create_block_mask(keep, 2, 1, 64, KV, &options, bindings, &mask));
    check_mask(mask, keep_allowed, &keep_ctx, 2, 1, 64, KV, 32, 16, "keep (bool)");
    flexjit_block_mask_destroy(mask);
  }

  /* Errors: options, handles, dtypes. *out is untouched by a failing call. */
  flexjit_block_mask untouched = (flexjit_block_mask)&failures;
  flexjit_block_mask_options_init(&options);
  options.struct_size = 3;
  CHECK_FAILS(flexjit_create_block_mask(causal, 1, 1, 256, 256, &options, NULL, &untouched),
              FLEXJIT_ERROR, "options.struct_size is 3", "call flexjit_block_mask_options_init");
  flexjit_block_mask_options_init(&options);
  options.device = 7;
  CHECK_FAILS(flexjit_create_block_mask(causal, 1, 1, 256, 256, &options, NULL, &untouched),
              FLEXJIT_ERROR, "options.device is 7", "1 (FLEXJIT_CUDA)");
  flexjit_block_mask_options_init(&options);
  options.host_arrays = 5;
  CHECK_FAILS(flexjit_create_block_mask(causal, 1, 1, 256, 256, &options, NULL, &untouched),
              FLEXJIT_ERROR, "options.host_arrays is 5", "0 or 1");
  flexjit_block_mask_options_init(&options);
  options.q_block = 100;
  CHECK_FAILS(flexjit_create_block_mask(causal, 1, 1, 256, 256, &options, NULL, &untouched),
              FLEXJIT_ERROR, "q_block", "power of two");
  CHECK_FAILS(flexjit_create_block_mask(score, 1, 1, 256, 256, NULL, NULL, &untouched),
              FLEXJIT_ERROR, "mask_mod is a score_mod", "expected a mask_mod");
  CHECK_FAILS(flexjit_create_block_mask(NULL, 1, 1, 256, 256, NULL, NULL, &untouched),
              FLEXJIT_ERROR, "mask_mod is NULL", "expected a mask_mod");
  CHECK_FAILS(flexjit_create_block_mask(causal, 1, 1, 256, 256, NULL, NULL, NULL), FLEXJIT_ERROR,
              "out is NULL", "flexjit_block_mask");
  CHECK_FAILS(flexjit_create_block_mask(causal, 1, 1, -4, 256, NULL, NULL, &untouched),
              FLEXJIT_ERROR, "q_len", "got -4");
  CHECK(untouched == (flexjit_block_mask)&failures);
  flexjit_block_mask_info info;
  CHECK_FAILS(flexjit_block_mask_get_info(NULL, &info), FLEXJIT_ERROR, "mask is NULL",
              "flexjit_block_mask");
  CHECK_FAILS(flexjit_block_mask_states(NULL, NULL, 0), FLEXJIT_ERROR, "mask is NULL",
              "flexjit_block_mask");
  CHECK_FAILS(flexjit_block_mask_to_string(NULL, 20, 4, NULL, 0, NULL), FLEXJIT_ERROR,
              "mask is NULL", "flexjit_block_mask");
  flexjit_block_mask_destroy(NULL);

  /* Bindings' errors: NULL arguments, a bad dtype, rank, device or size of a raw tensor, a
   * tensor bound with the wrong dtype for the mod. */
  CHECK_FAILS(flexjit_bindings_create(NULL), FLEXJIT_ERROR, "flexjit_bindings_create: out is NULL",
              "flexjit_bindings");
  CHECK_FAILS(flexjit_bindings_set_param_f32(NULL, "x", 1.0f), FLEXJIT_ERROR, "bindings is NULL",
              "flexjit_bindings");
  CHECK_FAILS(flexjit_bindings_set_param_i32(bindings, NULL, 1), FLEXJIT_ERROR, "name is NULL",
              "the param's name");
  CHECK_FAILS(flexjit_bindings_set_buffer(bindings, "doc", NULL), FLEXJIT_ERROR, "tensor is NULL",
              "flexjit_tensor");
  flexjit_tensor bad = doc;
  bad.dtype = 9;
  CHECK_FAILS(flexjit_bindings_set_buffer(bindings, "doc", &bad), FLEXJIT_ERROR,
              "tensor.dtype is 9", "4 (FLEXJIT_BOOL)");
  bad = doc;
  bad.device = -1;
  CHECK_FAILS(flexjit_bindings_set_buffer(bindings, "doc", &bad), FLEXJIT_ERROR,
              "tensor.device is -1", "1 (FLEXJIT_CUDA)");
  bad = doc;
  bad.rank = 5;
  CHECK_FAILS(flexjit_bindings_set_buffer(bindings, "doc", &bad), FLEXJIT_ERROR, "tensor.rank is 5",
              "0 to 4");
  bad = doc;
  bad.sizes[0] = -1;
  CHECK_FAILS(flexjit_bindings_set_buffer(bindings, "doc", &bad), FLEXJIT_ERROR,
              "tensor: size -1 in dimension 0 is negative", ">= 0");
  managed.dl_tensor.dtype.bits = 64;
  bad = doc;
  bad.dlpack = &managed; /* dlpack wins over the raw fields */
  CHECK_FAILS(flexjit_bindings_set_buffer(bindings, "doc", &bad), FLEXJIT_ERROR,
              "tensor: DLPack dtype (code 0, bits 64, lanes 1)", "int32");
  bad = doc;
  bad.dtype = FLEXJIT_F32;
  CHECK_OK(flexjit_bindings_set_buffer(bindings, "doc", &bad));
  CHECK_FAILS(flexjit_create_block_mask(document, 1, 1, S, S, NULL, bindings, &untouched),
              FLEXJIT_ERROR, "buffer 'doc' is declared i32", "f32");

  /* The GPU builder without a GPU: FLEXJIT_ERROR_NO_CUDA, saying why. */
  if (!flexjit_cuda_available()) {
    CHECK(strlen(flexjit_cuda_unavailable_reason()) > 0);
    flexjit_block_mask_options_init(&options);
    options.device = FLEXJIT_CUDA;
    CHECK_FAILS(flexjit_create_block_mask(causal, 1, 1, 256, 256, &options, NULL, &untouched),
                FLEXJIT_ERROR_NO_CUDA, "CUDA is not available", flexjit_cuda_unavailable_reason());
    /* Auto falls back to the host. */
    options.device = 2;
    CHECK_OK(flexjit_create_block_mask(causal, 1, 1, 256, 256, &options, NULL, &mask));
    check_mask(mask, causal_allowed, NULL, 1, 1, 256, 256, 128, 128, "causal (auto)");
    flexjit_block_mask_destroy(mask);
  } else {
    CHECK(strcmp(flexjit_cuda_unavailable_reason(), "") == 0);
  }

  flexjit_bindings_destroy(bindings);
  flexjit_bindings_destroy(NULL);
  free(interleaved);
  free(ids);
  flexjit_mod_destroy(causal);
  flexjit_mod_destroy(window);
  flexjit_mod_destroy(document);
  flexjit_mod_destroy(keep);
  flexjit_mod_destroy(score);
}

/* ---- Attention ------------------------------------------------------------------------------ */

static flexjit_tensor host_view(void* data, int32_t dtype, int64_t b, int64_t h, int64_t s,
                                int64_t d) {
  flexjit_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dtype;
  t.device = FLEXJIT_HOST;
  t.rank = 4;
  t.sizes[0] = b;
  t.sizes[1] = h;
  t.sizes[2] = s;
  t.sizes[3] = d;
  t.strides[3] = 1;
  t.strides[2] = d;
  t.strides[1] = s * d;
  t.strides[0] = h * s * d;
  return t;
}

/* Without device memory every attention call fails cleanly, with a message. */
static void test_attention_errors(void) {
  static uint16_t q[1 * 2 * 128 * 64], k[1 * 2 * 128 * 64], v[1 * 2 * 128 * 64],
      out[1 * 2 * 128 * 64];
  flexjit_tensor tq = host_view(q, FLEXJIT_F16, 1, 2, 128, 64);
  flexjit_tensor tk = host_view(k, FLEXJIT_F16, 1, 2, 128, 64);
  flexjit_tensor tv = host_view(v, FLEXJIT_F16, 1, 2, 128, 64);
  flexjit_tensor to = host_view(out, FLEXJIT_F16, 1, 2, 128, 64);
  CHECK_FAILS(flexjit_flex_attention(&tq, &tk, &tv, &to, NULL), FLEXJIT_ERROR, "q is host memory",
              "device memory");
  CHECK_FAILS(flexjit_flex_attention(NULL, &tk, &tv, &to, NULL), FLEXJIT_ERROR,
              "flexjit_flex_attention: q is NULL", "flexjit_tensor");
  flexjit_attention_options options;
  flexjit_attention_options_init(&options);
  CHECK(options.struct_size == sizeof options && options.score_mod == NULL &&
        options.block_mask == NULL && options.has_scale == 0 && options.lse == NULL &&
        options.schedule == FLEXJIT_SCHEDULE_AUTO && options.kv_cache == NULL);
  options.struct_size = 8;
  CHECK_FAILS(flexjit_flex_attention(&tq, &tk, &tv, &to, &options), FLEXJIT_ERROR,
              "options.struct_size is 8", "flexjit_attention_options_init");
  flexjit_attention_options_init(&options);
  options.schedule = 4;
  CHECK_FAILS(flexjit_flex_attention(&tq, &tk, &tv, &to, &options), FLEXJIT_ERROR,
              "options.schedule is 4", "3 (SPLIT_KV)");
  flexjit_attention_options_init(&options);
  flexjit_mod causal = NULL;
  CHECK_OK(flexjit_mask_mod_from_text("kv_idx <= q_idx", &causal));
  options.score_mod = causal;
  CHECK_FAILS(flexjit_flex_attention(&tq, &tk, &tv, &to, &options), FLEXJIT_ERROR,
              "options.score_mod is a mask_mod", "expected a score_mod");
  flexjit_attention_options_init(&options);
  options.has_scale = 2;
  CHECK_FAILS(flexjit_flex_attention(&tq, &tk, &tv, &to, &options), FLEXJIT_ERROR,
              "options.has_scale is 2", "0 or 1");
  flexjit_attention_options_init(&options);
  { /* claimed device memory reaches the C++ checks: a dtype mismatch, before any CUDA call */
    flexjit_tensor cq = tq, ck = tk, cv = tv, co = to;
    cq.device = ck.device = cv.device = co.device = FLEXJIT_CUDA;
    ck.dtype = FLEXJIT_F32;
    CHECK_FAILS(flexjit_flex_attention(&cq, &ck, &cv, &co, &options), FLEXJIT_ERROR, "k", "f32");
  }

  /* The backward needs options (with the forward's lse). */
  CHECK_FAILS(flexjit_flex_attention_backward(&tq, &tk, &tv, &to, &to, &tq, &tk, &tv, NULL),
              FLEXJIT_ERROR, "options is NULL", "lse");
  CHECK(flexjit_flex_attention_backward(&tq, &tk, &tv, &to, &to, &tq, &tk, &tv, &options) ==
        FLEXJIT_ERROR);
  CHECK(strlen(flexjit_last_error()) > 10);
  flexjit_kv_cache cache;
  memset(&cache, 0, sizeof cache);
  CHECK_FAILS(flexjit_append_kv_cache(&tk, &tv, &tk, &tv, NULL, NULL), FLEXJIT_ERROR,
              "cache is NULL", "kv_lens");
  CHECK(flexjit_append_kv_cache(&tk, &tv, &tk, &tv, &cache, NULL) == FLEXJIT_ERROR);
  CHECK(strlen(flexjit_last_error()) > 10);

  flexjit_varlen_options varlen;
  flexjit_varlen_options_init(&varlen);
  CHECK(varlen.struct_size == sizeof varlen && varlen.window_left == -1 &&
        varlen.window_right == -1 && varlen.causal == 0 && varlen.dropout_p == 0.0f);
  varlen.dropout_p = 0.1f;
  flexjit_tensor packed = tq, cu = tq;
  packed.rank = 3;
  cu.rank = 1;
  cu.dtype = FLEXJIT_I32;
  cu.sizes[0] = 2;
  cu.strides[0] = 1;
  CHECK_FAILS(
      flexjit_attention_forward_varlen(&packed, &packed, &packed, &cu, &cu, &packed, &varlen),
      FLEXJIT_ERROR, "dropout_p", "not supported");
  flexjit_varlen_options_init(&varlen);
  varlen.mask_mod = causal;
  varlen.score_mod = causal;
  CHECK_FAILS(
      flexjit_attention_forward_varlen(&packed, &packed, &packed, &cu, &cu, &packed, &varlen),
      FLEXJIT_ERROR, "options.score_mod is a mask_mod", "expected a score_mod");
  varlen.struct_size = 1;
  CHECK_FAILS(
      flexjit_attention_forward_varlen(&packed, &packed, &packed, &cu, &cu, &packed, &varlen),
      FLEXJIT_ERROR, "options.struct_size is 1", "flexjit_varlen_options_init");

  flexjit_tensor lse = tq;
  lse.rank = 3;
  lse.dtype = FLEXJIT_F32;
  CHECK(flexjit_merge_attention(&to, &lse, &to, &lse, &to, &lse, NULL) == FLEXJIT_ERROR);
  CHECK(strstr(flexjit_last_error(), "host memory") != NULL);
  CHECK_FAILS(flexjit_merge_attention(&to, &lse, &to, NULL, &to, &lse, NULL), FLEXJIT_ERROR,
              "lse_b is NULL", "flexjit_tensor");
  flexjit_mod_destroy(causal);
}

/* ---- Attention on a GPU -----------------------------------------------------------------------
 */

typedef int CUresult_;
typedef unsigned long long CUdeviceptr_;
typedef struct {
  CUresult_ (*cuInit)(unsigned);
  CUresult_ (*cuDeviceGet)(int*, int);
  CUresult_ (*cuDevicePrimaryCtxRetain)(void**, int);
  CUresult_ (*cuCtxSetCurrent)(void*);
  CUresult_ (*cuCtxSynchronize)(void);
  CUresult_ (*cuMemAlloc)(CUdeviceptr_*, size_t);
  CUresult_ (*cuMemFree)(CUdeviceptr_);
  CUresult_ (*cuMemcpyHtoD)(CUdeviceptr_, const void*, size_t);
  CUresult_ (*cuMemcpyDtoH)(void*, CUdeviceptr_, size_t);
} Cuda;

static int load_cuda(Cuda* cu) {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return 0;
    /* dlsym's void* to a function pointer, through memcpy (ISO C has no such cast). */
#define LOAD(member, symbol)                                                                       \
  do {                                                                                             \
    void* p_ = dlsym(lib, symbol);                                                                 \
    if (!p_)                                                                                       \
      return 0;                                                                                    \
    memcpy(&cu->member, &p_, sizeof p_);                                                           \
  } while (0)
  LOAD(cuInit, "cuInit");
  LOAD(cuDeviceGet, "cuDeviceGet");
  LOAD(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  LOAD(cuCtxSetCurrent, "cuCtxSetCurrent");
  LOAD(cuCtxSynchronize, "cuCtxSynchronize");
  LOAD(cuMemAlloc, "cuMemAlloc_v2");
  LOAD(cuMemFree, "cuMemFree_v2");
  LOAD(cuMemcpyHtoD, "cuMemcpyHtoD_v2");
  LOAD(cuMemcpyDtoH, "cuMemcpyDtoH_v2");
#undef LOAD
  int device = 0;
  void* context = NULL;
  return cu->cuInit(0) == 0 && cu->cuDeviceGet(&device, 0) == 0 &&
         cu->cuDevicePrimaryCtxRetain(&context, device) == 0 && cu->cuCtxSetCurrent(context) == 0;
}

static uint16_t to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int exponent = (int)((x >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = x & 0x7fffffu;
  if (exponent <= 0) { /* subnormal or zero: |f| < 2^-14 here, inputs are small */
    if (exponent < -10)
      return (uint16_t)sign;
    mantissa |= 0x800000u;
    const int shift = 14 - exponent;
    uint32_t h = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1)))
      ++h;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)exponent << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1)))
    ++h; /* may carry into the exponent: still correct */
  return (uint16_t)(sign | h);
}

static double from_half(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exponent == 0)
    return sign * ldexp(mantissa, -24);
  if (exponent == 31)
    return mantissa ? NAN : sign * INFINITY;
  return sign * ldexp(1024 + mantissa, exponent - 25);
}

static void test_attention_gpu(void) {
  if (!flexjit_cuda_available()) {
    printf("flex_attention on a GPU: skipped (%s)\n", flexjit_cuda_unavailable_reason());
    return;
  }
  Cuda cu;
  memset(&cu, 0, sizeof cu);
  if (!load_cuda(&cu)) {
    fprintf(stderr, "flexjit_cuda_available() but libcuda.so.1 did not load here\n");
    ++failures;
    return;
  }
  /* q [1, 2, S, D], k and v [1, 1, S, D] (GQA), f16; a sliding window of `window` through a
   * block mask and a distance bias of `slope` as score_mod, both params bound by name. */
  enum { B = 1, HQ = 2, HKV = 1, S = 256, D = 64 };
  const int window = 100;
  const float slope = 0.05f;
  const size_t nq = (size_t)B * HQ * S * D, nkv = (size_t)B * HKV * S * D;
  uint16_t* hq = malloc(nq * 2);
  uint16_t* hk = malloc(nkv * 2);
  uint16_t* hv = malloc(nkv * 2);
  uint16_t* ho = malloc(nq * 2);
  float* hlse = malloc(sizeof(float) * B * HQ * S);
  srand(7);
  for (size_t i = 0; i < nq; ++i)
    hq[i] = to_half((float)rand() / (float)RAND_MAX * 2.0f - 1.0f);
  for (size_t i = 0; i < nkv; ++i) {
    hk[i] = to_half((float)rand() / (float)RAND_MAX * 2.0f - 1.0f);
    hv[i] = to_half((float)rand() / (float)RAND_MAX * 2.0f - 1.0f);
  }
  CUdeviceptr_ dq = 0, dk = 0, dv = 0, dout = 0, dlse = 0;
  CHECK(cu.cuMemAlloc(&dq, nq * 2) == 0 && cu.cuMemAlloc(&dk, nkv * 2) == 0 &&
        cu.cuMemAlloc(&dv, nkv * 2) == 0 && cu.cuMemAlloc(&dout, nq * 2) == 0 &&
        cu.cuMemAlloc(&dlse, sizeof(float) * B * HQ * S) == 0);
  CHECK(cu.cuMemcpyHtoD(dq, hq, nq * 2) == 0 && cu.cuMemcpyHtoD(dk, hk, nkv * 2) == 0 &&
        cu.cuMemcpyHtoD(dv, hv, nkv * 2) == 0);

  flexjit_mod mask_mod = NULL, score_mod = NULL;
  CHECK_OK(
      flexjit_mask_mod_from_text("kv_idx <= q_idx && q_idx - kv_idx <= window:int", &mask_mod));
  CHECK_OK(flexjit_score_mod_from_text("score - slope:float * float(q_idx - kv_idx)", &score_mod));
  flexjit_bindings bindings = NULL;
  CHECK_OK(flexjit_bindings_create(&bindings));
  CHECK_OK(flexjit_bindings_set_param_i32(bindings, "window", window));
  CHECK_OK(flexjit_bindings_set_param_f32(bindings, "slope", slope));
  flexjit_block_mask mask = NULL;
  CHECK_OK(flexjit_create_block_mask(mask_mod, 1, 1, S, S, NULL, bindings, &mask));

  /* q through DLPack (kDLCUDA), the others raw. */
  int64_t q_shape[4] = {B, HQ, S, D};
  DLManagedTensor q_dl;
  memset(&q_dl, 0, sizeof q_dl);
  q_dl.dl_tensor.data = (void*)(uintptr_t)dq;
  q_dl.dl_tensor.device.device_type = kDLCUDA;
  q_dl.dl_tensor.ndim = 4;
  q_dl.dl_tensor.dtype.code = kDLFloat;
  q_dl.dl_tensor.dtype.bits = 16;
  q_dl.dl_tensor.dtype.lanes = 1;
  q_dl.dl_tensor.shape = q_shape;
  flexjit_tensor tq;
  memset(&tq, 0, sizeof tq);
  tq.dlpack = &q_dl;
  flexjit_tensor tk = host_view((void*)(uintptr_t)dk, FLEXJIT_F16, B, HKV, S, D);
  flexjit_tensor tv = host_view((void*)(uintptr_t)dv, FLEXJIT_F16, B, HKV, S, D);
  flexjit_tensor to = host_view((void*)(uintptr_t)dout, FLEXJIT_F16, B, HQ, S, D);
  tk.device = tv.device = to.device = FLEXJIT_CUDA;
  flexjit_tensor tlse;
  memset(&tlse, 0, sizeof tlse);
  tlse.data = (void*)(uintptr_t)dlse;
  tlse.dtype = FLEXJIT_F32;
  tlse.device = FLEXJIT_CUDA;
  tlse.rank = 3;
  tlse.sizes[0] = B;
  tlse.sizes[1] = HQ;
  tlse.sizes[2] = S;
  tlse.strides[0] = HQ * S;
  tlse.strides[1] = S;
  tlse.strides[2] = 1;

  flexjit_attention_options options;
  flexjit_attention_options_init(&options);
  options.score_mod = score_mod;
  options.block_mask = mask;
  options.bindings = bindings;
  options.lse = &tlse;
  CHECK_OK(flexjit_flex_attention(&tq, &tk, &tv, &to, &options));
  CHECK_OK(flexjit_check_device_errors(NULL));
  CHECK(cu.cuCtxSynchronize() == 0);
  CHECK(cu.cuMemcpyDtoH(ho, dout, nq * 2) == 0);
  CHECK(cu.cuMemcpyDtoH(hlse, dlse, sizeof(float) * B * HQ * S) == 0);

  /* The float64 reference. */
  const double scale = 1.0 / sqrt((double)D);
  double max_err = 0.0, max_lse_err = 0.0;
  double* p = malloc(sizeof(double) * S);
  for (int h = 0; h < HQ; ++h)
    for (int i = 0; i < S; ++i) {
      const uint16_t* qi = hq + ((size_t)h * S + i) * D;
      double m = -INFINITY;
      for (int j = 0; j < S; ++j) {
        p[j] = -INFINITY;
        if (!(j <= i && i - j <= window))
          continue;
        const uint16_t* kj = hk + (size_t)j * D; /* kv head 0 */
        double s = 0.0;
        for (int d = 0; d < D; ++d)
          s += from_half(qi[d]) * from_half(kj[d]);
        p[j] = s * scale - (double)slope * (double)(i - j);
        if (p[j] > m)
          m = p[j];
      }
      double sum = 0.0;
      for (int j = 0; j < S; ++j)
        sum += p[j] == -INFINITY ? 0.0 : exp(p[j] - m);
      const double lse = m + log(sum);
      const double e = fabs(lse - (double)hlse[h * S + i]);
      if (!(e <= max_lse_err) && !isnan(max_lse_err)) /* a NaN stays */
        max_lse_err = e;
      for (int d = 0; d < D; ++d) {
        double o = 0.0;
        for (int j = 0; j < S; ++j)
          if (p[j] != -INFINITY)
            o += exp(p[j] - m) / sum * from_half(hv[(size_t)j * D + d]);
        const double err = fabs(o - from_half(ho[((size_t)h * S + i) * D + d]));
        if (!(err <= max_err) && !isnan(max_err)) /* a NaN stays */
          max_err = err;
      }
    }
  printf("flex_attention on a GPU: max |out - ref| %.3g, max |lse - ref| %.3g\n", max_err,
         max_lse_err);
  CHECK(max_err < 1e-2);
  CHECK(max_lse_err < 1e-3);

  free(p);
  flexjit_block_mask_destroy(mask);
  flexjit_bindings_destroy(bindings);
  flexjit_mod_destroy(mask_mod);
  flexjit_mod_destroy(score_mod);
  cu.cuMemFree(dq);
  cu.cuMemFree(dk);
  cu.cuMemFree(dv);
  cu.cuMemFree(dout);
  cu.cuMemFree(dlse);
  free(hq);
  free(hk);
  free(hv);
  free(ho);
  free(hlse);
}

int main(void) {
  test_mods();
  test_tensors();
  test_block_masks();
  test_attention_errors();
  test_attention_gpu();
  if (failures) {
    fprintf(stderr, "test_c_api: %d of %d checks failed\n", failures, checks);
    return 1;
  }
  printf("test_c_api: all %d checks passed\n", checks);
  return 0;
}
