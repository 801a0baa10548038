#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>

#include "errors.h"

namespace gptfast {

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw Error(message);
}

}  // namespace

void check_sampling(const SamplingSpec& s) {
  require(std::isfinite(s.temperature) && s.temperature >= 0,
          "temperature must be a finite number >= 0, got " + std::to_string(s.temperature));
  require(s.top_k >= 0, "top_k must be >= 0 (0 = whole vocabulary), got " + std::to_string(s.top_k));
  require(s.top_p > 0 && s.top_p <= 1, "top_p must be in (0, 1], got " + std::to_string(s.top_p));
  require(std::isfinite(s.repetition_penalty) && s.repetition_penalty > 0,
          "repetition_penalty must be > 0, got " + std::to_string(s.repetition_penalty));
  require(std::isfinite(s.presence_penalty) && std::abs(s.presence_penalty) <= 2,
          "presence_penalty must be in [-2, 2], got " + std::to_string(s.presence_penalty));
  require(std::isfinite(s.frequency_penalty) && std::abs(s.frequency_penalty) <= 2,
          "frequency_penalty must be in [-2, 2], got " + std::to_string(s.frequency_penalty));
}

void Sampler::configure(const SamplingSpec& s, int vocab_size) {
  check_sampling(s);
  require(vocab_size > 0, "vocabulary is empty");
  spec_ = s;
  vocab_ = vocab_size;
  random_.seed(uint64_t(s.seed));
  adjusted_.assign(vocab_size, 0.0f);
  scratch_.assign(vocab_size, 0.0f);
  kept_.reserve(vocab_size);
  weights_.reserve(vocab_size);
  order_.reserve(vocab_size);
  nucleus_ids_.reserve(vocab_size);
  nucleus_weights_.reserve(vocab_size);
  in_context_.assign(vocab_size, 0);
  generated_count_.assign(vocab_size, 0);
  suppressed_.clear();  // a new generation starts with nothing suppressed
  suppressed_.reserve(vocab_size);
}

bool Sampler::uses_history() const {
  return spec_.repetition_penalty != 1.0f || spec_.presence_penalty != 0.0f || spec_.frequency_penalty != 0.0f;
}

void Sampler::set_suppressed(const int32_t* ids, int n) {
  suppressed_.clear();
  for (int i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_) continue;  // ids outside the vocabulary can never be sampled anyway
    suppressed_.push_back(ids[i]);
  }
}

void Sampler::reset_history(const int32_t* prompt, int n) {
  std::fill(in_context_.begin(), in_context_.end(), 0);
  std::fill(generated_count_.begin(), generated_count_.end(), 0);
  for (int i = 0; i < n; ++i) in_context_[prompt[i]] = 1;
}

void Sampler::record_generated(int32_t token) {
  in_context_[token] = 1;
  generated_count_[token] += 1;
}

void Sampler::build_candidates(const float* raw) {
  const float* logits = raw;
  if (uses_history()) {
    for (int i = 0; i < vocab_; ++i) {
      float l = raw[i];
      if (in_context_[i] && spec_.repetition_penalty != 1.0f) {
        l = l > 0 ? l / spec_.repetition_penalty : l * spec_.repetition_penalty;
      }
      if (generated_count_[i] > 0) {
        l -= spec_.presence_penalty + spec_.frequency_penalty * float(generated_count_[i]);
      }
      adjusted_[i] = l;
    }
    logits = adjusted_.data();
  } else if (!suppressed_.empty()) {
    std::copy_n(raw, vocab_, adjusted_.begin());
    logits = adjusted_.data();
  }
  for (int32_t id : suppressed_) adjusted_[id] = -INFINITY;  // the few suppressed ids, after the penalties
  kept_.clear();
  weights_.clear();
  if (spec_.temperature == 0.0f) {  // greedy: the first maximum wins ties
    const int best = int(std::max_element(logits, logits + vocab_) - logits);
    if (!std::isfinite(logits[best])) throw Error(kNothingToSample);
    kept_.push_back(best);
    weights_.push_back(1.0);
    return;
  }
  float pivot = -INFINITY;  // keep every logit >= pivot
  if (spec_.top_k > 0 && spec_.top_k < vocab_) {
    std::copy(logits, logits + vocab_, scratch_.begin());
    std::nth_element(scratch_.begin(), scratch_.begin() + (spec_.top_k - 1), scratch_.end(), std::greater<float>());
    pivot = scratch_[spec_.top_k - 1];
  }
  float max_logit = -INFINITY;
  for (int i = 0; i < vocab_; ++i) {
    if (logits[i] >= pivot && logits[i] > -INFINITY) {
      kept_.push_back(i);
      max_logit = std::max(max_logit, logits[i]);
    }
  }
  if (kept_.empty() || !std::isfinite(max_logit)) throw Error(kNothingToSample);
  double total = 0;
  for (int id : kept_) {
    weights_.push_back(std::exp((double(logits[id]) - max_logit) / spec_.temperature));
    total += weights_.back();
  }
  if (spec_.top_p < 1.0f) {  // nucleus: most probable candidates until their mass reaches top_p
    order_.resize(kept_.size());
    std::iota(order_.begin(), order_.end(), 0);
    std::sort(order_.begin(), order_.end(), [&](int a, int b) { return weights_[a] > weights_[b]; });
    double mass = 0;
    size_t keep = 0;
    while (keep < order_.size() && mass < spec_.top_p * total) mass += weights_[order_[keep++]];
    nucleus_ids_.clear();
    nucleus_weights_.clear();
    for (size_t j = 0; j < keep; ++j) {
      nucleus_ids_.push_back(kept_[order_[j]]);
      nucleus_weights_.push_back(weights_[order_[j]]);
    }
    kept_.swap(nucleus_ids_);
    weights_.swap(nucleus_weights_);
    total = mass;
  }
  for (double& w : weights_) w /= total;
}

int Sampler::sample(const float* logits) {
  build_candidates(logits);
  double u = random_.uniform();
  for (size_t j = 0; j < kept_.size(); ++j) {
    u -= weights_[j];
    if (u < 0) return kept_[j];
  }
  return kept_.back();  // rounding left u at ~0
}

void Sampler::distribution(const float* logits, float* probs) {
  build_candidates(logits);
  std::fill(probs, probs + vocab_, 0.0f);
  for (size_t j = 0; j < kept_.size(); ++j) probs[kept_[j]] = float(weights_[j]);
}

int Sampler::draw(const float* probs) { return draw_dense(probs, vocab_, random_); }

int draw_dense(const float* weights, int n, Random& random) {
  double total = 0;
  int last_positive = -1;
  for (int i = 0; i < n; ++i) {
    total += weights[i];
    if (weights[i] > 0) last_positive = i;
  }
  if (!(total > 0)) throw Error("cannot sample from an all-zero distribution");
  double u = random.uniform() * total;
  for (int i = 0; i < n; ++i) {
    u -= weights[i];
    if (u < 0) return i;
  }
  return last_positive;  // rounding left u at ~0
}

}  // namespace gptfast
