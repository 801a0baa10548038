// Fused step for fp32/bf16/int8/int4 weights on CPU: any mix of tokens from cache slots at their
// positions (one decode token, a speculative verify pass, a short prompt chunk, one token of
// each sequence of a batch; see Model::forward). The path through generic ATen ops costs ~60 dispatcher calls per
// layer, and ATen's small-M GEMM repacks the weights, so here a step is plain loops for
// RMSNorm, RoPE, attention and SwiGLU plus one multi-vector product per weight matrix that
// reads each weight row once (matvec.h), writing into buffers allocated once. No allocation
// happens per token. It reads and writes the same static KV cache as the ATen path.
#pragma once

#include <ATen/ATen.h>

#include <utility>
#include <vector>

#include "thread_team.h"
#include "transformer.h"

namespace gptfast {

class FusedDecodeStep {
 public:
  // True for fp32 or bf16 weights on CPU, quantized or not (other devices use
  // Transformer::forward). bf16 and quantized weights are widened to fp32 as they are read;
  // activations and the KV cache stay fp32.
  static bool supports(const Transformer& model);

  // max_tokens: most tokens per call. threads: the team that runs each step's parallel regions
  // (created here, once; 1 runs everything on the calling thread).
  FusedDecodeStep(Transformer& model, int64_t max_tokens, int threads);

  // Token t goes to cache slot slots[t] at position positions[t] and attends to that slot's
  // positions 0..positions[t] (tokens of one slot must come in position order). Returns fp32
  // logits [n_logits, vocab] of the tokens logit_rows[0..n_logits) (increasing), valid until the
  // next call; the output head runs for those rows only.
  const float* run(const int32_t* tokens, const int32_t* slots, const int64_t* positions, int64_t n,
                   const int32_t* logit_rows, int64_t n_logits);

 private:
  void attention(int64_t layer, const int32_t* slots, const int64_t* positions, int64_t n);
  template <class W>  // the cache's element: float, or uint16_t for bf16
  void attention_over(int64_t layer, const int32_t* slots, const int64_t* positions, int64_t n);
  void all_reduce_rows(int64_t n);  // sums proj_'s first n rows over the TP ranks

  // An fp32 tensor and its storage, taken once: data_ptr() checks type and storage on every call,
  // and a step made ~200 such calls (a few % of a small model's step).
  struct Buffer {
    at::Tensor tensor;
    float* data = nullptr;
    Buffer() = default;
    explicit Buffer(at::Tensor t) : tensor(std::move(t)), data(tensor.data_ptr<float>()) {}
  };

  Transformer& model_;
  const ModelSpec& spec_;
  const int64_t max_tokens_;
  // Per-token rows: [max_tokens, width].
  Buffer x_, xb_, qkv_, attn_out_, proj_, h1_, h3_, logits_;
  std::vector<Buffer> attention_norms_, ffn_norms_;  // fp32 copies (weights may be bf16)
  Buffer final_norm_;
  // Token t's cache rows in the layer being run (slot base pointers, [max_tokens] each).
  std::vector<void*> step_keys_, step_values_;  // each token's slot in the layer's cache
  ThreadTeam team_;
};

}  // namespace gptfast
