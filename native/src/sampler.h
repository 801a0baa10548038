// Next-token sampling on fp32 logits, in native code (see SamplingSpec for the order of steps).
// Top-k is fused: one nth_element pass finds the k-th largest logit (no full sort); softmax and
// the draw run over the kept candidates only, and top-p sorts only those. Ties with the k-th
// logit are all kept, as GPT-Fast's `logits < pivot -> -inf` does. Buffers are sized once per
// configure(), so sampling allocates nothing per token.
#pragma once

#include <cstdint>
#include <vector>

#include "gptfast/engine_api.h"
#include "random.h"

namespace gptfast {

// What sampling a row with no finite, unsuppressed logit throws (here and on the device).
inline constexpr const char* kNothingToSample = "every token is suppressed or logits are not finite";

// Draws an index from n non-negative weights (need not sum to 1).
int draw_dense(const float* weights, int n, Random& random);

class Sampler {
 public:
  // Starts a generation's sampling state: parameters, seed, empty history, nothing suppressed.
  // Throws Error for out-of-range parameters.
  void configure(const SamplingSpec& spec, int vocab_size);
  const SamplingSpec& spec() const { return spec_; }
  bool uses_history() const;

  void set_suppressed(const int32_t* ids, int n);
  // Penalty history: the prompt (context) and then each generated token.
  void reset_history(const int32_t* prompt, int n);
  void record_generated(int32_t token);

  // Processes logits and draws a token.
  int sample(const float* logits);
  // The processed distribution as dense probabilities over the vocabulary (one-hot when greedy).
  void distribution(const float* logits, float* probs);
  // Draws from dense probabilities (need not be normalised).
  int draw(const float* probs);
  Random& random() { return random_; }

 private:
  void build_candidates(const float* logits);  // fills kept_ and weights_ (normalised)

  SamplingSpec spec_;
  int vocab_ = 0;
  Random random_;
  std::vector<float> adjusted_;   // logits after penalties/suppression
  std::vector<float> scratch_;    // nth_element workspace
  std::vector<int> kept_;         // candidate ids
  std::vector<double> weights_;   // their probabilities
  std::vector<int> order_;        // top-p ordering
  std::vector<int> nucleus_ids_;  // top-p result, swapped into kept_/weights_
  std::vector<double> nucleus_weights_;
  std::vector<uint8_t> in_context_;
  std::vector<int32_t> generated_count_;
  std::vector<int32_t> suppressed_;  // ids that may not be sampled (a few: stop ids before min_new_tokens)
};

}  // namespace gptfast
