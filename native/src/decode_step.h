// Fused single-token decode for fp32 on CPU. The per-token path through generic ATen ops costs
// ~60 dispatcher calls per layer, which dominates small and mid-size models; here one step is
// plain loops for RMSNorm, RoPE, attention and SwiGLU plus one matrix-vector product (matvec.h) per
// weight matrix, writing into buffers allocated once. No allocation happens per token.
// It reads and writes the same static KV cache as the batched (prefill) path.
#pragma once

#include <ATen/ATen.h>

#include "transformer.h"

namespace gptfast {

class FusedDecodeStep {
 public:
  // True when the model's weights are fp32 on CPU (other dtypes/devices use Transformer::forward).
  static bool supports(const Transformer& model);

  explicit FusedDecodeStep(Transformer& model);

  // Runs `token` at position `pos` (cache must hold positions < pos); returns fp32 logits [vocab],
  // valid until the next call.
  const float* run(int32_t token, int64_t pos);

 private:
  void attention(int64_t layer, int64_t pos);

  Transformer& model_;
  const ModelSpec& spec_;
  at::Tensor x_, xb_, qkv_, attn_out_, proj_, h1_, h3_, logits_, scores_;
};

}  // namespace gptfast
