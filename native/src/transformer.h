// The GPT-Fast Llama transformer over ATen: embeddings, n_layer blocks of
// RMSNorm -> fused-QKV grouped-query attention with RoPE -> wo, RMSNorm -> SwiGLU FFN,
// then a final RMSNorm and the output head.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <vector>

#include "gptfast/engine_api.h"
#include "kv_cache.h"
#include "linear_weight.h"
#include "state_dict.h"

namespace gptfast {

class Communicator;

// This rank's part of a model under tensor parallelism (GPT-Fast's tp.py): heads, KV heads and
// the FFN width divided by the group size; dim, vocab and layers unchanged. Throws, naming the
// sizes, when one does not divide. shard_spec(spec, 1) is spec.
ModelSpec shard_spec(const ModelSpec& spec, int tp);

struct LayerWeights {
  at::Tensor attention_norm, ffn_norm;
  LinearWeight wqkv, wo, w1, w2, w3;
};

class Transformer {
 public:
  // Validates every tensor's presence and shape against spec, converts to options' dtype/device.
  // Linear layers (all but embeddings and norms) are quantized as `quant` asks, or kept as the
  // checkpoint quantized them. slots: independent sequences the KV cache holds.
  // comm: this rank's group under tensor parallelism (null: the whole model). A rank keeps only
  // its shards: column-wise (output rows) of wqkv (q, k and v each by heads), w1, w3; row-wise
  // (input columns) of wo and w2; embeddings, norms and output whole. Its KV cache holds its KV
  // heads. The partial sums of wo and w2 are all-reduced, two collectives per layer. Every tensor
  // kept is copied out of `weights` (a rank copies only its shards out of a mapped checkpoint)
  // and owns its memory, so nothing of the checkpoint stays referenced once `weights` is gone.
  Transformer(const ModelSpec& spec, StateDict weights, at::TensorOptions options, const QuantSpec& quant,
              int64_t max_seq_len, int64_t slots, Communicator* comm = nullptr);

  // tokens: [1, T] int64 of the sequence in cache `slot`, placed at positions
  // start_pos .. start_pos+T-1 (the slot must hold its keys/values before start_pos). Returns
  // fp32 logits [1, n_logits, vocab] of the last n_logits positions (undefined for 0: the
  // output head is skipped, as for a prompt chunk that is not the last).
  at::Tensor forward(const at::Tensor& tokens, int64_t start_pos, int64_t n_logits, int64_t slot);

  // One decode token for each of B sequences, every input a device tensor of int64 [B]: token
  // tokens[b] of slot slots[b] at position positions[b] (distinct slots). Returns fp32 logits
  // [B, vocab]. Shapes depend on B alone and nothing is read back to the host, so the call can
  // be captured once in a CUDA graph and replayed per token (cuda/decode_graph.h); attention
  // runs over the whole cache length under a mask, as GPT-Fast's compiled decode does.
  at::Tensor decode(const at::Tensor& tokens, const at::Tensor& slots, const at::Tensor& positions);

  // This rank's sizes (heads, KV heads, FFN width are per rank under TP); full_spec(): the model's.
  const ModelSpec& spec() const { return spec_; }
  const ModelSpec& full_spec() const { return full_spec_; }
  // Sums a wo/w2 output over the ranks (nothing without TP).
  void all_reduce(at::Tensor& partial) const;
  // Weights and cache, read by the fused decode step (decode_step.h).
  const at::Tensor& tok_embeddings() const { return tok_embeddings_; }
  const LayerWeights& layer(int64_t i) const { return layers_[i]; }
  const at::Tensor& norm() const { return norm_; }
  const LinearWeight& output() const { return output_; }
  // How the Linear layers are stored ("" dense, "int8", "int4:G"), and the bytes of weights one
  // decode step streams (every Linear layer once; the embedding row is negligible).
  const std::string& quantization() const { return quantization_; }
  // On a GPU with quantized weights, what runs their decode rows: "own" (the gemv kernels) or
  // "aten" (libtorch's ops), from GPTFAST_CUDA_QUANT_MATMUL at load (cuda/quant_linear.h); else "".
  std::string quant_matmul() const { return quantization_.empty() ? std::string() : quant_matmul_; }
  int64_t weight_bytes() const;
  const at::Tensor& rope() const { return rope_; }
  KVCache& cache() { return cache_; }
  const KVCache& cache() const { return cache_; }
  int64_t max_seq_len() const { return cache_.max_seq_len(); }
  at::TensorOptions options() const { return options_; }

 private:
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) const;
  at::Tensor attention(int64_t layer, const at::Tensor& x, const at::Tensor& rope_rows,
                       const at::Tensor& input_pos, int64_t context_len, int64_t slot);
  // The parts of attention that prefill and decode share: q [B, heads, T, hd] and k, v
  // [B, kv_heads, T, hd] with RoPE applied (rope_rows as apply_rope takes them), and the output
  // projection (with its all-reduce) of y [B, heads, T, hd].
  std::array<at::Tensor, 3> project_qkv(int64_t layer, const at::Tensor& x, const at::Tensor& rope_rows) const;
  at::Tensor project_out(int64_t layer, const at::Tensor& y) const;
  at::Tensor feed_forward(const LayerWeights& w, const at::Tensor& x) const;
  LinearWeight take_linear(StateDict& w, const std::string& name, int64_t out, int64_t in, const QuantSpec& quant,
                           const Shard& shard);

  ModelSpec full_spec_, spec_;
  Communicator* comm_;
  at::TensorOptions options_;
  at::Tensor tok_embeddings_, norm_;
  LinearWeight output_;
  std::string quantization_;
  std::string quant_matmul_;  // "own" | "aten" on a CUDA device, else ""
  std::vector<LayerWeights> layers_;
  at::Tensor rope_;  // [max_seq_len, head_dim/2, 2]
  KVCache cache_;
};

}  // namespace gptfast
