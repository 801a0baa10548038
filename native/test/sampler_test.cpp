// Statistical checks of the native sampler on fixed logits: the empirical distribution of many
// seeded draws must match softmax(logits / T) restricted to the top-k (ties kept), computed here
// independently in double. The chi-square bound comes from the sample count and degrees of freedom.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "errors.h"
#include "sampler.h"

using gptfast::Sampler;

namespace {

std::vector<double> expected_distribution(const std::vector<float>& logits, float t, int k) {
  std::vector<float> sorted(logits);
  std::sort(sorted.rbegin(), sorted.rend());
  const float pivot = (k > 0 && k < int(logits.size())) ? sorted[k - 1] : -INFINITY;
  std::vector<double> p(logits.size(), 0.0);
  double total = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] >= pivot) total += p[i] = std::exp(double(logits[i]) / t);
  }
  for (double& x : p) x /= total;
  return p;
}

// Pearson chi-square of counts against p over the support; fails loudly when above a bound
// that a correct sampler exceeds with probability ~1e-6 (normal approximation, df + 5*sqrt(2 df)).
void expect_matches(const std::vector<float>& logits, float t, int k, int draws) {
  Sampler s;
  s.configure(t, k, 1234);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) counts[s.sample(logits.data(), int(logits.size()))]++;
  const auto p = expected_distribution(logits, t, k);
  double chi2 = 0;
  int df = -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " is outside top-k but was sampled";
      continue;
    }
    const double e = p[i] * draws;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
    ++df;
  }
  EXPECT_LT(chi2, df + 5 * std::sqrt(2.0 * df)) << "t=" << t << " k=" << k;
}

const std::vector<float> kLogits = {2.0f, 1.0f, 0.5f, 0.5f, -1.0f, 3.0f, 0.0f, -2.0f};

}  // namespace

TEST(Sampler, GreedyTakesFirstMaximum) {
  Sampler s;
  s.configure(0.0f, 0, 0);
  std::vector<float> logits = {0.1f, 3.0f, 3.0f, -1.0f};
  EXPECT_EQ(s.sample(logits.data(), 4), 1);
}

TEST(Sampler, TemperatureMatchesSoftmax) { expect_matches(kLogits, 1.0f, 0, 200000); }
TEST(Sampler, LowTemperatureMatchesSoftmax) { expect_matches(kLogits, 0.5f, 0, 200000); }
TEST(Sampler, TopKMatchesRenormalisedSoftmax) { expect_matches(kLogits, 0.8f, 3, 200000); }
TEST(Sampler, TopKKeepsTiesWithTheKthLogit) {
  // k = 4 cuts between the two 0.5 logits: both stay in.
  expect_matches(kLogits, 1.0f, 4, 200000);
  Sampler s;
  s.configure(1.0f, 4, 7);
  std::map<int, int> seen;
  for (int i = 0; i < 20000; ++i) seen[s.sample(kLogits.data(), int(kLogits.size()))]++;
  EXPECT_GT(seen[2], 0);
  EXPECT_GT(seen[3], 0);
  EXPECT_EQ(seen.size(), 5u);
}

TEST(Sampler, SameSeedSameSequence) {
  Sampler a, b;
  a.configure(1.0f, 0, 99);
  b.configure(1.0f, 0, 99);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(kLogits.data(), 8), b.sample(kLogits.data(), 8));
}

TEST(Sampler, RejectsInvalidParameters) {
  Sampler s;
  EXPECT_THROW(s.configure(-0.5f, 0, 0), gptfast::Error);
  EXPECT_THROW(s.configure(NAN, 0, 0), gptfast::Error);
  EXPECT_THROW(s.configure(1.0f, -1, 0), gptfast::Error);
}

TEST(Sampler, DetectsAWrongDistribution) {
  // The check itself must be able to fail: draws from T=1 judged against T=0.5 are rejected.
  Sampler s;
  s.configure(1.0f, 0, 5);
  std::vector<int> counts(kLogits.size(), 0);
  const int draws = 200000;
  for (int i = 0; i < draws; ++i) counts[s.sample(kLogits.data(), 8)]++;
  const auto wrong = expected_distribution(kLogits, 0.5f, 0);
  double chi2 = 0;
  for (size_t i = 0; i < wrong.size(); ++i) {
    const double e = wrong[i] * draws;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  EXPECT_GT(chi2, 7 + 5 * std::sqrt(14.0));
}
