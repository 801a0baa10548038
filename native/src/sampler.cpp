#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "errors.h"

namespace gptfast {

void Sampler::configure(float temperature, int top_k, uint64_t seed) {
  if (!(temperature >= 0.0f) || std::isinf(temperature)) {
    throw Error("temperature must be a finite number >= 0, got " + std::to_string(temperature));
  }
  if (top_k < 0) throw Error("top_k must be >= 0 (0 = whole vocabulary), got " + std::to_string(top_k));
  temperature_ = temperature;
  top_k_ = top_k;
  rng_.seed(seed);
}

int Sampler::argmax(const float* logits, int vocab_size) const {
  return int(std::max_element(logits, logits + vocab_size) - logits);  // first maximum wins ties
}

double Sampler::uniform() { return double(rng_() >> 11) * 0x1.0p-53; }

int Sampler::sample(const float* logits, int vocab_size) {
  if (temperature_ == 0.0f) return argmax(logits, vocab_size);

  float pivot = -INFINITY;  // keep every logit >= pivot
  if (top_k_ > 0 && top_k_ < vocab_size) {
    scratch_.assign(logits, logits + vocab_size);
    std::nth_element(scratch_.begin(), scratch_.begin() + (top_k_ - 1), scratch_.end(), std::greater<float>());
    pivot = scratch_[top_k_ - 1];
  }
  kept_.clear();
  float max_logit = -INFINITY;
  for (int i = 0; i < vocab_size; ++i) {
    if (logits[i] >= pivot) {
      kept_.push_back(i);
      max_logit = std::max(max_logit, logits[i]);
    }
  }
  if (kept_.empty() || std::isnan(max_logit)) throw Error("logits are not finite: cannot sample");
  weights_.resize(kept_.size());
  double total = 0;
  for (size_t j = 0; j < kept_.size(); ++j) {
    weights_[j] = std::exp((double(logits[kept_[j]]) - max_logit) / temperature_);
    total += weights_[j];
  }
  double u = uniform() * total;
  for (size_t j = 0; j < kept_.size(); ++j) {
    u -= weights_[j];
    if (u < 0) return kept_[j];
  }
  return kept_.back();  // rounding left u at ~0
}

}  // namespace gptfast
