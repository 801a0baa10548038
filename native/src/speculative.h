// Speculative decoding (Leviathan et al. 2023; Chen et al. 2023): one round drives the draft
// session k steps, verifies with one target pass and keeps both caches aligned.
#pragma once

#include <cstdint>
#include <vector>

#include "session.h"
#include "speculative_sampling.h"

namespace gptfast {

class SpeculativeState {
 public:
  SpeculativeState(TransformerSession& target, TransformerSession& draft, int k);

  int prefill(const int32_t* tokens, int n);
  int step(int32_t last_token, int32_t* out, int capacity);

  int64_t rounds = 0, proposed = 0, accepted = 0;

 private:
  TransformerSession& target_;
  TransformerSession& draft_;
  const int k_;
  std::vector<float> p_, q_, residual_;     // sized once: (k+1)*vocab, k*vocab, vocab
  std::vector<int32_t> proposal_;           // [last, d_1 .. d_k]
};

}  // namespace gptfast
