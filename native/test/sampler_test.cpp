// Statistical checks of the native sampler on fixed logits: the empirical distribution of many
// seeded draws must match the distribution computed independently in double
// (sampling_reference.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

#include "chi_square.h"
#include "errors.h"
#include "sampler.h"
#include "sampling_reference.h"

using gptfast::Sampler;
using gptfast::SamplingSpec;
using gptfast_test::chi_square;
using gptfast_test::expected_distribution;
using gptfast_test::kLogits;
using gptfast_test::spec;

namespace {

constexpr int kDraws = 200000;

std::vector<long> draw_counts(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<long> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) counts[s.sample(logits.data())]++;
  return counts;
}

void expect_matches(float t, int k, float top_p) {
  Sampler s;
  s.configure(spec(t, k, top_p), int(kLogits.size()));
  const auto result = chi_square(draw_counts(s, kLogits, kDraws), expected_distribution(kLogits, t, k, top_p));
  EXPECT_TRUE(result.passes()) << "t=" << t << " k=" << k << " top_p=" << top_p << " chi2=" << result.statistic
                               << " df=" << result.df << " impossible=" << result.impossible_seen;
}

}  // namespace

TEST(Sampler, GreedyTakesFirstMaximum) {
  Sampler s;
  s.configure(spec(0.0f), 4);
  std::vector<float> logits = {0.1f, 3.0f, 3.0f, -1.0f};
  EXPECT_EQ(s.sample(logits.data()), 1);
}

TEST(Sampler, TemperatureMatchesSoftmax) { expect_matches(1.0f, 0, 1.0f); }
TEST(Sampler, LowTemperatureMatchesSoftmax) { expect_matches(0.5f, 0, 1.0f); }
TEST(Sampler, TopKMatchesRenormalisedSoftmax) { expect_matches(0.8f, 3, 1.0f); }
TEST(Sampler, TopPMatchesNucleus) { expect_matches(1.0f, 0, 0.7f); }
TEST(Sampler, TopKThenTopP) { expect_matches(1.3f, 5, 0.9f); }

TEST(Sampler, TopKKeepsTiesWithTheKthLogit) {
  // k = 4 cuts between the two 0.5 logits: both stay in, so five tokens can appear.
  expect_matches(1.0f, 4, 1.0f);
  Sampler s;
  s.configure(spec(1.0f, 4, 1.0f, 7), 8);
  const auto counts = draw_counts(s, kLogits, 20000);
  EXPECT_GT(counts[2], 0);
  EXPECT_GT(counts[3], 0);
  EXPECT_EQ(std::count_if(counts.begin(), counts.end(), [](long c) { return c > 0; }), 5);
}

TEST(Sampler, PenaltiesAndSuppression) {
  Sampler s;
  SamplingSpec sp = spec(0.0f);
  sp.repetition_penalty = 2.0f;
  s.configure(sp, 8);
  const int32_t prompt[] = {5};  // logit 3.0 -> 1.5 after the penalty: token 0 (2.0) wins
  s.reset_history(prompt, 1);
  EXPECT_EQ(s.sample(kLogits.data()), 0);
  sp.repetition_penalty = 1.0f;
  sp.presence_penalty = 1.5f;  // generated 5 once: 3.0 - 1.5 = 1.5 < 2.0
  s.configure(sp, 8);
  s.reset_history(prompt, 1);
  EXPECT_EQ(s.sample(kLogits.data()), 5);  // presence counts generated tokens only
  s.record_generated(5);
  EXPECT_EQ(s.sample(kLogits.data()), 0);
  const int32_t banned[] = {0, 5};
  s.set_suppressed(banned, 2);
  EXPECT_EQ(s.sample(kLogits.data()), 1);
  s.set_suppressed(nullptr, 0);
  EXPECT_EQ(s.sample(kLogits.data()), 0);
  s.configure(spec(0.0f), 8);  // suppression without penalties has a path of its own
  s.set_suppressed(banned, 2);
  EXPECT_EQ(s.sample(kLogits.data()), 1);
  const int32_t five[] = {5, 5};
  s.set_suppressed(five, 2);  // a repeated id; the previous set is cleared
  EXPECT_EQ(s.sample(kLogits.data()), 0);
  s.set_suppressed(nullptr, 0);
  EXPECT_EQ(s.sample(kLogits.data()), 5);
}

TEST(Sampler, SameSeedSameSequence) {
  Sampler a, b;
  a.configure(spec(1.0f, 0, 1.0f, 99), 8);
  b.configure(spec(1.0f, 0, 1.0f, 99), 8);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.sample(kLogits.data()), b.sample(kLogits.data()));
}

TEST(Sampler, RejectsInvalidParameters) {
  Sampler s;
  EXPECT_THROW(s.configure(spec(-0.5f), 8), gptfast::Error);
  EXPECT_THROW(s.configure(spec(NAN), 8), gptfast::Error);
  EXPECT_THROW(s.configure(spec(1.0f, -1), 8), gptfast::Error);
  EXPECT_THROW(s.configure(spec(1.0f, 0, 0.0f), 8), gptfast::Error);
  EXPECT_THROW(s.configure(spec(1.0f, 0, 1.5f), 8), gptfast::Error);
  SamplingSpec bad = spec(1.0f);
  bad.repetition_penalty = 0.0f;
  EXPECT_THROW(s.configure(bad, 8), gptfast::Error);
}

TEST(Sampler, DetectsAWrongDistribution) {
  // The check itself must be able to fail: draws at T=1 judged against T=0.5, and top-p draws
  // judged against the unfiltered softmax, are both rejected.
  Sampler s;
  s.configure(spec(1.0f, 0, 1.0f, 5), 8);
  EXPECT_FALSE(chi_square(draw_counts(s, kLogits, kDraws), expected_distribution(kLogits, 0.5f, 0, 1.0f)).passes());
  s.configure(spec(1.0f, 0, 0.7f, 5), 8);
  EXPECT_FALSE(chi_square(draw_counts(s, kLogits, kDraws), expected_distribution(kLogits, 1.0f, 0, 1.0f)).passes());
}
