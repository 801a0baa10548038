// Fused decode for fp32 on CPU: one token (plain decoding), a few tokens of one sequence at
// consecutive positions (a speculative verify pass), or one token from each of several
// sequences in their own cache slots (batched decoding). The path through generic ATen ops costs ~60 dispatcher calls per
// layer, and ATen's small-M GEMM repacks the weights, so here a step is plain loops for
// RMSNorm, RoPE, attention and SwiGLU plus one multi-vector product per weight matrix that
// reads each weight row once (matvec.h), writing into buffers allocated once. No allocation
// happens per token. It reads and writes the same static KV cache as the batched (prefill) path.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "transformer.h"

namespace gptfast {

class FusedDecodeStep {
 public:
  // True for fp32 or bf16 weights on CPU (other devices use Transformer::forward). bf16 weights
  // are widened to fp32 as they are read; activations and the KV cache stay fp32.
  static bool supports(const Transformer& model);

  // max_tokens: most tokens per call (1 + the largest speculate_k to verify).
  FusedDecodeStep(Transformer& model, int64_t max_tokens);

  // Runs tokens[0..n) of the sequence in cache slot 0 at positions pos..pos+n-1 (the cache must
  // hold positions < pos); returns fp32 logits [n, vocab], valid until the next call.
  const float* run(const int32_t* tokens, int64_t n, int64_t pos);
  // General form: token t goes to cache slot slots[t] at position positions[t] and attends to
  // that slot's positions 0..positions[t] (tokens of one slot must come in position order).
  const float* run(const int32_t* tokens, const int32_t* slots, const int64_t* positions, int64_t n);

 private:
  void attention(int64_t layer, const int32_t* slots, const int64_t* positions, int64_t n);

  Transformer& model_;
  const ModelSpec& spec_;
  const int64_t max_tokens_;
  // Per-token rows: [max_tokens, width].
  at::Tensor x_, xb_, qkv_, attn_out_, proj_, h1_, h3_, logits_, scores_;
  std::vector<at::Tensor> attention_norms_, ffn_norms_;  // fp32 copies (weights may be bf16)
  at::Tensor final_norm_;
  std::vector<int32_t> slot0_;     // run() for one sequence: all slot 0
  std::vector<int64_t> positions_;
};

}  // namespace gptfast
