#include "flexjit/testing/AttentionReference.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "flexjit/compiler/Interpreter.h"
#include "flexjit/compiler/Passes.h"

namespace flexjit::testing {

AttentionRows attention_reference(const AttentionInputs& in, const MaskMod& mask,
                                  const ScoreMod& score, double scale, const Bindings& bindings,
                                  std::vector<int64_t> rows) {
  if (rows.empty())
    for (int64_t r = 0; r < int64_t{in.B} * in.Hq * in.q_len; ++r)
      rows.push_back(r);
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
    const float* qp = &in.q[((static_cast<size_t>(b) * in.Hq + h) * in.q_len + q) * D];
    double m = -std::numeric_limits<double>::infinity();
    for (int kv = 0; kv < in.kv_len; ++kv) {
      s[kv] = -std::numeric_limits<double>::infinity();
      if (!mask_program.eval(Point{b, h, q, kv}).b)
        continue;
      const float* kp = &in.k[((static_cast<size_t>(b) * in.Hkv + hk) * in.kv_len + kv) * D];
      double dot = 0;
      for (int d = 0; d < D; ++d)
        dot += static_cast<double>(qp[d]) * kp[d];
      const float scaled = static_cast<float>(dot * scale);
      s[kv] = score_program.eval(Point{b, h, q, kv, scaled}).f;
      m = std::max(m, s[kv]);
    }
    if (m == -std::numeric_limits<double>::infinity())
      continue; // nothing attends: out 0, lse -inf
    double l = 0;
    double* o = &result.out[i * Dv];
    for (int kv = 0; kv < in.kv_len; ++kv) {
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

AttentionGrads attention_backward_reference(const AttentionInputs& in, const MaskMod& mask,
                                            const ScoreMod& score, double scale,
                                            const Bindings& bindings,
                                            const std::vector<float>& d_out) {
  constexpr double kNegInf = -std::numeric_limits<double>::infinity();
  const Program mask_program(optimize(mask.body()), bindings);
  const Program score_program(optimize(score.body()), bindings);
  const Program grad_program(score_derivative(score.body()), bindings);
  const int D = in.D, group = in.Hq / in.Hkv;
  AttentionGrads g;
  g.dq.assign(in.q.size(), 0.0);
  g.dk.assign(in.k.size(), 0.0);
  g.dv.assign(in.v.size(), 0.0);
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
          const float scaled = static_cast<float>(dot * scale);
          s[kv] = score_program.eval(Point{b, h, q, kv, scaled}).f;
          slope[kv] = grad_program.eval(Point{b, h, q, kv, scaled}).f;
          m = std::max(m, s[kv]);
        }
        if (m == kNegInf)
          continue;
        double l = 0;
        for (int kv = 0; kv < in.kv_len; ++kv)
          l += p[kv] = s[kv] == kNegInf ? 0.0 : std::exp(s[kv] - m);
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
          const double ds = p[kv] * (dp - delta) * slope[kv] * scale; // d/d(q . k)
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
