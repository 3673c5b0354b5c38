// The masks and score mods of seed 003 (the FlexAttention notebook), written
// once and shared by the examples, the tests and the bench.
#pragma once

#include <string>
#include <vector>

#include <flexjit/flexjit.h>

namespace flexjit::seeds {

inline MaskMod causal() {
  return mask_mod("causal", [](Idx, Idx, Idx q, Idx kv) { return q >= kv; });
}

// Causal, and at most `window` tokens back (torch: q - kv <= SLIDING_WINDOW).
inline MaskMod sliding_window(int window = 1024) {
  IntExpr w = param_i32("window", window);
  return mask_mod("sliding_window",
                  [&](Idx, Idx, Idx q, Idx kv) { return q >= kv && q - kv <= w; });
}

// The first `prefix` keys attend bidirectionally, the rest causally.
inline MaskMod prefix_lm(int prefix = 2048) {
  IntExpr p = param_i32("prefix_length", prefix);
  return mask_mod("prefix_lm", [&](Idx, Idx, Idx q, Idx kv) { return kv <= p || q >= kv; });
}

// Causal within a document; `document_id` must outlive the mask's use.
inline MaskMod document(const std::vector<int32_t>& document_id) {
  IntBuffer doc =
      buffer_i32("document_id", TensorView::contiguous(document_id.data(), DType::I32,
                                                       {static_cast<int64_t>(document_id.size())}));
  return mask_mod("document",
                  [&](Idx, Idx, Idx q, Idx kv) { return q >= kv && doc[q] == doc[kv]; });
}

// The notebook's document ids: 4096 tokens of doc 0, then docs of 4096 / 8192 tokens.
inline std::vector<int32_t> notebook_document_ids(int length) {
  std::vector<int32_t> ids(static_cast<size_t>(length));
  for (int i = 0; i < length; ++i)
    ids[i] = i < 4096 ? 0 : (i < 8192 ? 1 : i / 8192 + 1);
  return ids;
}

// Stand-alone self-attention on a flattened image: within `window` pixels in x and y.
inline MaskMod sasa(int width = 128, int window = 8) {
  return mask_mod("sasa", [=](Idx, Idx, Idx q, Idx kv) {
    IntExpr qx = q / width, qy = q % width, kx = kv / width, ky = kv % width;
    return abs(qx - kx) <= window && abs(qy - ky) <= window;
  });
}

// NATTEN: a kernel_w x kernel_h neighbourhood centred on the query, clamped to the canvas.
inline MaskMod natten(int width = 128, int height = 128, int kernel_w = 7, int kernel_h = 7) {
  return mask_mod("natten", [=](Idx, Idx, Idx q, Idx kv) {
    IntExpr qx = q / width, qy = q % width, kx = kv / width, ky = kv % width;
    IntExpr cx = clamp(qx, kernel_w / 2, (width - 1) - kernel_w / 2);
    IntExpr cy = clamp(qy, kernel_h / 2, (height - 1) - kernel_h / 2);
    return abs(cx - kx) <= kernel_w / 2 && abs(cy - ky) <= kernel_h / 2;
  });
}

// Jagged sequences packed back to back: causal within each sequence.
// `offsets` has one entry per sequence start plus the total; `seq_idx[i]` is
// the sequence of token i. Both must outlive the mask's use.
inline MaskMod jagged_causal(const std::vector<int32_t>& offsets,
                             const std::vector<int32_t>& seq_idx) {
  IntBuffer off =
      buffer_i32("offsets", TensorView::contiguous(offsets.data(), DType::I32,
                                                   {static_cast<int64_t>(offsets.size())}));
  IntBuffer seq =
      buffer_i32("seq_idx", TensorView::contiguous(seq_idx.data(), DType::I32,
                                                   {static_cast<int64_t>(seq_idx.size())}));
  return mask_mod("jagged_causal", [&](Idx, Idx, Idx q, Idx kv) {
    IntExpr q_local = q - off[seq[q]];
    IntExpr kv_local = kv - off[seq[kv]];
    return q_local >= kv_local && seq[q] == seq[kv];
  });
}

// Flamingo-style cross attention: text token q attends image token kv when q
// lies in [intervals(image, 0), intervals(image, 1)) of kv's image.
// `image_of_token` is [num_image_tokens], `intervals` is [num_images, 2].
inline MaskMod vision_cross_attention(const std::vector<int32_t>& image_of_token,
                                      const std::vector<int32_t>& intervals) {
  IntBuffer image = buffer_i32(
      "image_of_token", TensorView::contiguous(image_of_token.data(), DType::I32,
                                               {static_cast<int64_t>(image_of_token.size())}));
  IntBuffer iv = buffer_i32(
      "intervals", TensorView::contiguous(intervals.data(), DType::I32,
                                          {static_cast<int64_t>(intervals.size() / 2), 2}));
  return mask_mod("vision_cross_attention", [&](Idx, Idx, Idx q, Idx kv) {
    IntExpr img = image[kv];
    return q >= iv(img, 0) && q < iv(img, 1);
  });
}

// ---- score mods ----

// ALiBi, functional form: slope 2^(-(h+1)*8/num_heads) times (q - kv).
inline ScoreMod alibi(int num_heads = 16) {
  return score_mod("alibi", [=](Score s, Idx, Idx h, Idx q, Idx kv) {
    FloatExpr slope = exp2(-(FloatExpr(h + 1) * (8.0f / static_cast<float>(num_heads))));
    return s + FloatExpr(q - kv) * slope;
  });
}

// ALiBi with the slopes captured in a buffer (the notebook's closure form).
inline ScoreMod alibi_buffer(const std::vector<float>& slopes) {
  FloatBuffer bias =
      buffer_f32("alibi_slopes", TensorView::contiguous(slopes.data(), DType::F32,
                                                        {static_cast<int64_t>(slopes.size())}));
  return score_mod("alibi_buffer", [&](Score s, Idx, Idx h, Idx q, Idx kv) {
    return s + bias[h] * FloatExpr(q - kv);
  });
}

inline std::vector<float> alibi_slopes(int num_heads) {
  std::vector<float> slopes(static_cast<size_t>(num_heads));
  for (int h = 0; h < num_heads; ++h)
    slopes[h] = std::exp2(-(static_cast<float>(h + 1) * 8.0f / static_cast<float>(num_heads)));
  return slopes;
}

// Gemma-2 style tanh soft-capping: cap * tanh(score / cap).
inline ScoreMod soft_cap(float cap = 30.0f, bool approx = true) {
  return score_mod(approx ? "soft_cap_approx" : "soft_cap", [=](Score s, Idx, Idx, Idx, Idx) {
    // s * (1/cap): a multiply, not an IEEE division per score (the simplifier only
    // turns x / c into a multiply when 1/c is exact).
    const float inv = 1.0f / cap;
    return approx ? cap * tanh_approx(s * inv) : cap * tanh(s * inv);
  });
}

// The notebook's checkerboard score mod.
inline ScoreMod checkerboard() {
  return score_mod("checkerboard", [](Score s, Idx, Idx, Idx q, Idx kv) {
    s = where(abs(kv - q) % 1 == 0, s * 0.5f, s);
    s = where(abs(kv - q) % 2 == 0, s * 2.0f, s);
    return s;
  });
}

// Causal written as a score_mod (the notebook's causal_bias).
inline ScoreMod causal_bias() {
  return score_mod("causal_bias", [](Score s, Idx, Idx, Idx q, Idx kv) {
    return where(q >= kv, s, -std::numeric_limits<float>::infinity());
  });
}

} // namespace flexjit::seeds
