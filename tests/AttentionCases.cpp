#include "AttentionCases.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>

#include "flexjit/attention/AttentionChecks.h"
#include "flexjit/runtime/Target.h"
#include "flexjit/testing/AttentionReference.h"
#include "flexjit/testing/GpuTensors.h"
#include "flexjit/testing/HalfFloat.h"

namespace flexjit::testing {

namespace {

double forward_tolerance(DType dtype) {
  return dtype == DType::BF16 ? 1e-2 : 3e-3;
}

double backward_tolerance(DType dtype) {
  return dtype == DType::BF16 ? 2e-2 : 5e-3;
}

std::vector<double> logical(const DeviceTensor& t, int B, int H, int S, int D, DType dtype,
                            bool bshd) {
  std::vector<uint16_t> stored(static_cast<size_t>(B) * H * S * D);
  t.buffer.download(stored.data(), stored.size() * 2);
  const auto st = strides_of(H, S, D, bshd);
  std::vector<double> out(stored.size());
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int s = 0; s < S; ++s)
        for (int d = 0; d < D; ++d)
          out[((static_cast<size_t>(b) * H + h) * S + s) * D + d] =
              from_half_bits(stored[b * st[0] + h * st[1] + s * st[2] + d], dtype);
  return out;
}

// The row of `kind` a call of checked problem p takes on this device (as flex_attention and
// flex_attention_backward choose it).
const KernelVariant& attention_row(TemplateKind kind, const AttentionProblem& p) {
  return select_variant(kind, current_target(), p);
}

} // namespace

Outcome run_case(const Case& c, std::vector<uint16_t>* raw_out, std::vector<float>* raw_lse) {
  const int Dv = c.v_dim();
  std::mt19937 rng(c.seed * 7919 + c.q_len * 31 + c.kv_len + c.D + Dv + (c.dtype == DType::BF16));
  DeviceTensor q = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, c.bshd, rng, true);
  DeviceTensor k = make_tensor(c.B, c.Hkv, c.kv_len, c.D, c.dtype, c.bshd, rng, true);
  DeviceTensor v = make_tensor(c.B, c.Hkv, c.kv_len, Dv, c.dtype, c.bshd, rng, true);
  DeviceTensor out = make_tensor(c.B, c.Hq, c.q_len, Dv, c.dtype, c.bshd, rng, false);
  const size_t rows = static_cast<size_t>(c.B) * c.Hq * c.q_len;
  DeviceBuffer lse_buf(rows * 4);
  std::vector<float> lse(rows, std::numeric_limits<float>::quiet_NaN());
  lse_buf.upload(lse.data(), rows * 4);
  const TensorView lse_view = lse_buf.view(DType::F32, {c.B, c.Hq, c.q_len});

  const DeviceBindings device = to_device({c.mask.body(), c.score.body()}, c.host_bindings);
  BlockMaskOptions bm_options;
  bm_options.bindings = c.host_bindings;
  bm_options.q_block = c.q_block;
  bm_options.kv_block = c.kv_block;
  const int mask_h = c.per_head_mask ? c.Hq : 1;
  const BlockMask cpu_bm = create_block_mask(c.mask, 1, mask_h, c.q_len, c.kv_len, bm_options);
  BlockMask gpu_bm;
  if (c.gpu_block_mask) {
    bm_options.bindings = device.bindings;
    bm_options.device = Device::Cuda;
    gpu_bm = create_block_mask(c.mask, 1, mask_h, c.q_len, c.kv_len, bm_options);
  }
  const BlockMask& bm = c.gpu_block_mask ? gpu_bm : cpu_bm;
  FlexAttentionOptions o;
  o.score_mod = c.score;
  o.block_mask = c.use_block_mask ? &bm : nullptr;
  o.lse = &lse_view;
  o.bindings = device.bindings;
  o.schedule = c.schedule;
  const KernelVariant* variant = &attention_row(
      TemplateKind::AttentionForward, check_attention(q.view, k.view, v.view, out.view, o));
  flex_attention(q.view, k.view, v.view, out.view, o);
  Stream{}.synchronize();

  std::vector<uint16_t> stored(static_cast<size_t>(c.B) * c.Hq * c.q_len * Dv);
  out.buffer.download(stored.data(), stored.size() * 2);
  lse_buf.download(lse.data(), rows * 4);
  if (raw_out)
    *raw_out = stored;
  if (raw_lse)
    *raw_lse = lse;

  std::vector<int64_t> pick;
  if (c.sample_rows > 0) {
    std::uniform_int_distribution<int64_t> any(0, static_cast<int64_t>(rows) - 1);
    for (int i = 0; i < c.sample_rows; ++i)
      pick.push_back(any(rng));
  }
  const AttentionInputs inputs{c.B, c.Hq,      c.Hkv,     c.q_len,   c.kv_len,
                               c.D, q.logical, k.logical, v.logical, Dv};
  const MaskMod ref_mask = c.use_block_mask ? c.mask : MaskMod();
  const AttentionRows ref = attention_reference(
      inputs, ref_mask, c.score, 1.0 / std::sqrt(static_cast<double>(c.D)), c.host_bindings, pick);
  const auto st = strides_of(c.Hq, c.q_len, Dv, c.bshd);
  Outcome result;
  result.variant = variant;
  std::vector<double> got(ref.out.size()), got_lse, ref_lse;
  for (size_t i = 0; i < ref.rows.size(); ++i) {
    const int64_t r = ref.rows[i];
    const int qi = static_cast<int>(r % c.q_len), h = static_cast<int>(r / c.q_len % c.Hq),
              b = static_cast<int>(r / c.q_len / c.Hq);
    const bool empty = std::isinf(ref.lse[i]);
    bool bad = false;
    for (int d = 0; d < Dv; ++d) {
      const double x = from_half_bits(stored[b * st[0] + h * st[1] + qi * st[2] + d], c.dtype);
      result.nans += std::isnan(x);
      got[i * Dv + d] = x;
      bad = bad || (empty && x != 0.0);
    }
    const float l = lse[static_cast<size_t>(r)];
    result.nans += std::isnan(l);
    if (empty) {
      ++result.empty_rows;
      bad = bad || !(std::isinf(l) && l < 0);
    } else {
      got_lse.push_back(l);
      ref_lse.push_back(ref.lse[i]);
    }
    result.bad_empty_rows += bad;
  }
  result.out_error = relative_error(got, ref.out);
  result.lse_error = relative_error(got_lse, ref_lse);
  result.block_mask_differs =
      c.gpu_block_mask &&
      (gpu_bm.states() != cpu_bm.states() || gpu_bm.kv_indices != cpu_bm.kv_indices ||
       gpu_bm.full_kv_indices != cpu_bm.full_kv_indices);
  return result;
}

void check_outcome(const Case& c, const std::string& name, const Outcome& r) {
  INFO(name << " " << to_string(c.dtype) << " d" << c.D << "/" << c.v_dim() << " B" << c.B << " Hq"
            << c.Hq << " Hkv" << c.Hkv << " Q" << c.q_len << " KV" << c.kv_len
            << (c.bshd ? " BSHD" : " BHSD") << ": out error " << r.out_error << ", lse error "
            << r.lse_error << ", " << r.empty_rows << " empty rows");
  if (std::getenv("FLEXJIT_TEST_VERBOSE"))
    fmt::print("gpu {:34} {:4} d{:<7} Q{:<5} KV{:<5} {} out err {:.2e} lse err {:.2e} empty {}\n",
               name, to_string(c.dtype), fmt::format("{}/{}", c.D, c.v_dim()), c.q_len, c.kv_len,
               c.bshd ? "BSHD" : "BHSD", r.out_error, r.lse_error, r.empty_rows);
  CHECK(r.nans == 0);
  CHECK(r.bad_empty_rows == 0);
  CHECK(!r.block_mask_differs);
  CHECK(r.out_error < forward_tolerance(c.dtype));
  CHECK(r.lse_error < 1e-3);
}

Outcome check(const Case& c, const std::string& name) {
  Outcome r = run_case(c);
  check_outcome(c, name, r);
  return r;
}

const KernelVariant* check_backward(const BwdCase& c, const std::string& name) {
  INFO(name << ": " << to_string(c.dtype) << " D=" << c.D << " B=" << c.B << " Hq=" << c.Hq
            << " Hkv=" << c.Hkv << " q_len=" << c.q_len << " kv_len=" << c.kv_len
            << (c.bshd ? " BSHD" : " BHSD") << " blocks " << c.q_block << "x" << c.kv_block);
  std::mt19937 rng(c.seed * 131 + c.q_len + c.D + (c.dtype == DType::BF16));
  DeviceTensor q = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, c.bshd, rng, true);
  DeviceTensor k = make_tensor(c.B, c.Hkv, c.kv_len, c.D, c.dtype, c.bshd, rng, true);
  DeviceTensor v = make_tensor(c.B, c.Hkv, c.kv_len, c.D, c.dtype, c.bshd, rng, true);
  DeviceTensor d_out = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, c.bshd, rng, true);
  DeviceTensor out = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, c.bshd, rng, false);
  DeviceTensor dq = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, c.bshd, rng, false);
  DeviceTensor dk = make_tensor(c.B, c.Hkv, c.kv_len, c.D, c.dtype, c.bshd, rng, false);
  DeviceTensor dv = make_tensor(c.B, c.Hkv, c.kv_len, c.D, c.dtype, c.bshd, rng, false);
  const size_t rows = static_cast<size_t>(c.B) * c.Hq * c.q_len;
  DeviceBuffer lse_buf(rows * 4);
  const TensorView lse = lse_buf.view(DType::F32, {c.B, c.Hq, c.q_len});

  BlockMaskOptions bm_options;
  bm_options.q_block = c.q_block;
  bm_options.kv_block = c.kv_block;
  const BlockMask bm = create_block_mask(c.mask, 1, 1, c.q_len, c.kv_len, bm_options);
  const DeviceBindings device = to_device({c.mask.body(), c.score.body()}, Bindings{});
  FlexAttentionOptions o;
  o.score_mod = c.score;
  o.block_mask = c.use_block_mask ? &bm : nullptr;
  o.lse = &lse;
  o.bindings = device.bindings;
  const KernelVariant* variant =
      &attention_row(TemplateKind::AttentionBackward,
                     check_attention_backward(q.view, k.view, v.view, out.view, d_out.view, dq.view,
                                              dk.view, dv.view, o));
  flex_attention(q.view, k.view, v.view, out.view, o);
  flex_attention_backward(q.view, k.view, v.view, out.view, d_out.view, dq.view, dk.view, dv.view,
                          o);
  Stream{}.synchronize();

  const AttentionInputs inputs{c.B, c.Hq,      c.Hkv,     c.q_len,  c.kv_len,
                               c.D, q.logical, k.logical, v.logical};
  const AttentionGrads ref =
      attention_backward_reference(inputs, c.use_block_mask ? c.mask : MaskMod(), c.score,
                                   1.0 / std::sqrt(static_cast<double>(c.D)), {}, d_out.logical);
  const std::vector<double> got_dq = logical(dq, c.B, c.Hq, c.q_len, c.D, c.dtype, c.bshd);
  const std::vector<double> got_dk = logical(dk, c.B, c.Hkv, c.kv_len, c.D, c.dtype, c.bshd);
  const std::vector<double> got_dv = logical(dv, c.B, c.Hkv, c.kv_len, c.D, c.dtype, c.bshd);
  long nans = 0;
  for (const auto* g : {&got_dq, &got_dk, &got_dv})
    for (double x : *g)
      nans += !std::isfinite(x);
  const double e_dq = relative_error(got_dq, ref.dq), e_dk = relative_error(got_dk, ref.dk),
               e_dv = relative_error(got_dv, ref.dv);
  UNSCOPED_INFO(name << " " << to_string(c.dtype) << " d" << c.D << ": dq " << e_dq << " dk "
                     << e_dk << " dv " << e_dv);
  CHECK(nans == 0);
  CHECK(e_dq < backward_tolerance(c.dtype));
  CHECK(e_dk < backward_tolerance(c.dtype));
  CHECK(e_dv < backward_tolerance(c.dtype));
  return variant;
}

TensorView kv_rows(const TensorView& t, int64_t from, int64_t n) {
  TensorView v = t;
  v.data = static_cast<const char*>(t.data) + from * t.strides[2] * 2;
  v.sizes[2] = n;
  return v;
}

void check_merge_case(const MergeCase& c) {
  INFO(to_string(c.dtype) << " d" << c.D << " B" << c.B << " Hq" << c.Hq << " Hkv" << c.Hkv << " q"
                          << c.q_len << " kv" << c.kv_len << (c.bshd ? " bshd" : ""));
  std::mt19937 rng(c.D * 31 + c.q_len);
  DeviceTensor q = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, c.bshd, rng, true);
  DeviceTensor k = make_tensor(c.B, c.Hkv, c.kv_len, c.D, c.dtype, c.bshd, rng, true);
  DeviceTensor v = make_tensor(c.B, c.Hkv, c.kv_len, c.D, c.dtype, c.bshd, rng, true);
  // Shards of unequal lengths, none a tile multiple.
  const int64_t bounds[] = {0, c.kv_len / 5, c.kv_len / 2, c.kv_len - 3, c.kv_len};
  std::vector<DeviceTensor> outs;
  std::vector<Lse> lses;
  for (int j = 0; j < 4; ++j) {
    outs.push_back(make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, c.bshd, rng, false));
    lses.emplace_back(c.B, c.Hq, c.q_len);
    FlexAttentionOptions o;
    o.lse = &lses[j].view;
    const int64_t n = bounds[j + 1] - bounds[j];
    flex_attention(q.view, kv_rows(k.view, bounds[j], n), kv_rows(v.view, bounds[j], n),
                   outs[j].view, o);
  }
  // A part of nobody's keys: lse -inf, out NaN (the poison make_tensor leaves).
  DeviceTensor empty = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, c.bshd, rng, false);
  Lse empty_lse(c.B, c.Hq, c.q_len);
  std::vector<float> minus_inf(static_cast<size_t>(c.B) * c.Hq * c.q_len, -INFINITY);
  empty_lse.buf.upload(minus_inf.data(), minus_inf.size() * 4);
  // acc = merge(0, 1); acc = merge(acc, empty) in place; acc = merge(2, acc); merge(acc, 3).
  DeviceTensor acc = make_tensor(c.B, c.Hq, c.q_len, c.D, c.dtype, c.bshd, rng, false);
  Lse acc_lse(c.B, c.Hq, c.q_len);
  merge_attention(outs[0].view, lses[0].view, outs[1].view, lses[1].view, acc.view, acc_lse.view);
  merge_attention(acc.view, acc_lse.view, empty.view, empty_lse.view, acc.view, acc_lse.view);
  merge_attention(outs[2].view, lses[2].view, acc.view, acc_lse.view, acc.view, acc_lse.view);
  merge_attention(acc.view, acc_lse.view, outs[3].view, lses[3].view, acc.view, acc_lse.view);
  Stream{}.synchronize();

  const AttentionInputs in{c.B, c.Hq,      c.Hkv,     c.q_len,   c.kv_len,
                           c.D, q.logical, k.logical, v.logical, c.D};
  const AttentionRows ref =
      attention_reference(in, MaskMod(), ScoreMod(), 1.0 / std::sqrt(double(c.D)), {});
  const size_t rows = static_cast<size_t>(c.B) * c.Hq * c.q_len;
  std::vector<uint16_t> bits(rows * c.D);
  acc.buffer.download(bits.data(), bits.size() * 2);
  std::vector<float> lse(rows);
  acc_lse.buf.download(lse.data(), rows * 4);
  const auto st = strides_of(c.Hq, c.q_len, c.D, c.bshd);
  std::vector<double> got, got_lse;
  long nans = 0;
  for (size_t i = 0; i < ref.rows.size(); ++i) {
    const int64_t r = ref.rows[i];
    const int64_t qi = r % c.q_len, h = r / c.q_len % c.Hq, b = r / c.q_len / c.Hq;
    for (int d = 0; d < c.D; ++d) {
      got.push_back(from_half_bits(bits[b * st[0] + h * st[1] + qi * st[2] + d], c.dtype));
      nans += std::isnan(got.back());
    }
    got_lse.push_back(lse[static_cast<size_t>(r)]);
  }
  CHECK(nans == 0);
  CHECK(relative_error(got, ref.out) < (c.dtype == DType::BF16 ? 1e-2 : 3e-3));
  CHECK(relative_error(got_lse, ref.lse) < 1e-4);

  // Both parts empty: out 0, lse -inf.
  merge_attention(empty.view, empty_lse.view, empty.view, empty_lse.view, acc.view, acc_lse.view);
  acc.buffer.download(bits.data(), bits.size() * 2);
  acc_lse.buf.download(lse.data(), rows * 4);
  size_t zeros = 0, minus = 0;
  for (size_t b = 0; b < static_cast<size_t>(c.B); ++b)
    for (size_t h = 0; h < static_cast<size_t>(c.Hq); ++h)
      for (size_t qi = 0; qi < static_cast<size_t>(c.q_len); ++qi)
        for (int d = 0; d < c.D; ++d)
          zeros += from_half_bits(bits[b * st[0] + h * st[1] + qi * st[2] + d], c.dtype) == 0.0f;
  for (float x : lse)
    minus += std::isinf(x) && x < 0;
  CHECK(zeros == rows * c.D);
  CHECK(minus == rows);
}

} // namespace flexjit::testing
