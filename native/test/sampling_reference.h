// What the statistical sampler tests (CPU sampler_test.cpp, CUDA cuda_kernels_test.cpp) share:
// the logits they draw from, their SamplingSpec shorthand, and the sampling distribution computed
// independently in double: softmax(logits / T) restricted to top-k with ties kept, then to the
// top-p nucleus (ties at its edge taken lowest id first).
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "gptfast/engine_api.h"

namespace gptfast_test {

// Eight logits with a tie (0.5, 0.5), so that top-k's tie rule is exercised.
inline const std::vector<float> kLogits = {2.0f, 1.0f, 0.5f, 0.5f, -1.0f, 3.0f, 0.0f, -2.0f};

inline gptfast::SamplingSpec spec(float t, int k = 0, float p = 1.0f, int64_t seed = 1234) {
  gptfast::SamplingSpec s;
  s.temperature = t;
  s.top_k = k;
  s.top_p = p;
  s.seed = seed;
  return s;
}

inline std::vector<double> expected_distribution(const std::vector<float>& logits, float t, int k, float top_p) {
  std::vector<float> sorted(logits);
  std::sort(sorted.rbegin(), sorted.rend());
  const float pivot = (k > 0 && k < int(logits.size())) ? sorted[k - 1] : -INFINITY;
  std::vector<double> p(logits.size(), 0.0);
  double total = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] >= pivot) total += p[i] = std::exp(double(logits[i]) / t);
  }
  for (double& x : p) x /= total;
  if (top_p < 1) {  // smallest most-probable set reaching top_p
    std::vector<size_t> order(p.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    double mass = 0;
    std::vector<double> nucleus(p.size(), 0.0);
    for (size_t j = 0; j < order.size() && mass < top_p; ++j) mass += nucleus[order[j]] = p[order[j]];
    for (double& x : nucleus) x /= mass;
    p = nucleus;
  }
  return p;
}

}  // namespace gptfast_test
