// The small random-weight model shapes the native tests share (weights: format "random"), and
// how they compare two runs' logits.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "gptfast/engine_api.h"

namespace gptfast::test {

// Grouped-query attention (4 query heads per KV head), two layers: decode and allocation tests.
inline ModelSpec small_llama() {
  ModelSpec s;
  s.dim = 64;
  s.n_layer = 2;
  s.n_head = 8;
  s.n_local_heads = 2;
  s.head_dim = 8;
  s.intermediate_size = 160;
  s.vocab_size = 300;
  s.block_size = 128;
  return s;
}

// Heads, KV heads and FFN width divisible by 2 and 4 ranks: tensor-parallel tests.
inline ModelSpec small_llama_tp() {
  ModelSpec s = small_llama();
  s.n_local_heads = 4;
  s.intermediate_size = 128;
  s.block_size = 160;
  return s;
}

// max |a - b| / max |a|: relative to the logits' scale, so near-zero logits do not dominate.
inline double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, double(std::abs(a[i] - b[i])));
    scale = std::max(scale, double(std::abs(a[i])));
  }
  return diff / scale;
}

}  // namespace gptfast::test
