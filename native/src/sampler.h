// Next-token sampling on fp32 logits, in native code: greedy at temperature 0, otherwise
// temperature + top-k. Top-k is fused: one nth_element pass finds the k-th largest logit (no
// full sort), softmax and the draw run over the kept tokens only. Ties with the k-th logit are
// all kept, as GPT-Fast's `logits < pivot -> -inf` does. Each sampler owns a seeded generator,
// so a seed reproduces a run exactly.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace gptfast {

class Sampler {
 public:
  // Throws Error for a negative/NaN temperature or a negative top_k.
  void configure(float temperature, int top_k, uint64_t seed);
  int sample(const float* logits, int vocab_size);

 private:
  int argmax(const float* logits, int vocab_size) const;
  double uniform();  // [0, 1), 53 random bits: identical on every platform

  float temperature_ = 0.0f;
  int top_k_ = 0;
  std::mt19937_64 rng_{0};
  std::vector<float> scratch_;  // reused across calls: no allocation per token
  std::vector<int> kept_;
  std::vector<double> weights_;
};

}  // namespace gptfast
