// Tests of the CUDA kernels (src/cuda) against the CPU code they must agree with. GPU tests use
// the CudaKernels fixture, which skips with the printed reason when no CUDA device is usable; the
// Host* tests (Philox known answers, argument checks, errors without a device) run anywhere.
//
// Sampling: chi-square fits of the drawn tokens to the analytic distribution (as sampler_test.cpp
// does on the CPU), including a fit that must fail; supports and probabilities equal to the CPU
// Sampler's; greedy = argmax; seeds reproduce. Accept/reject: emits the target distribution and
// agrees with accept_or_resample where the outcome is deterministic. Gemv: within 1e-5 of
// sum |w x| of a float64 dequantize-then-multiply reference.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "chi_square.h"
#include "cuda/device_sampler.h"
#include "cuda/kernels.h"
#include "cuda/philox.h"
#include "errors.h"
#include "random.h"
#include "sampler.h"
#include "sampling_reference.h"
#include "speculative_sampling.h"

namespace cu = gptfast::cuda;
using gptfast::SamplingSpec;
using gptfast_test::chi_square;
using gptfast_test::expected_distribution;
using gptfast_test::kLogits;
using gptfast_test::spec;

namespace {

// "" when a CUDA device is usable, else why not.
std::string no_device_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) return std::string("no CUDA device: ") + cudaGetErrorString(e);
  if (n == 0) return "no CUDA device: cudaGetDeviceCount found none";
  return "";
}

class CudaKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = no_device_reason();
    if (!why.empty()) GTEST_SKIP() << why;  // GoogleTest prints the reason under the test's name
  }
};

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// Waits for the kernels so far; a fault inside one surfaces here.
void sync() { check(cudaDeviceSynchronize(), "kernel execution"); }

// A device array; `slack` extra elements after the data hold `fill` (NaN for floats), so that
// a kernel reading past the end gets a visibly wrong result.
template <class T>
class Device {
 public:
  explicit Device(const std::vector<T>& host, size_t slack = 0, T fill = T()) : n_(host.size()) {
    check(cudaMalloc(reinterpret_cast<void**>(&p_), (n_ + slack) * sizeof(T) + 16), "cudaMalloc");
    std::vector<T> all(host);
    all.resize(n_ + slack, fill);
    check(cudaMemcpy(p_, all.data(), all.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  explicit Device(size_t n) : Device(std::vector<T>(n)) {}
  ~Device() { cudaFree(p_); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  T* get() const { return p_; }
  std::vector<T> host() const {
    sync();
    std::vector<T> out(n_);
    check(cudaMemcpy(out.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
    return out;
  }

 private:
  T* p_ = nullptr;
  size_t n_;
};

// ---- sampling -------------------------------------------------------------------------------------

constexpr int kDraws = 200000;

template <class T>
std::vector<T> repeat(const std::vector<T>& row, int times) {
  std::vector<T> out;
  out.reserve(row.size() * size_t(times));
  for (int i = 0; i < times; ++i) out.insert(out.end(), row.begin(), row.end());
  return out;
}

std::vector<cu::RngState> seeds(int rows, uint64_t first) {
  std::vector<cu::RngState> rng(rows);
  for (int r = 0; r < rows; ++r) rng[r] = {first + uint64_t(r), 0};
  return rng;
}

// One draw from each of `rows` rows holding the same logits, each row its own slot and seed.
std::vector<int32_t> sample_rows(const std::vector<float>& logits, const SamplingSpec& s, int rows, uint64_t seed) {
  const int vocab = int(logits.size());
  Device<float> d_logits(repeat(logits, rows));
  Device<cu::SamplingParams> params(std::vector<cu::SamplingParams>(rows, cu::make_sampling_params(s)));
  Device<cu::RngState> rng(seeds(rows, seed));
  Device<int32_t> tokens(rows);
  cu::SamplingBatch b;
  b.logits = d_logits.get();
  b.rows = rows;
  b.vocab = vocab;
  b.params = params.get();
  cu::sample(b, rng.get(), tokens.get(), nullptr);
  return tokens.host();
}

std::vector<long> counts_of(const std::vector<int32_t>& tokens, int vocab) {
  std::vector<long> counts(vocab, 0);
  for (int32_t t : tokens) {
    EXPECT_TRUE(t >= 0 && t < vocab) << "token " << t;
    if (t >= 0 && t < vocab) counts[t]++;
  }
  return counts;
}

void expect_fits(float t, int k, float top_p) {
  const auto tokens = sample_rows(kLogits, spec(t, k, top_p), kDraws, 777);
  const auto r = chi_square(counts_of(tokens, int(kLogits.size())), expected_distribution(kLogits, t, k, top_p));
  EXPECT_TRUE(r.passes()) << "t=" << t << " k=" << k << " top_p=" << top_p << " chi2=" << r.statistic
                          << " df=" << r.df << " impossible=" << r.impossible_seen;
}

// The distribution kernel's rows for `rows` copies of logits (penalty history optional).
std::vector<float> gpu_distribution(const std::vector<float>& logits, const SamplingSpec& s,
                                    const cu::SamplingHistory& history = {}) {
  const int vocab = int(logits.size());
  Device<float> d_logits(logits);
  Device<cu::SamplingParams> params(std::vector<cu::SamplingParams>{cu::make_sampling_params(s)});
  Device<float> probs(vocab);
  cu::SamplingBatch b;
  b.logits = d_logits.get();
  b.rows = 1;
  b.vocab = vocab;
  b.params = params.get();
  b.history = history;
  cu::sampling_distribution(b, probs.get(), nullptr);
  return probs.host();
}

// Large logits with many ties (values on a grid of 1/16), as a real vocabulary's might have.
std::vector<float> tied_logits(int vocab, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> l(vocab);
  for (float& x : l) x = std::round(normal(gen) * 16.0f) / 16.0f;
  return l;
}

// The GPU's processed distribution must be the CPU Sampler's: the same probabilities on the same
// ids. One freedom: where the top-p nucleus ends inside a run of tied logits, the CPU keeps the
// ties its sort happens to put first and the GPU the lowest ids, so ids may differ there, but only
// among tokens with the nucleus's smallest probability, and as many on each side.
void expect_same_distribution(const std::vector<float>& want, const std::vector<float>& got, const SamplingSpec& s) {
  const std::string label = "t=" + std::to_string(s.temperature) + " k=" + std::to_string(s.top_k) +
                            " p=" + std::to_string(s.top_p) + " vocab=" + std::to_string(want.size());
  auto smallest_kept = [](const std::vector<float>& p) {
    float m = INFINITY;
    for (float x : p) if (x > 0) m = std::min(m, x);
    return m;
  };
  const float edge_want = smallest_kept(want), edge_got = smallest_kept(got);
  int mismatches = 0;
  for (size_t v = 0; v < want.size(); ++v) {
    if ((want[v] > 0) == (got[v] > 0)) {
      EXPECT_NEAR(want[v], got[v], 1e-6) << label << " id " << v;
      continue;
    }
    ++mismatches;
    EXPECT_TRUE(s.top_p < 1.0f) << label << ": id " << v << " is kept by one side only (" << want[v] << " vs " << got[v]
                                << ")";
    EXPECT_NEAR(want[v] > 0 ? want[v] : got[v], want[v] > 0 ? edge_want : edge_got, 1e-6)
        << label << ": id " << v << " kept by one side only is not at the nucleus edge";
  }
  std::vector<float> a(want), b(got);  // the same multiset of probabilities
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-6) << label << " rank " << i;
  if (mismatches > 0) std::printf("%s: %d ids differ inside the tie at the nucleus edge\n", label.c_str(), mismatches);
}

TEST(HostSampling, MakeSamplingParamsCopiesEveryField) {
  SamplingSpec s = spec(0.7f, 40, 0.9f);
  s.repetition_penalty = 1.1f;
  s.presence_penalty = 0.5f;
  s.frequency_penalty = -0.25f;
  const cu::SamplingParams p = cu::make_sampling_params(s);
  EXPECT_EQ(p.temperature, 0.7f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_EQ(p.top_p, 0.9f);
  EXPECT_EQ(p.repetition_penalty, 1.1f);
  EXPECT_EQ(p.presence_penalty, 0.5f);
  EXPECT_EQ(p.frequency_penalty, -0.25f);
}

TEST_F(CudaKernels, GreedyTakesTheFirstMaximum) {
  const std::vector<float> logits = {0.1f, 3.0f, 3.0f, -1.0f, -INFINITY, NAN};
  for (int32_t t : sample_rows(logits, spec(0.0f), 4, 1)) EXPECT_EQ(t, 1);
}

TEST_F(CudaKernels, GreedyIsTheArgmaxOfEveryRow) {
  // Rows reach their slots through slot_of_row (here reversed), as a batch of active slots does.
  const int rows = 6, vocab = 128256;
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<float> logits(size_t(rows) * vocab);
  for (float& x : logits) x = normal(gen);
  std::vector<int32_t> slot_of_row(rows), expected(rows);
  for (int r = 0; r < rows; ++r) {
    slot_of_row[r] = rows - 1 - r;
    const float* row = logits.data() + size_t(r) * vocab;
    expected[r] = int32_t(std::max_element(row, row + vocab) - row);
  }
  Device<float> d_logits(logits);
  Device<int32_t> d_slots(slot_of_row);
  Device<cu::SamplingParams> params(std::vector<cu::SamplingParams>(rows, cu::make_sampling_params(spec(0.0f))));
  Device<cu::RngState> rng(seeds(rows, 1));
  Device<int32_t> tokens(rows);
  cu::SamplingBatch b;
  b.logits = d_logits.get();
  b.rows = rows;
  b.vocab = vocab;
  b.slot_of_row = d_slots.get();
  b.params = params.get();
  cu::sample(b, rng.get(), tokens.get(), nullptr);
  EXPECT_EQ(tokens.host(), expected);
}

TEST_F(CudaKernels, TemperatureMatchesSoftmax) { expect_fits(1.0f, 0, 1.0f); }
TEST_F(CudaKernels, LowTemperatureMatchesSoftmax) { expect_fits(0.5f, 0, 1.0f); }
TEST_F(CudaKernels, TopKMatchesRenormalisedSoftmax) { expect_fits(0.8f, 3, 1.0f); }
TEST_F(CudaKernels, TopPMatchesNucleus) { expect_fits(1.0f, 0, 0.7f); }
TEST_F(CudaKernels, TopKThenTopP) { expect_fits(1.3f, 5, 0.9f); }  // the nucleus edge cuts between tied logits

TEST_F(CudaKernels, TopKKeepsTiesWithTheKthLogit) {
  expect_fits(1.0f, 4, 1.0f);  // k = 4 cuts between the two 0.5 logits: both stay in
  const auto counts = counts_of(sample_rows(kLogits, spec(1.0f, 4), 20000, 9), int(kLogits.size()));
  EXPECT_GT(counts[2], 0);
  EXPECT_GT(counts[3], 0);
  EXPECT_EQ(std::count_if(counts.begin(), counts.end(), [](long c) { return c > 0; }), 5);
}

TEST_F(CudaKernels, DetectsAWrongDistribution) {
  // The fit must be able to fail: T=1 draws judged against T=0.5, and top-p draws judged against
  // the unfiltered softmax.
  const int vocab = int(kLogits.size());
  EXPECT_FALSE(chi_square(counts_of(sample_rows(kLogits, spec(1.0f), kDraws, 5), vocab),
                          expected_distribution(kLogits, 0.5f, 0, 1.0f))
                   .passes());
  EXPECT_FALSE(chi_square(counts_of(sample_rows(kLogits, spec(1.0f, 0, 0.7f), kDraws, 5), vocab),
                          expected_distribution(kLogits, 1.0f, 0, 1.0f))
                   .passes());
}

TEST_F(CudaKernels, SuccessiveLaunchesAdvanceTheCounter) {
  // One slot sampled launch after launch (as graph replays do) must draw fresh numbers each time.
  const int launches = 4000, vocab = int(kLogits.size());
  Device<float> d_logits(kLogits);
  Device<cu::SamplingParams> params(std::vector<cu::SamplingParams>{cu::make_sampling_params(spec(1.0f))});
  Device<cu::RngState> rng(seeds(1, 42));
  Device<int32_t> tokens(launches);
  cu::SamplingBatch b;
  b.logits = d_logits.get();
  b.rows = 1;
  b.vocab = vocab;
  b.params = params.get();
  for (int i = 0; i < launches; ++i) cu::sample(b, rng.get(), tokens.get() + i, nullptr);
  const auto r = chi_square(counts_of(tokens.host(), vocab), expected_distribution(kLogits, 1.0f, 0, 1.0f));
  EXPECT_TRUE(r.passes()) << "chi2=" << r.statistic;
  EXPECT_EQ(rng.host()[0].counter, uint64_t(launches));
}

TEST_F(CudaKernels, LargeVocabularyDrawsFitTheCpuDistribution) {
  // More ids than a block has threads times the draw's unroll, so the final walk spans several
  // strides; judged against the CPU Sampler's distribution with top-k and top-p cuts.
  const int vocab = 4500;
  std::mt19937 gen(17);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> logits(vocab);
  for (float& x : logits) x = uniform(gen);
  for (const SamplingSpec& s : {spec(1.0f), spec(0.9f, 3000, 0.8f)}) {
    gptfast::Sampler cpu;
    cpu.configure(s, vocab);
    std::vector<float> want(vocab);
    cpu.distribution(logits.data(), want.data());
    const auto r = chi_square(counts_of(sample_rows(logits, s, kDraws, 31), vocab),
                              std::vector<double>(want.begin(), want.end()));
    EXPECT_TRUE(r.passes()) << "k=" << s.top_k << " p=" << s.top_p << " chi2=" << r.statistic << " df=" << r.df
                            << " impossible=" << r.impossible_seen;
  }
}

TEST_F(CudaKernels, SameSeedSameTokensDifferentSeedsDiffer) {
  const auto logits = tied_logits(32000, 11);
  const SamplingSpec s = spec(1.0f, 200, 0.95f);
  const auto a = sample_rows(logits, s, 64, 100), b = sample_rows(logits, s, 64, 100);
  const auto c = sample_rows(logits, s, 64, 5000);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST_F(CudaKernels, DistributionEqualsTheCpuSampler) {
  // Exactly the CPU's support (top-k ties, the nucleus edge) and its probabilities, on large
  // vocabularies with many tied logits.
  struct Case {
    int vocab;
    SamplingSpec s;
  };
  const std::vector<Case> cases = {{32000, spec(1.0f)},           {32000, spec(0.7f, 50)},
                                   {32000, spec(1.0f, 0, 0.9f)},  {128256, spec(0.8f, 200, 0.95f)},
                                   {128256, spec(1.5f, 1)},       {1000, spec(1.0f, 1000, 0.5f)},
                                   {50000, spec(0.0f)},           {50000, spec(1.0f, 0, 0.01f)}};
  uint32_t seed = 1;
  for (const Case& c : cases) {
    const auto logits = tied_logits(c.vocab, seed++);
    gptfast::Sampler cpu;
    cpu.configure(c.s, c.vocab);
    std::vector<float> want(c.vocab);
    cpu.distribution(logits.data(), want.data());
    expect_same_distribution(want, gpu_distribution(logits, c.s), c.s);
  }
}

TEST_F(CudaKernels, PenaltiesSuppressionAndRecordedHistory) {
  // The CPU Sampler's PenaltiesAndSuppression case, with the history in device memory and the
  // generated token added by record_generated.
  const int vocab = int(kLogits.size());
  std::vector<uint8_t> in_context(vocab, 0), suppressed(vocab, 0);
  in_context[5] = 1;  // the prompt
  Device<uint8_t> d_context(in_context), d_suppressed(suppressed);
  Device<int32_t> d_counts(std::vector<int32_t>(vocab, 0));
  Device<float> d_logits(kLogits);
  Device<cu::RngState> rng(seeds(1, 1));
  Device<int32_t> token(1);
  auto greedy = [&](const SamplingSpec& s, bool suppress) {
    Device<cu::SamplingParams> params(std::vector<cu::SamplingParams>{cu::make_sampling_params(s)});
    cu::SamplingBatch b;
    b.logits = d_logits.get();
    b.rows = 1;
    b.vocab = vocab;
    b.params = params.get();
    b.history = {d_context.get(), d_counts.get(), suppress ? d_suppressed.get() : nullptr};
    cu::sample(b, rng.get(), token.get(), nullptr);
    return token.host()[0];
  };
  SamplingSpec s = spec(0.0f);
  s.repetition_penalty = 2.0f;  // 3.0 -> 1.5: token 0 (2.0) wins
  EXPECT_EQ(greedy(s, false), 0);
  s.repetition_penalty = 1.0f;
  s.presence_penalty = 1.5f;  // presence counts generated tokens only
  EXPECT_EQ(greedy(s, false), 5);
  const int32_t five = 5;
  Device<int32_t> d_five(std::vector<int32_t>{five});
  cu::record_generated(d_five.get(), nullptr, 1, 1, nullptr, vocab, d_context.get(), d_counts.get(), nullptr);
  EXPECT_EQ(d_counts.host()[5], 1);
  EXPECT_EQ(greedy(s, false), 0);  // 3.0 - 1.5 = 1.5 < 2.0
  std::vector<uint8_t> banned(vocab, 0);
  banned[0] = banned[5] = 1;
  check(cudaMemcpy(d_suppressed.get(), banned.data(), vocab, cudaMemcpyHostToDevice), "cudaMemcpy");
  EXPECT_EQ(greedy(s, true), 1);
  std::fill(banned.begin(), banned.end(), 1);  // nothing left: -1 (the CPU throws)
  check(cudaMemcpy(d_suppressed.get(), banned.data(), vocab, cudaMemcpyHostToDevice), "cudaMemcpy");
  EXPECT_EQ(greedy(s, true), -1);
  EXPECT_EQ(greedy(spec(1.0f), true), -1);
}

TEST_F(CudaKernels, PenalisedDistributionEqualsTheCpuSampler) {
  const int vocab = 32000;
  const auto logits = tied_logits(vocab, 21);
  SamplingSpec s = spec(0.9f, 100, 0.9f);
  s.repetition_penalty = 1.3f;
  s.presence_penalty = 0.4f;
  s.frequency_penalty = 0.2f;
  std::vector<int32_t> prompt, generated;
  std::mt19937 gen(5);
  for (int i = 0; i < 300; ++i) prompt.push_back(int32_t(gen() % vocab));
  for (int i = 0; i < 100; ++i) generated.push_back(int32_t(gen() % 64));  // repeats
  gptfast::Sampler cpu;
  cpu.configure(s, vocab);
  cpu.reset_history(prompt.data(), int(prompt.size()));
  std::vector<uint8_t> in_context(vocab, 0);
  std::vector<int32_t> counts(vocab, 0);
  for (int32_t t : prompt) in_context[t] = 1;
  for (int32_t t : generated) {
    cpu.record_generated(t);
    in_context[t] = 1;
    counts[t]++;
  }
  const std::vector<int32_t> banned = {int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin()), 7};
  cpu.set_suppressed(banned.data(), int(banned.size()));
  std::vector<uint8_t> suppressed(vocab, 0);
  for (int32_t t : banned) suppressed[t] = 1;
  Device<uint8_t> d_context(in_context), d_suppressed(suppressed);
  Device<int32_t> d_counts(counts);
  std::vector<float> want(vocab);
  cpu.distribution(logits.data(), want.data());
  expect_same_distribution(want, gpu_distribution(logits, s, {d_context.get(), d_counts.get(), d_suppressed.get()}), s);
}

TEST_F(CudaKernels, SampleProbsFitsTheGivenDistribution) {
  const std::vector<float> probs = {0.1f, 0.0f, 0.25f, 0.05f, 0.4f, 0.2f};
  const int rows = kDraws, vocab = int(probs.size());
  Device<float> d_probs(repeat(probs, rows));
  Device<cu::RngState> rng(seeds(rows, 9));
  Device<int32_t> tokens(rows);
  cu::sample_probs(d_probs.get(), rows, vocab, nullptr, rng.get(), tokens.get(), nullptr);
  const auto r = chi_square(counts_of(tokens.host(), vocab), std::vector<double>(probs.begin(), probs.end()));
  EXPECT_TRUE(r.passes()) << "chi2=" << r.statistic << " impossible=" << r.impossible_seen;
}

// ---- accept/reject --------------------------------------------------------------------------------

constexpr int kVocab = 6, kK = 3;
const std::vector<std::vector<float>> kTarget = {  // k+1 rows (speculative_sampling_test.cpp's)
    {0.30f, 0.25f, 0.20f, 0.15f, 0.07f, 0.03f},
    {0.05f, 0.05f, 0.10f, 0.20f, 0.25f, 0.35f},
    {0.50f, 0.00f, 0.10f, 0.10f, 0.20f, 0.10f},
    {0.10f, 0.40f, 0.10f, 0.10f, 0.10f, 0.20f}};
const std::vector<std::vector<float>> kDraft = {
    {0.10f, 0.10f, 0.40f, 0.30f, 0.05f, 0.05f},
    {0.20f, 0.20f, 0.20f, 0.20f, 0.10f, 0.10f},
    {0.20f, 0.20f, 0.20f, 0.20f, 0.10f, 0.10f}};

std::vector<float> flat(const std::vector<std::vector<float>>& rows) {
  std::vector<float> out;
  for (const auto& r : rows) out.insert(out.end(), r.begin(), r.end());
  return out;
}

struct Round {
  std::vector<int32_t> out, n_out, accepted;
};

Round run_accept_reject(const std::vector<float>& p, const std::vector<float>& q, const std::vector<int32_t>& draft,
                        int rows, int k, int vocab, uint64_t seed) {
  Device<float> d_p(p), d_q(q);
  Device<int32_t> d_draft(draft), out(size_t(rows) * (k + 1)), n_out(rows), accepted(rows);
  Device<cu::RngState> rng(seeds(rows, seed));
  cu::accept_reject(d_p.get(), d_q.get(), d_draft.get(), rows, k, vocab, nullptr, rng.get(), out.get(), n_out.get(),
                    accepted.get(), nullptr);
  return {out.host(), n_out.host(), accepted.host()};
}

TEST_F(CudaKernels, AcceptRejectEmitsExactlyTheTargetDistribution) {
  const int rows = kDraws;
  gptfast::Random random;
  random.seed(2024);
  const std::vector<float> q = flat(kDraft);
  std::vector<int32_t> draft(size_t(rows) * kK);
  for (int r = 0; r < rows; ++r) {
    for (int i = 0; i < kK; ++i) draft[size_t(r) * kK + i] = gptfast::draw_dense(q.data() + i * kVocab, kVocab, random);
  }
  const Round round = run_accept_reject(repeat(flat(kTarget), rows), repeat(q, rows), draft, rows, kK, kVocab, 77);
  std::vector<std::vector<long>> at(kK + 1, std::vector<long>(kVocab, 0));
  long first_accepted = 0;
  for (int r = 0; r < rows; ++r) {
    const int n = round.n_out[r];
    ASSERT_EQ(n, round.accepted[r] + 1);
    ASSERT_TRUE(n >= 1 && n <= kK + 1);
    for (int j = 0; j < n; ++j) {
      const int32_t t = round.out[size_t(r) * (kK + 1) + j];
      ASSERT_TRUE(t >= 0 && t < kVocab);
      if (j < n - 1) ASSERT_EQ(t, draft[size_t(r) * kK + j]);  // accepted ids are the draft's
      at[j][t]++;
    }
    if (round.accepted[r] >= 1) first_accepted++;
  }
  for (int j : {0, 1, kK}) {
    const auto res = chi_square(at[j], std::vector<double>(kTarget[j].begin(), kTarget[j].end()));
    EXPECT_TRUE(res.passes()) << "position " << j << " chi2=" << res.statistic << " impossible=" << res.impossible_seen;
  }
  double expected = 0;
  for (int x = 0; x < kVocab; ++x) expected += std::min(kTarget[0][x], kDraft[0][x]);
  const double sigma = std::sqrt(expected * (1 - expected) / rows);
  EXPECT_NEAR(double(first_accepted) / rows, expected, 5 * sigma);
  // And the fit can fail: position 0 does not follow the draft's distribution.
  EXPECT_FALSE(chi_square(at[0], std::vector<double>(kDraft[0].begin(), kDraft[0].end())).passes());
}

TEST_F(CudaKernels, AcceptRejectAgreesWithTheCpuRuleWhenDeterministic) {
  // One-hot rows (greedy), as speculative_sampling_test.cpp's GreedyRowsAcceptOnlyTheArgmax, plus
  // all-accepted with a one-hot bonus row and an out-of-vocabulary draft id.
  struct Case {
    std::vector<float> p, q;
    std::vector<int32_t> draft;
    int k, vocab;
  };
  const std::vector<Case> cases = {
      {{0, 1, 0, 0, 0, 1, 1, 0, 0}, {0, 1, 0, 1, 0, 0}, {1, 0}, 2, 3},  // second rejected -> target argmax
      {{0, 1, 0, 0, 0, 1, 0, 1, 0}, {0, 1, 0, 0, 0, 1}, {1, 2}, 2, 3},  // all accepted, bonus 1
      {{0.5f, 0.5f, 0, 0, 0, 1}, {1, 0, 0}, {0}, 1, 3},                  // p(0) < q(0) may reject; residual one-hot 1
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    const Case& t = cases[c];
    for (uint64_t seed = 0; seed < 8; ++seed) {
      const Round gpu = run_accept_reject(t.p, t.q, t.draft, 1, t.k, t.vocab, seed);
      gptfast::Random random;
      random.seed(seed);
      std::vector<float> residual(t.vocab);
      std::vector<int32_t> out(t.k + 1);
      int accepted = -1;
      const int n = gptfast::accept_or_resample(t.p.data(), t.q.data(), t.draft.data(), t.k, t.vocab, random,
                                                residual.data(), out.data(), &accepted);
      if (c == 2 && gpu.n_out[0] != n) continue;  // acceptance is random here: compare outcomes that match
      ASSERT_EQ(gpu.n_out[0], n) << "case " << c;
      EXPECT_EQ(gpu.accepted[0], accepted) << "case " << c;
      for (int j = 0; j < n; ++j) EXPECT_EQ(gpu.out[j], out[j]) << "case " << c << " position " << j;
    }
  }
  const Round bad = run_accept_reject({0, 1, 0, 0, 1, 0}, {0, 1, 0}, {7}, 1, 1, 3, 1);
  EXPECT_EQ(bad.n_out[0], 1);
  EXPECT_EQ(bad.out[0], -1);
}

// ---- gemv -----------------------------------------------------------------------------------------

uint16_t to_bf16(float f) {  // round to nearest even
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  bits += 0x7fff + ((bits >> 16) & 1);
  return uint16_t(bits >> 16);
}
float from_bf16(uint16_t b) {
  const uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Random activations [batch, in], as fp32 and rounded to bf16.
struct Activations {
  std::vector<float> f32;
  std::vector<uint16_t> bf16;
};
Activations activations(int batch, int in, std::mt19937& gen) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Activations a;
  for (int i = 0; i < batch * in; ++i) {
    const float f = normal(gen);
    a.f32.push_back(f);
    a.bf16.push_back(to_bf16(f));
  }
  return a;
}

// Runs a gemv on x (f32 or bf16, optionally at an offset of one element to defeat vector loads)
// and checks y against reference(o, c) in double: |y - ref| <= 1e-5 sum |w x| (+ bf16 rounding).
template <class Launch, class Weight>
void expect_gemv(const char* what, int out, int in, int batch, cu::ActDtype dtype, bool misalign, const Launch& launch,
                 const Weight& weight, std::mt19937& gen) {
  const Activations a = activations(batch, in, gen);
  const bool f32 = dtype == cu::ActDtype::f32;
  const size_t shift = misalign ? 1 : 0;
  std::vector<float> xf(shift, 0.0f);
  std::vector<uint16_t> xb(shift, 0);
  xf.insert(xf.end(), a.f32.begin(), a.f32.end());
  xb.insert(xb.end(), a.bf16.begin(), a.bf16.end());
  Device<float> dxf(xf, 64, NAN);  // NaN past the end: reading beyond `in` shows
  Device<uint16_t> dxb(xb, 64, uint16_t(0x7fc0));
  Device<float> dyf(size_t(batch) * out);
  Device<uint16_t> dyb(size_t(batch) * out);
  const void* x = f32 ? static_cast<const void*>(dxf.get() + shift) : static_cast<const void*>(dxb.get() + shift);
  void* y = f32 ? static_cast<void*>(dyf.get()) : static_cast<void*>(dyb.get());
  launch(x, y, batch, dtype);
  std::vector<double> got(size_t(batch) * out);
  if (f32) {
    const auto h = dyf.host();
    std::copy(h.begin(), h.end(), got.begin());
  } else {
    const auto h = dyb.host();
    std::transform(h.begin(), h.end(), got.begin(), from_bf16);
  }
  int bad = 0;
  for (int b = 0; b < batch; ++b) {
    for (int o = 0; o < out; ++o) {
      double ref = 0, magnitude = 0;
      for (int c = 0; c < in; ++c) {
        const double xv = f32 ? double(a.f32[size_t(b) * in + c]) : double(from_bf16(a.bf16[size_t(b) * in + c]));
        const double wx = weight(o, c) * xv;
        ref += wx;
        magnitude += std::abs(wx);
      }
      const double tol = 1e-5 * magnitude + (f32 ? 0.0 : std::abs(ref) * 0x1.0p-8);
      const double y_bo = got[size_t(b) * out + o];
      if (!(std::abs(y_bo - ref) <= tol) && bad++ < 5) {
        ADD_FAILURE() << what << " out=" << out << " in=" << in << " batch=" << batch << (f32 ? " f32" : " bf16")
                      << (misalign ? " misaligned" : "") << ": y[" << b << "," << o << "] = " << y_bo << ", expected "
                      << ref << " +- " << tol;
      }
    }
  }
}

struct Shape {
  int out, in;
};
// Vector-friendly shapes, odd ones (not multiples of the load width or group), and tiny ones.
const std::vector<Shape> kShapes = {{1, 16}, {3, 1}, {7, 33}, {37, 100}, {64, 4096}, {130, 512}, {129, 1000}, {96, 11008 / 8}};

TEST_F(CudaKernels, Int8GemvMatchesDequantizedReference) {
  std::mt19937 gen(1);
  for (const Shape& s : kShapes) {
    std::vector<int8_t> q(size_t(s.out) * s.in);
    std::vector<float> scales(s.out);
    for (auto& v : q) v = int8_t(int(gen() % 256) - 128);
    for (auto& v : scales) v = 0.001f + 0.02f * float(gen() % 1000) / 1000.0f;
    Device<int8_t> dq(q);
    Device<float> ds(scales);
    auto weight = [&](int o, int c) { return double(q[size_t(o) * s.in + c]) * double(scales[o]); };
    for (int batch : {1, 2, 3, 8}) {
      for (cu::ActDtype dtype : {cu::ActDtype::f32, cu::ActDtype::bf16}) {
        for (bool misalign : {false, true}) {
          expect_gemv("gemv_int8", s.out, s.in, batch, dtype, misalign,
                      [&](const void* x, void* y, int b, cu::ActDtype d) {
                        cu::gemv_int8(dq.get(), ds.get(), s.out, s.in, x, y, b, d, nullptr);
                      },
                      weight, gen);
        }
      }
    }
  }
}

TEST_F(CudaKernels, Int4GemvMatchesDequantizedReference) {
  std::mt19937 gen(2);
  for (int group : {32, 64, 128, 256}) {
    for (const Shape& s : kShapes) {
      // GPT-Fast's padding (linear_weight.h int4_padded_in): padded columns hold random nibbles
      // here, so a kernel that used them (or read x past `in`) would be caught.
      const int padded = (s.in % group == 0 && s.in % 128 == 0) ? s.in : (s.in + 1023) / 1024 * 1024;
      const int groups = padded / group;
      std::vector<uint8_t> q(size_t(s.out) * padded / 2);
      for (auto& v : q) v = uint8_t(gen() % 256);
      std::vector<uint16_t> sz(size_t(s.out) * groups * 2);
      std::normal_distribution<float> normal(0.0f, 0.05f);
      for (size_t i = 0; i < sz.size(); i += 2) {
        sz[i] = to_bf16(0.001f + std::abs(normal(gen)) / 4);  // scale
        sz[i + 1] = to_bf16(normal(gen));                     // zero
      }
      Device<uint8_t> dq(q);
      Device<uint16_t> dsz(sz);
      auto weight = [&](int o, int c) {
        const uint8_t byte = q[size_t(o) * padded / 2 + c / 2];
        const int nibble = c % 2 == 0 ? byte >> 4 : byte & 15;
        const size_t g = (size_t(o) * groups + c / group) * 2;
        return (nibble - 8) * double(from_bf16(sz[g])) + double(from_bf16(sz[g + 1]));
      };
      for (int batch : {1, 4, 5, 8}) {
        for (cu::ActDtype dtype : {cu::ActDtype::f32, cu::ActDtype::bf16}) {
          for (bool misalign : {false, true}) {
            expect_gemv("gemv_int4", s.out, s.in, batch, dtype, misalign,
                        [&](const void* x, void* y, int b, cu::ActDtype d) {
                          cu::gemv_int4(dq.get(), dsz.get(), s.out, s.in, padded, group, x, y, b, d, nullptr);
                        },
                        weight, gen);
          }
        }
      }
    }
  }
}

TEST_F(CudaKernels, Bf16GemvMatchesReference) {
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  for (const Shape& s : kShapes) {
    std::vector<uint16_t> w(size_t(s.out) * s.in);
    for (auto& v : w) v = to_bf16(normal(gen));
    Device<uint16_t> dw(w);
    auto weight = [&](int o, int c) { return double(from_bf16(w[size_t(o) * s.in + c])); };
    for (int batch : {1, 6, 8}) {
      for (cu::ActDtype dtype : {cu::ActDtype::f32, cu::ActDtype::bf16}) {
        for (bool misalign : {false, true}) {
          expect_gemv("gemv_bf16", s.out, s.in, batch, dtype, misalign,
                      [&](const void* x, void* y, int b, cu::ActDtype d) {
                        cu::gemv_bf16(dw.get(), s.out, s.in, x, y, b, d, nullptr);
                      },
                      weight, gen);
        }
      }
    }
  }
}

TEST_F(CudaKernels, KernelsCaptureIntoACudaGraph) {
  // Captured once, replayed: the draws advance (counter in device memory) and the gemv reruns.
  const int vocab = int(kLogits.size()), replays = 3000;
  cudaStream_t stream;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  Device<float> d_logits(kLogits);
  Device<cu::SamplingParams> params(std::vector<cu::SamplingParams>{cu::make_sampling_params(spec(1.0f))});
  Device<cu::RngState> rng(seeds(1, 3));
  Device<int32_t> token(1);
  Device<int8_t> q(std::vector<int8_t>(64 * 256, 1));
  Device<float> scales(std::vector<float>(64, 0.5f)), x(std::vector<float>(256, 1.0f)), y(64);
  cu::SamplingBatch b;
  b.logits = d_logits.get();
  b.rows = 1;
  b.vocab = vocab;
  b.params = params.get();
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
  cu::gemv_int8(q.get(), scales.get(), 64, 256, x.get(), y.get(), 1, cu::ActDtype::f32, stream);
  cu::sample(b, rng.get(), token.get(), stream);
  check(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
  check(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  std::vector<long> counts(vocab, 0);
  for (int i = 0; i < replays; ++i) {
    check(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    int32_t t = -1;
    check(cudaMemcpyAsync(&t, token.get(), sizeof(t), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    ASSERT_TRUE(t >= 0 && t < vocab);
    counts[t]++;
  }
  const auto r = chi_square(counts, expected_distribution(kLogits, 1.0f, 0, 1.0f));
  EXPECT_TRUE(r.passes()) << "chi2=" << r.statistic;
  EXPECT_EQ(rng.host()[0].counter, uint64_t(replays));
  for (float v : y.host()) EXPECT_EQ(v, 128.0f);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

// ---- DeviceSampler: the engine's per-slot sampling state ------------------------------------------

// Logits where penalties and suppression change the greedy choice: a tie at the top (ids 10 and
// 200: the first wins), a few runners-up, the rest low.
std::vector<float> contested_logits(int vocab) {
  std::vector<float> logits(vocab);
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> uniform(-1.0f, 0.0f);
  for (float& x : logits) x = uniform(gen);
  logits[10] = logits[200] = 3.0f;
  logits[7] = 2.9f;
  logits[42] = 2.5f;
  logits[150] = 2.2f;
  return logits;
}

// Greedy decoding is deterministic, so the device must pick what the CPU Sampler picks, step after
// step, with each slot's history (prompt, tokens generated so far, suppressed ids) kept on the
// device by sample() itself; rows reach their slots through slot_of_row (here in reverse order,
// with a slot left unused), and start() resets a slot's history.
TEST_F(CudaKernels, DeviceSamplerKeepsEachSlotsHistoryLikeTheCpuSampler) {
  const int vocab = 300, steps = 40;
  const std::vector<float> row = contested_logits(vocab);
  cu::DeviceSampler sampler(/*slots=*/4, vocab, nullptr);
  SamplingSpec penalised = spec(0.0f);
  penalised.repetition_penalty = 1.3f;
  penalised.presence_penalty = 0.4f;
  penalised.frequency_penalty = 0.3f;
  const std::vector<int32_t> prompt = {1, 7, 7, 99}, banned = {10, -5, 5000};
  gptfast::Sampler cpu_penalised, cpu_plain;
  cpu_penalised.configure(penalised, vocab);
  cpu_penalised.reset_history(prompt.data(), int(prompt.size()));
  cpu_penalised.set_suppressed(banned.data(), int(banned.size()));
  cpu_plain.configure(spec(0.0f), vocab);
  cpu_plain.reset_history(prompt.data(), int(prompt.size()));
  sampler.start(3, penalised, prompt.data(), int(prompt.size()), nullptr);
  sampler.suppress(3, banned.data(), int(banned.size()), nullptr);
  sampler.start(1, spec(0.0f), prompt.data(), int(prompt.size()), nullptr);
  Device<float> logits(repeat(row, 2));
  Device<int32_t> slot_of_row(std::vector<int32_t>{3, 1}), tokens(2);
  std::vector<int32_t> penalised_tokens, plain_tokens;
  for (int step = 0; step < steps; ++step) {
    sampler.sample(logits.get(), 2, slot_of_row.get(), tokens.get(), nullptr);
    const std::vector<int32_t> got = tokens.host();
    const int want_penalised = cpu_penalised.sample(row.data()), want_plain = cpu_plain.sample(row.data());
    ASSERT_EQ(got[0], want_penalised) << "penalised slot, step " << step;
    ASSERT_EQ(got[1], want_plain) << "plain slot, step " << step;
    cpu_penalised.record_generated(want_penalised);
    cpu_plain.record_generated(want_plain);
    penalised_tokens.push_back(got[0]);
    plain_tokens.push_back(got[1]);
  }
  EXPECT_EQ(plain_tokens, std::vector<int32_t>(steps, 10));  // the first of the tied maxima
  // The penalties rotate the choice among the runners-up; suppression keeps 10 out.
  EXPECT_EQ(std::count(penalised_tokens.begin(), penalised_tokens.end(), 10), 0);
  EXPECT_GT(std::count(penalised_tokens.begin(), penalised_tokens.end(), 200), 0);
  EXPECT_GT(std::count(penalised_tokens.begin(), penalised_tokens.end(), 42), 0);
  // A new sequence in slot 3: plain greedy, nothing generated or suppressed any more.
  sampler.start(3, spec(0.0f), prompt.data(), int(prompt.size()), nullptr);
  sampler.sample(logits.get(), 2, slot_of_row.get(), tokens.get(), nullptr);
  EXPECT_EQ(tokens.host()[0], 10);
}

// A slot's generator restarts with its sequence: the same seed gives the same tokens again,
// another seed other tokens.
TEST_F(CudaKernels, DeviceSamplerStartResetsTheGenerator) {
  const int vocab = 300, draws = 64;
  const std::vector<float> row = contested_logits(vocab);
  cu::DeviceSampler sampler(/*slots=*/2, vocab, nullptr);
  Device<float> logits(row);
  Device<int32_t> slot(std::vector<int32_t>{1}), token(1);
  const int32_t bos = 1;
  auto run = [&](int64_t seed) {
    sampler.start(1, spec(1.5f, 0, 1.0f, seed), &bos, 1, nullptr);
    std::vector<int32_t> out;
    for (int i = 0; i < draws; ++i) {
      sampler.sample(logits.get(), 1, slot.get(), token.get(), nullptr);
      out.push_back(token.host()[0]);
    }
    return out;
  };
  const std::vector<int32_t> a = run(5), b = run(5), c = run(6);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST_F(CudaKernels, DeviceSamplerRejectsBadArguments) {
  cu::DeviceSampler sampler(/*slots=*/2, /*vocab=*/100, nullptr);
  const int32_t ok = 1, outside = 100;
  auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const gptfast::Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(message([&] { sampler.start(2, spec(0.0f), &ok, 1, nullptr); }),
            "device sampling: slot 2 is outside [0, 2)");
  EXPECT_EQ(message([&] { sampler.suppress(-1, &ok, 1, nullptr); }), "device sampling: slot -1 is outside [0, 2)");
  EXPECT_EQ(message([&] { sampler.start(0, spec(0.0f), &outside, 1, nullptr); }),
            "device sampling: prompt token 100 is outside the vocabulary [0, 100)");
  EXPECT_NE(message([&] { sampler.start(0, spec(-1.0f), &ok, 1, nullptr); }).find("temperature"), std::string::npos);
}

// A speculative round with the engine's per-slot state, as DeviceDecode::speculate runs it: the
// draft's distributions q and the target's p from logits (distribution()), proposals drawn from q
// (draw()), accept(). Greedy, so deterministic: proposals are the draft rows' maxima, the target
// keeps the agreeing prefix and emits its own choice at the first disagreement, as the CPU rule
// does on the same rows; the emitted ids (not the rejected proposal) join the slot's history,
// which a presence penalty then shows.
TEST_F(CudaKernels, DeviceSamplerSpeculativeRoundIsTheCpuRuleWhenGreedy) {
  const int vocab = 300, k = 3, slot = 1;
  const std::vector<int32_t> draft_max = {10, 42, 7}, target_max = {10, 42, 150, 99};
  auto rows_with_maxima = [&](const std::vector<int32_t>& maxima) {
    std::vector<float> out;
    for (int32_t m : maxima) {
      std::vector<float> row = contested_logits(vocab);
      row[m] = 5.0f;
      out.insert(out.end(), row.begin(), row.end());
    }
    return out;
  };
  const std::vector<float> draft_logits = rows_with_maxima(draft_max), target_logits = rows_with_maxima(target_max);
  cu::DeviceSampler sampler(/*slots=*/3, vocab, nullptr);
  SamplingSpec greedy = spec(0.0f);
  greedy.presence_penalty = 2.0f;  // nothing generated yet: no effect on this round
  const int32_t bos = 1;
  sampler.start(slot, greedy, &bos, 1, nullptr);
  Device<float> d_draft(draft_logits), d_target(target_logits), q(size_t(k) * vocab), p(size_t(k + 1) * vocab);
  Device<int32_t> slot_rows(std::vector<int32_t>(k + 1, slot)), proposals(k), out(k + 1), n_out(1), accepted(1);
  sampler.distribution(d_draft.get(), k, slot_rows.get(), q.get(), nullptr);
  for (int j = 0; j < k; ++j) sampler.draw(q.get() + j * vocab, 1, slot_rows.get(), proposals.get() + j, nullptr);
  sampler.distribution(d_target.get(), k + 1, slot_rows.get(), p.get(), nullptr);
  sampler.accept(p.get(), q.get(), proposals.get(), 1, k, slot_rows.get(), out.get(), n_out.get(), accepted.get(),
                 nullptr);
  EXPECT_EQ(proposals.host(), draft_max);
  ASSERT_EQ(n_out.host()[0], 3);
  EXPECT_EQ(accepted.host()[0], 2);
  const std::vector<int32_t> emitted = out.host();
  EXPECT_EQ(std::vector<int32_t>(emitted.begin(), emitted.begin() + 3), (std::vector<int32_t>{10, 42, 150}));
  // The CPU rule on the same distributions.
  gptfast::Random random;
  random.seed(3);
  std::vector<float> residual(vocab);
  std::vector<int32_t> cpu(k + 1);
  int cpu_kept = -1;
  const std::vector<float> hq = q.host(), hp = p.host();
  ASSERT_EQ(gptfast::accept_or_resample(hp.data(), hq.data(), draft_max.data(), k, vocab, random, residual.data(),
                                        cpu.data(), &cpu_kept),
            3);
  EXPECT_EQ(std::vector<int32_t>(cpu.begin(), cpu.begin() + 3), std::vector<int32_t>(emitted.begin(), emitted.begin() + 3));
  // History: 10 was emitted, so the presence penalty moves the choice to its tie 200; 7 (proposed,
  // never emitted) keeps its logit below 200's.
  Device<float> tied(contested_logits(vocab));
  Device<int32_t> token(1);
  sampler.sample(tied.get(), 1, slot_rows.get(), token.get(), nullptr);
  EXPECT_EQ(token.host()[0], 200);
}

// The same round at temperature 1 over many slots: the first emitted id follows the target's
// softmax (its logits are the log of kTarget's rows), not the draft's.
TEST_F(CudaKernels, DeviceSamplerSpeculativeRoundEmitsTheTargetDistribution) {
  const int slots = 500, rounds = std::max(1, kDraws / slots);
  auto logs = [](const std::vector<std::vector<float>>& rows) {
    std::vector<float> out;
    for (const auto& r : rows) {
      for (float x : r) out.push_back(std::log(x));  // log 0 = -inf: never drawn
    }
    return out;
  };
  cu::DeviceSampler sampler(slots, kVocab, nullptr);
  const int32_t bos = 1;
  std::vector<int32_t> identity(slots), of_draft_row, of_target_row;
  for (int s = 0; s < slots; ++s) {
    sampler.start(s, spec(1.0f, 0, 1.0f, 100 + s), &bos, 1, nullptr);
    identity[s] = s;
    for (int j = 0; j < kK; ++j) of_draft_row.push_back(s);
    for (int j = 0; j <= kK; ++j) of_target_row.push_back(s);
  }
  Device<int32_t> d_identity(identity), d_of_draft(of_draft_row), d_of_target(of_target_row);
  Device<float> draft_logits(repeat(logs(kDraft), slots)), target_logits(repeat(logs(kTarget), slots));
  Device<float> q(size_t(slots) * kK * kVocab), p(size_t(slots) * (kK + 1) * kVocab);
  sampler.distribution(draft_logits.get(), slots * kK, d_of_draft.get(), q.get(), nullptr);
  sampler.distribution(target_logits.get(), slots * (kK + 1), d_of_target.get(), p.get(), nullptr);
  // Proposal j of every slot is drawn from its own copy of q_j ([slots, vocab] rows).
  std::vector<std::unique_ptr<Device<float>>> q_j;
  for (int j = 0; j < kK; ++j) {
    std::vector<std::vector<float>> one = {kDraft[j]};
    Device<float> logits(repeat(logs(one), slots));
    q_j.push_back(std::make_unique<Device<float>>(size_t(slots) * kVocab));
    sampler.distribution(logits.get(), slots, d_identity.get(), q_j[j]->get(), nullptr);
  }
  std::vector<long> first(kVocab, 0);
  Device<int32_t> drawn(slots), out(size_t(slots) * (kK + 1)), n_out(slots), accepted(slots);
  for (int r = 0; r < rounds; ++r) {
    std::vector<int32_t> draft(size_t(slots) * kK);
    for (int j = 0; j < kK; ++j) {
      sampler.draw(q_j[j]->get(), slots, d_identity.get(), drawn.get(), nullptr);
      const std::vector<int32_t> ids = drawn.host();
      for (int s = 0; s < slots; ++s) draft[size_t(s) * kK + j] = ids[s];
    }
    Device<int32_t> d_draft(draft);
    sampler.accept(p.get(), q.get(), d_draft.get(), slots, kK, d_identity.get(), out.get(), n_out.get(),
                   accepted.get(), nullptr);
    const std::vector<int32_t> o = out.host();
    for (int s = 0; s < slots; ++s) {
      const int32_t t = o[size_t(s) * (kK + 1)];
      ASSERT_TRUE(t >= 0 && t < kVocab) << t;
      first[t]++;
    }
  }
  const auto right = chi_square(first, std::vector<double>(kTarget[0].begin(), kTarget[0].end()));
  EXPECT_TRUE(right.passes()) << "chi2=" << right.statistic << " impossible=" << right.impossible_seen;
  EXPECT_FALSE(chi_square(first, std::vector<double>(kDraft[0].begin(), kDraft[0].end())).passes());
}

// ---- host-side: runs without a GPU ---------------------------------------------------------------

TEST(HostPhilox, MatchesRandom123KnownAnswers) {
  struct Kat {
    cu::Philox4 ctr;
    uint32_t k0, k1;
    cu::Philox4 want;
  };
  const Kat kats[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}}},
      {{{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
       {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}}},
      {{{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
       {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}}},
  };
  for (const Kat& k : kats) {
    const cu::Philox4 got = cu::philox4x32_10(k.ctr, k.k0, k.k1);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(got.v[i], k.want.v[i]) << "word " << i;
  }
}

TEST(HostPhilox, UniformsAreInTheUnitIntervalAndDifferPerCounterAndIndex) {
  EXPECT_EQ(cu::bits_to_uniform(0), 0.0);
  EXPECT_LT(cu::bits_to_uniform(~uint64_t(0)), 1.0);
  EXPECT_NE(cu::philox_bits(1, 0, 0), cu::philox_bits(1, 1, 0));
  EXPECT_NE(cu::philox_bits(1, 0, 0), cu::philox_bits(1, 0, 1));
  EXPECT_NE(cu::philox_bits(1, 0, 0), cu::philox_bits(2, 0, 0));
  EXPECT_NE(cu::philox_bits(uint64_t(1) << 32, 0, 0), cu::philox_bits(0, 0, 0));  // high seed bits count
}

// The message of the Error f throws ("" if it throws none).
template <class F>
std::string error_of(const F& f) {
  try {
    f();
  } catch (const gptfast::Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_ERROR(call, text) EXPECT_NE(error_of([&] { call; }).find(text), std::string::npos) << error_of([&] { call; })

TEST(HostArguments, GemvRejectsBadArgumentsNamingTheKernel) {
  // Checked on the host before anything reaches CUDA, so these run without a GPU.
  auto* w = reinterpret_cast<int8_t*>(uintptr_t(256));  // never dereferenced: the checks fail first
  auto* u8 = reinterpret_cast<uint8_t*>(uintptr_t(256));
  auto* u16 = reinterpret_cast<uint16_t*>(uintptr_t(256));
  auto* f = reinterpret_cast<float*>(uintptr_t(256));
  const auto f32 = cu::ActDtype::f32;
  EXPECT_ERROR(cu::gemv_int8(w, f, 4, 16, f, f, 0, f32, nullptr), "gemv_int8: batch must be in [1, 8], got 0");
  EXPECT_ERROR(cu::gemv_int8(w, f, 4, 16, f, f, 9, f32, nullptr), "gemv_int8: batch must be in [1, 8], got 9");
  EXPECT_ERROR(cu::gemv_int8(w, nullptr, 4, 16, f, f, 1, f32, nullptr), "gemv_int8: scales is null");
  EXPECT_ERROR(cu::gemv_int8(nullptr, f, 4, 16, f, f, 1, f32, nullptr), "gemv_int8: weight, x and y must not be null");
  EXPECT_ERROR(cu::gemv_int8(w, f, 0, 16, f, f, 1, f32, nullptr), "gemv_int8: shape must be positive, got [0, 16]");
  EXPECT_ERROR(cu::gemv_int8(w, f, 4, 16, f + 0, reinterpret_cast<float*>(uintptr_t(258)), 1, f32, nullptr),
               "gemv_int8: x and y must be aligned");
  EXPECT_ERROR(cu::gemv_int4(u8, u16, 4, 64, 64, 48, f, f, 1, f32, nullptr), "gemv_int4: group must be 32, 64, 128 or 256");
  EXPECT_ERROR(cu::gemv_int4(u8, u16, 4, 100, 64, 32, f, f, 1, f32, nullptr), "gemv_int4: padded_in must be >= in");
  EXPECT_ERROR(cu::gemv_int4(u8, u16, 4, 100, 1000, 32, f, f, 1, f32, nullptr), "a multiple of the group");
  EXPECT_ERROR(cu::gemv_int4(u8, nullptr, 4, 64, 64, 32, f, f, 1, f32, nullptr), "gemv_int4: scales_zeros is null");
  EXPECT_ERROR(cu::gemv_bf16(u16, 4, -1, f, f, 1, f32, nullptr), "gemv_bf16: shape must be positive");
}

TEST(HostArguments, SamplingRejectsBadArgumentsNamingTheKernel) {
  auto* f = reinterpret_cast<float*>(uintptr_t(256));
  auto* i32 = reinterpret_cast<int32_t*>(uintptr_t(256));
  auto* rng = reinterpret_cast<cu::RngState*>(uintptr_t(256));
  cu::SamplingBatch b;
  b.logits = f;
  b.rows = 1;
  b.vocab = 0;
  b.params = reinterpret_cast<const cu::SamplingParams*>(uintptr_t(256));
  EXPECT_ERROR(cu::sample(b, rng, i32, nullptr), "sample: vocab must be in [1, 2^23]");
  b.vocab = 8;
  EXPECT_ERROR(cu::sample(b, nullptr, i32, nullptr), "sample: rng is null");
  EXPECT_ERROR(cu::sampling_distribution(b, nullptr, nullptr), "sampling_distribution: probs is null");
  b.params = nullptr;
  EXPECT_ERROR(cu::sample(b, rng, i32, nullptr), "sample: params is null");
  EXPECT_ERROR(cu::sample_probs(f, -1, 8, nullptr, rng, i32, nullptr), "sample_probs: rows must be >= 0");
  EXPECT_ERROR(cu::record_generated(i32, nullptr, 0, 1, nullptr, 8, nullptr, i32, nullptr),
               "record_generated: stride must be >= 1");
  EXPECT_ERROR(cu::accept_reject(f, f, i32, 1, -1, 8, nullptr, rng, i32, i32, i32, nullptr), "accept_reject: k must be >= 0");
  EXPECT_ERROR(cu::accept_reject(f, nullptr, i32, 1, 2, 8, nullptr, rng, i32, i32, i32, nullptr),
               "accept_reject: q and draft must not be null when k > 0");
  // Zero rows is a valid empty launch: nothing runs, nothing is thrown.
  b.params = reinterpret_cast<const cu::SamplingParams*>(uintptr_t(256));
  b.rows = 0;
  EXPECT_EQ(error_of([&] { cu::sample(b, rng, i32, nullptr); }), "");
}

TEST(HostArguments, LaunchWithoutADeviceThrowsTheCudaError) {
  // Without a GPU the launch itself fails: the caller gets an Error naming the kernel and CUDA's
  // reason, not an abort. (With a GPU this would launch on bogus pointers, so it only runs here.)
  if (no_device_reason().empty()) GTEST_SKIP() << "a CUDA device is present; this checks the no-device path";
  auto* w = reinterpret_cast<int8_t*>(uintptr_t(256));
  auto* f = reinterpret_cast<float*>(uintptr_t(256));
  const std::string message = error_of([&] { cu::gemv_int8(w, f, 4, 16, f, f, 1, cu::ActDtype::f32, nullptr); });
  std::printf("gemv_int8 without a device: %s\n", message.c_str());
  EXPECT_NE(message.find("gemv_int8: CUDA launch failed: "), std::string::npos) << message;
}

}  // namespace
