#include "tests/AttentionReference.h"

#include <cmath>
#include <limits>

namespace flexjit::testing {

AttentionRows attention_reference(const AttentionInputs& in, const MaskMod& mask,
                                  const ScoreMod& score, double scale, const Bindings& bindings,
                                  std::vector<int64_t> rows) {
  if (rows.empty())
    for (int64_t r = 0; r < int64_t{in.B} * in.Hq * in.q_len; ++r)
      rows.push_back(r);
  const Program mask_program(optimize(mask.body()), bindings);
  const Program score_program(optimize(score.body()), bindings);
  const int D = in.D, group = in.Hq / in.Hkv;
  AttentionRows result;
  result.rows = rows;
  result.out.assign(rows.size() * D, 0.0);
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
    double* o = &result.out[i * D];
    for (int kv = 0; kv < in.kv_len; ++kv) {
      if (s[kv] == -std::numeric_limits<double>::infinity())
        continue;
      const double p = std::exp(s[kv] - m);
      l += p;
      const float* vp = &in.v[((static_cast<size_t>(b) * in.Hkv + hk) * in.kv_len + kv) * D];
      for (int d = 0; d < D; ++d)
        o[d] += p * vp[d];
    }
    for (int d = 0; d < D; ++d)
      o[d] /= l;
    result.lse[i] = m + std::log(l);
  }
  return result;
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
