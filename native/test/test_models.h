// The small random-weight model shapes the native tests share (weights: format "random").
#pragma once

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

}  // namespace gptfast::test
