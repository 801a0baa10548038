// One loaded model with its cache position and sampler: the state behind TransformerEngine.
// forward() runs any number of tokens through the batched ATen graph; step() runs one token
// through the fused decode step when the model supports it. Both advance the position.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>

#include "decode_step.h"
#include "sampler.h"
#include "transformer.h"

namespace gptfast {

struct RuntimeSpec {
  std::string dtype, device;
  int threads = 0, max_seq_len = 0;
};

// Shared by the sessions: checkpoint loading, dtype/device, cache length, fused-path choice.
StateDict load_checkpoint(const std::string& path, const std::string& format, const ModelSpec& spec);
at::TensorOptions tensor_options(const RuntimeSpec& runtime);
int64_t cache_length(const ModelSpec& spec, const RuntimeSpec& runtime);
bool use_fused_decode(const Transformer& model);
// Most tokens per fused call for a model of this size (see kFusedBatchMaxWeights).
int64_t fused_batch_limit(const ModelSpec& spec);

class TransformerSession {
 public:
  // Most tokens one fused call handles (a verify pass for speculate_k <= 15, short prompts).
  static constexpr int64_t kMaxFusedTokens = 16;
  // Above this many weights, several tokens go through ATen's GEMM instead: on a 126M-weight
  // model (2 vCPU EPYC, one thread) one fused token took 15.5 ms and five 52 ms, while ATen took
  // 29 ms for one and 44 ms for five. Below it, ATen's per-op overhead dominates.
  static constexpr int64_t kFusedBatchMaxWeights = 16'000'000;

  TransformerSession(const std::string& path, const std::string& format, const ModelSpec& spec,
                     const RuntimeSpec& runtime);

  void check_prompt(const int32_t* tokens, int n) const;
  void check_token(int32_t token) const;

  // Runs tokens at positions position()..position()+n-1 and advances; returns fp32 CPU logits
  // [n, vocab] (all_positions) or [1, vocab]. A few tokens (a speculative verify) go through
  // the fused step, longer prompts through the batched ATen graph. The result may view an
  // internal buffer: use it before the next call.
  at::Tensor forward(const int32_t* tokens, int n, bool all_positions);
  // Runs one token at position() and advances; returns its logits, valid until the next call.
  const float* step(int32_t token);
  // Moves the position back (cache entries past it become stale and are overwritten later).
  void rewind(int64_t position);

  int64_t position() const { return position_; }
  int64_t max_seq_len() const { return model_.max_seq_len(); }
  int vocab() const { return model_.spec().vocab_size; }
  const ModelSpec& spec() const { return model_.spec(); }
  const RuntimeSpec& runtime() const { return runtime_; }
  bool fused() const { return fused_.has_value(); }
  Sampler& sampler() { return sampler_; }

 private:
  RuntimeSpec runtime_;
  Transformer model_;
  std::optional<FusedDecodeStep> fused_;  // fp32 CPU fast path for one-token steps
  int64_t fused_batch_limit_ = 1;         // most tokens per fused forward() call
  Sampler sampler_;
  at::Tensor last_logits_;  // keeps step()'s result alive on the ATen path
  int64_t position_ = 0;
};

}  // namespace gptfast
