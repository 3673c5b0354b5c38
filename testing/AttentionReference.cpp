#include "flexjit/testing/AttentionReference.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "flexjit/compiler/Interpreter.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/Signature.h"
#include "flexjit/support/Error.h"

namespace flexjit::testing {

namespace {

// max with NaN winning: a NaN score makes its row NaN, as in torch (and the kernels: exp of
// NaN reaches the row's sum), where std::max would skip it -- and a row of NaN scores only
// would look fully masked (out 0).
double nan_max(double m, double s) {
  return std::isnan(m) || std::isnan(s) ? std::numeric_limits<double>::quiet_NaN() : std::max(m, s);
}

} // namespace

AttentionRows attention_reference(const AttentionInputs& in, const MaskMod& mask,
                                  const ScoreMod& score, double scale, const Bindings& bindings,
                                  std::vector<int64_t> rows, const std::vector<int>& kv_lens) {
  if (rows.empty())
    for (int64_t r = 0; r < int64_t{in.B} * in.Hq * in.q_len; ++r)
      rows.push_back(r);
  FLEXJIT_ASSERT(kv_lens.empty() || kv_lens.size() == static_cast<size_t>(in.B),
                 "{} kv lengths for a batch of {}", kv_lens.size(), in.B);
  const Program mask_program(optimize(mask.body()), bindings);
  const Program score_program(optimize(score.body()), bindings);
  const int D = in.D, Dv = in.v_dim(), group = in.Hq / in.Hkv;
  AttentionRows result;
  result.rows = rows;
  result.out.assign(rows.size() * Dv, 0.0);
  result.lse.assign(rows.size(), -std::numeric_limits<double>::infinity());
  std::vector<double> s(in.kv_len);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t r = rows[i];
    const int q = static_cast<int>(r % in.q_len);
    const int h = static_cast<int>(r / in.q_len % in.Hq);
    const int b = static_cast<int>(r / in.q_len / in.Hq);
    const int hk = h / group;
    const int kv_end = kv_lens.empty() ? in.kv_len : std::clamp(kv_lens[b], 0, in.kv_len);
    const float* qp = &in.q[((static_cast<size_t>(b) * in.Hq + h) * in.q_len + q) * D];
    double m = -std::numeric_limits<double>::infinity();
    for (int kv = 0; kv < kv_end; ++kv) {
      s[kv] = -std::numeric_limits<double>::infinity();
      if (!mask_program.eval(Point{b, h, q, kv}).b)
        continue;
      const float* kp = &in.k[((static_cast<size_t>(b) * in.Hkv + hk) * in.kv_len + kv) * D];
      double dot = 0;
      for (int d = 0; d < D; ++d)
        dot += static_cast<double>(qp[d]) * kp[d];
      const float scaled = static_cast<float>(dot * scale);
      s[kv] = score_program.eval(Point{b, h, q, kv, scaled}).f;
      m = nan_max(m, s[kv]);
    }
    if (m == -std::numeric_limits<double>::infinity())
      continue; // nothing attends: out 0, lse -inf
    double l = 0;
    double* o = &result.out[i * Dv];
    for (int kv = 0; kv < kv_end; ++kv) {
      if (s[kv] == -std::numeric_limits<double>::infinity())
        continue;
      const double p = std::exp(s[kv] - m);
      l += p;
      const float* vp = &in.v[((static_cast<size_t>(b) * in.Hkv + hk) * in.kv_len + kv) * Dv];
      for (int d = 0; d < Dv; ++d)
        o[d] += p * vp[d];
    }
    for (int d = 0; d < Dv; ++d)
      o[d] /= l;
    result.lse[i] = m + std::log(l);
  }
  return result;
}

namespace {

// One load whose adjoint a buffer gradient receives: the programs of its indices and of its
// adjoint, the buffer's sizes and its gradient.
struct LoadGradient {
  std::vector<Program> indices;
  Program adjoint;
  std::vector<int64_t> sizes;
  std::vector<double>* grad;

  // Adds ds * adjoint at p into the element the indices name (none when outside).
  void add(const Point& p, double ds) const {
    int64_t flat = 0;
    for (size_t d = 0; d < indices.size(); ++d) {
      const int32_t i = indices[d].eval(p).i;
      if (i < 0 || i >= sizes[d])
        return;
      flat = flat * sizes[d] + i;
    }
    (*grad)[static_cast<size_t>(flat)] += ds * adjoint.eval(p).f;
  }
};

std::vector<LoadGradient> load_gradients(const ScoreMod& score, const Bindings& bindings,
                                         const std::vector<std::string>& names,
                                         std::map<std::string, std::vector<double>>& grads) {
  std::map<std::string, std::vector<int64_t>> sizes;
  const ModSignature sig = ModSignature::of({score.body()});
  const ResolvedArgs args = resolve(sig, bindings); // the views the loads read
  for (size_t i = 0; i < sig.buffers.size(); ++i) {
    const TensorView& view = args.buffers[i];
    sizes[sig.buffers[i]->name].assign(view.sizes.begin(), view.sizes.begin() + view.rank);
  }
  for (const std::string& name : names) {
    FLEXJIT_ASSERT(sizes.count(name), "the score_mod reads no buffer '{}'", name);
    int64_t n = 1;
    for (int64_t size : sizes[name])
      n *= size;
    grads[name].assign(static_cast<size_t>(n), 0.0);
  }
  std::vector<LoadGradient> out;
  for (const LoadAdjoint& la : load_adjoints(score.body(), names)) {
    LoadGradient lg{{},
                    Program(la.adjoint, bindings),
                    sizes[la.load->buffer->name],
                    &grads[la.load->buffer->name]};
    for (const Expr& index : la.load->operands)
      lg.indices.emplace_back(index, bindings);
    out.push_back(std::move(lg));
  }
  return out;
}

} // namespace

AttentionGrads attention_backward_reference(const AttentionInputs& in, const MaskMod& mask,
                                            const ScoreMod& score, double scale,
                                            const Bindings& bindings,
                                            const std::vector<float>& d_out,
                                            const std::vector<std::string>& grad_buffers) {
  constexpr double kNegInf = -std::numeric_limits<double>::infinity();
  const Program mask_program(optimize(mask.body()), bindings);
  const Program score_program(optimize(score.body()), bindings);
  const Program grad_program(score_derivative(score.body()), bindings);
  const int D = in.D, group = in.Hq / in.Hkv;
  AttentionGrads g;
  g.dq.assign(in.q.size(), 0.0);
  g.dk.assign(in.k.size(), 0.0);
  g.dv.assign(in.v.size(), 0.0);
  g.lse.assign(static_cast<size_t>(in.B) * in.Hq * in.q_len, kNegInf);
  const std::vector<LoadGradient> loads = load_gradients(score, bindings, grad_buffers, g.buffers);
  std::vector<float> scaled(in.kv_len);
  std::vector<double> s(in.kv_len), p(in.kv_len), slope(in.kv_len), o(D);
  for (int b = 0; b < in.B; ++b)
    for (int h = 0; h < in.Hq; ++h)
      for (int q = 0; q < in.q_len; ++q) {
        const int hk = h / group;
        const size_t qrow = ((static_cast<size_t>(b) * in.Hq + h) * in.q_len + q) * D;
        auto kv_row = [&](int kv) {
          return ((static_cast<size_t>(b) * in.Hkv + hk) * in.kv_len + kv) * D;
        };
        double m = kNegInf;
        for (int kv = 0; kv < in.kv_len; ++kv) {
          s[kv] = kNegInf;
          if (!mask_program.eval(Point{b, h, q, kv}).b)
            continue;
          double dot = 0;
          for (int d = 0; d < D; ++d)
            dot += static_cast<double>(in.q[qrow + d]) * in.k[kv_row(kv) + d];
          scaled[kv] = static_cast<float>(dot * scale);
          s[kv] = score_program.eval(Point{b, h, q, kv, scaled[kv]}).f;
          slope[kv] = grad_program.eval(Point{b, h, q, kv, scaled[kv]}).f;
          m = nan_max(m, s[kv]);
        }
        if (m == kNegInf)
          continue;
        double l = 0;
        for (int kv = 0; kv < in.kv_len; ++kv)
          l += p[kv] = s[kv] == kNegInf ? 0.0 : std::exp(s[kv] - m);
        g.lse[(static_cast<size_t>(b) * in.Hq + h) * in.q_len + q] = m + std::log(l);
        std::fill(o.begin(), o.end(), 0.0);
        for (int kv = 0; kv < in.kv_len; ++kv) {
          p[kv] /= l;
          for (int d = 0; d < D; ++d)
            o[d] += p[kv] * in.v[kv_row(kv) + d];
        }
        double delta = 0; // rowsum(dO * O)
        for (int d = 0; d < D; ++d)
          delta += d_out[qrow + d] * o[d];
        for (int kv = 0; kv < in.kv_len; ++kv) {
          if (p[kv] == 0.0)
            continue;
          double dp = 0;
          for (int d = 0; d < D; ++d) {
            dp += static_cast<double>(d_out[qrow + d]) * in.v[kv_row(kv) + d];
            g.dv[kv_row(kv) + d] += p[kv] * d_out[qrow + d];
          }
          const double ds_mod = p[kv] * (dp - delta); // d/d(the score_mod's value)
          for (const LoadGradient& load : loads)
            load.add(Point{b, h, q, kv, scaled[kv]}, ds_mod);
          const double ds = ds_mod * slope[kv] * scale; // d/d(q . k)
          for (int d = 0; d < D; ++d) {
            g.dq[qrow + d] += ds * in.k[kv_row(kv) + d];
            g.dk[kv_row(kv) + d] += ds * in.q[qrow + d];
          }
        }
      }
  return g;
}

double relative_error(const std::vector<double>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

} // namespace flexjit::testing
