// Prompt prefix reuse (Session::start with reuse_cache): a sequence started in a slot whose cache
// holds the start of its prompt runs only the rest, and continues exactly as the same prompt does
// in a fresh session; what a slot offers (cached_prefix) is the common prefix, never more, and
// nothing after its cache was overwritten.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gptfast/engine_api.h"
#include "test_models.h"

namespace {

using gptfast::test::small_llama;

struct Weights {
  std::string dtype, quantize;
};

std::unique_ptr<gptfast::Session> open(const Weights& run, int max_k = 0) {
  auto s = std::make_unique<gptfast::Session>("5", "random", small_llama(), run.dtype, "cpu", 1, 0, 2, 0, run.quantize, 1);
  if (max_k > 0) s->load_draft("5", "random", small_llama(), max_k, run.quantize);
  return s;
}

gptfast::SamplingSpec sampling(float temperature) {
  gptfast::SamplingSpec s;
  s.temperature = temperature;
  s.top_k = 50;
  s.seed = 11;
  return s;
}

// Steps a started slot until it has produced n tokens (a speculative round may overshoot), then
// releases it.
std::vector<int32_t> finish(gptfast::Session& session, int slot, int n) {
  std::vector<int32_t> got, out(session.max_tokens_per_step());
  int32_t count = 0;
  while (int(got.size()) < n) {
    session.step(&slot, 1, out.data(), session.max_tokens_per_step(), &count);
    got.insert(got.end(), out.begin(), out.begin() + count);
  }
  session.release(slot);
  got.resize(n);
  return got;
}

std::vector<int32_t> generate(gptfast::Session& session, int slot, const std::vector<int32_t>& prompt, int n,
                              const gptfast::SamplingSpec& spec, int k = 0, bool reuse = false) {
  session.start(slot, spec, k, prompt.data(), int(prompt.size()), reuse);
  return finish(session, slot, n);
}

const std::vector<int32_t> kPrompt = {1, 17, 42, 99, 5, 250, 31, 8, 77, 140, 3, 64};

// The first turn's prompt and 10 of its tokens, then three tokens of a "next message" whose
// first differs from the 11th generated one: 22 tokens in common with what the cache holds.
std::vector<int32_t> next_turn(const std::vector<int32_t>& first) {
  std::vector<int32_t> q = kPrompt;
  q.insert(q.end(), first.begin(), first.begin() + 10);
  q.push_back(first[10] == 7 ? 6 : 7);
  q.push_back(8);
  q.push_back(9);
  return q;
}

void expect_reuse_matches_fresh(const Weights& run, float temperature, int k) {
  SCOPED_TRACE(run.dtype + " " + run.quantize + " temperature " + std::to_string(temperature) + " k " +
               std::to_string(k));
  auto session = open(run, k);
  const std::vector<int32_t> first = generate(*session, 1, kPrompt, 16, sampling(temperature), k);
  const std::vector<int32_t> q = next_turn(first);
  EXPECT_EQ(session->cached_prefix(1, q.data(), int(q.size())), 22);
  EXPECT_EQ(session->cached_prefix(0, q.data(), int(q.size())), 0) << "slot 0 never ran";
  session->start(1, sampling(temperature), k, q.data(), int(q.size()), true);
  EXPECT_EQ(session->position(1), 22);
  const std::vector<int32_t> reused = finish(*session, 1, 16);

  auto fresh = open(run, k);
  EXPECT_EQ(reused, generate(*fresh, 1, q, 16, sampling(temperature), k));
  // The same prompt again: all but its last two tokens are kept, and the result is the same.
  EXPECT_EQ(session->cached_prefix(1, q.data(), int(q.size())), int(q.size()) - 2);
  EXPECT_EQ(generate(*session, 1, q, 16, sampling(temperature), k, true), reused);
}

TEST(PrefixReuse, ContinuesAsAFreshSessionDoes) {
  for (const Weights& run : {Weights{"fp32", ""}, Weights{"bf16", ""}, Weights{"fp32", "int8"}, Weights{"fp32", "int4:32"}}) {
    expect_reuse_matches_fresh(run, 0.0f, 0);
    expect_reuse_matches_fresh(run, 0.9f, 0);
  }
}

// Sampled speculative decoding draws from the draft's distributions, so a draft cache that held
// the wrong keys would change the tokens.
TEST(PrefixReuse, SpeculativeSequencesReuseTheDraftCacheToo) {
  expect_reuse_matches_fresh(Weights{"fp32", ""}, 0.9f, 3);
  expect_reuse_matches_fresh(Weights{"fp32", ""}, 0.0f, 3);
}

TEST(PrefixReuse, OnlyWhatTheCacheStillHolds) {
  auto session = open(Weights{"fp32", ""});
  const gptfast::SamplingSpec greedy = sampling(0.0f);
  const std::vector<int32_t> first = generate(*session, 0, kPrompt, 8, greedy);
  const int n = int(kPrompt.size());
  EXPECT_EQ(session->cached_prefix(0, kPrompt.data(), n), n - 2);
  std::vector<int32_t> other = kPrompt;
  other[0] = 2;
  EXPECT_EQ(session->cached_prefix(0, other.data(), n), 0) << "differs at the first token";
  other = kPrompt;
  other[5] = 6;
  EXPECT_EQ(session->cached_prefix(0, other.data(), n), 5);
  EXPECT_EQ(session->cached_prefix(0, kPrompt.data(), 1), 0) << "a one-token prompt always runs";

  // Without reuse the slot starts from nothing, and then holds only the new sequence.
  session->start(0, greedy, 0, other.data(), n);
  EXPECT_EQ(session->position(0), 0);
  EXPECT_EQ(session->cached_prefix(0, other.data(), n), 0) << "a busy slot offers nothing";
  finish(*session, 0, 4);
  EXPECT_EQ(session->cached_prefix(0, kPrompt.data(), n), 5);

  // prompt_logits runs its tokens through a free slot's cache: nothing of the last sequence is left.
  std::vector<float> logits(size_t(n) * small_llama().vocab_size);
  session->prompt_logits(kPrompt.data(), n, logits.data());
  EXPECT_EQ(session->cached_prefix(0, kPrompt.data(), n), 0);
  EXPECT_EQ(session->cached_prefix(0, other.data(), n), 0);
}

}  // namespace
