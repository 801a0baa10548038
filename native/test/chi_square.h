// Pearson chi-square goodness-of-fit for the statistical sampling tests. The bound is the chi-square
// quantile at tail probability ~1e-6 (Wilson-Hilferty approximation, z = 4.75), so a correct
// sampler fails about once in a million runs while real distribution errors are far above it.
#pragma once

#include <cmath>
#include <vector>

namespace gptfast_test {

inline double chi_square_bound(int df) {
  const double z = 4.75, a = 2.0 / (9.0 * df);
  return df * std::pow(1 - a + z * std::sqrt(a), 3);
}

struct ChiSquare {
  double statistic = 0;
  int df = -1;
  bool impossible_seen = false;  // a count where the expected probability is 0
  bool passes() const { return !impossible_seen && df > 0 && statistic < chi_square_bound(df); }
};

inline ChiSquare chi_square(const std::vector<long>& counts, const std::vector<double>& p) {
  long n = 0;
  for (long c : counts) n += c;
  ChiSquare r;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) {
      if (counts[i] > 0) r.impossible_seen = true;
      continue;
    }
    const double e = p[i] * n;
    r.statistic += (counts[i] - e) * (counts[i] - e) / e;
    ++r.df;
  }
  return r;
}

}  // namespace gptfast_test
