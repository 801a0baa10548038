// The speculative accept/reject rule must emit exactly the target distribution. With fixed
// per-position target rows p_j and draft rows q_j (a valid model whose conditionals ignore the
// prefix), the j-th emitted token, given that the round reached position j, must follow p_j:
// checked by chi-square at positions 0 and 1 and on the bonus row, plus the acceptance rate
// sum_x min(p, q). A deliberately wrong rule (resampling from p instead of the residual) must fail.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "chi_square.h"
#include "random.h"
#include "sampler.h"
#include "speculative_sampling.h"

using gptfast::Random;
using gptfast_test::chi_square;

namespace {

constexpr int kVocab = 6, kK = 3, kRounds = 200000;

const std::vector<std::vector<float>> kTarget = {  // k+1 rows
    {0.30f, 0.25f, 0.20f, 0.15f, 0.07f, 0.03f},
    {0.05f, 0.05f, 0.10f, 0.20f, 0.25f, 0.35f},
    {0.50f, 0.00f, 0.10f, 0.10f, 0.20f, 0.10f},
    {0.10f, 0.40f, 0.10f, 0.10f, 0.10f, 0.20f}};
const std::vector<std::vector<float>> kDraft = {  // k rows, deliberately different
    {0.10f, 0.10f, 0.40f, 0.30f, 0.05f, 0.05f},
    {0.20f, 0.20f, 0.20f, 0.20f, 0.10f, 0.10f},
    {0.20f, 0.20f, 0.20f, 0.20f, 0.10f, 0.10f}};

using Rule = std::function<int(const float*, const float*, const int32_t*, int, int, Random&, float*, int32_t*, int*)>;

// The bug this test must catch: on rejection, sample from p instead of normalize(max(0, p - q)).
int wrong_rule(const float* p, const float* q, const int32_t* draft, int k, int vocab, Random& random, float*,
               int32_t* out, int* accepted) {
  for (int i = 0; i < k; ++i) {
    const float* pi = p + i * vocab;
    const float* qi = q + i * vocab;
    if (random.uniform() * qi[draft[i]] < pi[draft[i]]) {
      out[i] = draft[i];
      continue;
    }
    *accepted = i;
    out[i] = gptfast::draw_dense(pi, vocab, random);
    return i + 1;
  }
  *accepted = k;
  out[k] = gptfast::draw_dense(p + k * vocab, vocab, random);
  return k + 1;
}

struct Tally {
  std::vector<std::vector<long>> at_position = std::vector<std::vector<long>>(kK + 1, std::vector<long>(kVocab, 0));
  long first_accepted = 0;
};

Tally run(const Rule& rule) {
  std::vector<float> p, q;
  for (const auto& row : kTarget) p.insert(p.end(), row.begin(), row.end());
  for (const auto& row : kDraft) q.insert(q.end(), row.begin(), row.end());
  Random random;
  random.seed(2024);
  std::vector<float> residual(kVocab);
  int32_t draft[kK], out[kK + 1];
  Tally t;
  for (int r = 0; r < kRounds; ++r) {
    for (int i = 0; i < kK; ++i) draft[i] = gptfast::draw_dense(q.data() + i * kVocab, kVocab, random);
    int accepted = -1;
    const int n = rule(p.data(), q.data(), draft, kK, kVocab, random, residual.data(), out, &accepted);
    EXPECT_EQ(n, accepted + 1);
    for (int j = 0; j < n; ++j) t.at_position[j][out[j]]++;
    if (accepted >= 1) t.first_accepted++;
  }
  return t;
}

std::vector<double> as_double(const std::vector<float>& row) { return {row.begin(), row.end()}; }

}  // namespace

TEST(SpeculativeSampling, EmitsExactlyTheTargetDistribution) {
  const Tally t = run(gptfast::accept_or_resample);
  for (int j : {0, 1, kK}) {  // first position, second position, bonus row
    const auto r = chi_square(t.at_position[j], as_double(kTarget[j]));
    EXPECT_TRUE(r.passes()) << "position " << j << " chi2=" << r.statistic << " df=" << r.df
                            << " impossible=" << r.impossible_seen;
  }
  // Acceptance of the first draft token: sum_x min(p(x), q(x)), within 5 binomial sigmas.
  double expected = 0;
  for (int x = 0; x < kVocab; ++x) expected += std::min(kTarget[0][x], kDraft[0][x]);
  const double sigma = std::sqrt(expected * (1 - expected) / kRounds);
  EXPECT_NEAR(double(t.first_accepted) / kRounds, expected, 5 * sigma);
}

TEST(SpeculativeSampling, GreedyRowsAcceptOnlyTheArgmax) {
  // One-hot p and q (temperature 0): the draft token survives only if it is the target's argmax.
  std::vector<float> p = {0, 1, 0, 0, 0, 1, 1, 0, 0}, q = {0, 1, 0, 1, 0, 0};
  const int32_t draft[] = {1, 0};
  std::vector<float> residual(3);
  int32_t out[3];
  int accepted = -1;
  Random random;
  EXPECT_EQ(gptfast::accept_or_resample(p.data(), q.data(), draft, 2, 3, random, residual.data(), out, &accepted), 2);
  EXPECT_EQ(accepted, 1);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[1], 2);  // corrected to the target's argmax
}

TEST(SpeculativeSampling, DetectsAWrongAcceptRule) {
  const Tally t = run(wrong_rule);
  const auto r = chi_square(t.at_position[0], as_double(kTarget[0]));
  EXPECT_FALSE(r.passes()) << "the wrong rule went unnoticed: chi2=" << r.statistic;
}
