// The engine as Java sees it: a torch-free header that JavaCPP binds. Everything libtorch lives
// behind the pimpl, so the JNI glue compiles in seconds and never needs libtorch headers.
// Every method throws std::runtime_error with a message naming the problem (JavaCPP turns it
// into a java.lang.RuntimeException); nothing here aborts the process.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace gptfast {

// Architecture of a GPT-Fast transformer, resolved by the Java side (config file, name table or
// checkpoint header) and checked against the checkpoint's tensor shapes at load time.
struct ModelSpec {
  int dim = 0;
  int n_layer = 0;
  int n_head = 0;
  int n_local_heads = 0;  // KV heads (grouped-query attention)
  int head_dim = 0;
  int intermediate_size = 0;
  int vocab_size = 0;
  int block_size = 0;  // longest context the model supports
  float rope_base = 10000.0f;
  float norm_eps = 1e-5f;
  // Llama 3.1 RoPE scaling; factor 0 means none.
  float rope_scaling_factor = 0.0f;
  float rope_low_freq_factor = 1.0f;
  float rope_high_freq_factor = 4.0f;
  int rope_original_max_position = 8192;
};

// How to pick the next token. Order of processing (as in Hugging Face / vLLM): repetition
// penalty (prompt + generated tokens), presence/frequency penalties (generated tokens),
// suppressed tokens, then temperature, top-k, top-p. temperature 0 = greedy (argmax after the
// penalties).
struct SamplingSpec {
  float temperature = 0.0f;
  int top_k = 0;                    // 0 = whole vocabulary; ties with the k-th logit are kept
  float top_p = 1.0f;               // nucleus: smallest set with probability >= top_p
  float repetition_penalty = 1.0f;  // > 1 discourages tokens already in the context
  float presence_penalty = 0.0f;    // subtracted once from tokens generated so far
  float frequency_penalty = 0.0f;   // subtracted per occurrence in the generated tokens
  int64_t seed = 0;
};

class TransformerSession;
class SpeculativeState;
class BatchState;

// One loaded model with its static KV cache: prefill a prompt, then decode one token at a time.
// Not thread-safe: one generation at a time per engine (the Java Engine serialises calls).
class TransformerEngine {
 public:
  // format: "pth" (GPT-Fast torch.save state dict), "safetensors" (a file or an index.json),
  // "llama2c" (llama2.c .bin, legacy or v1), "random" (seeded random weights, for benchmarks;
  // checkpoint_path is then the seed). dtype: "fp32" or "bf16". device: "cpu", or "cuda[:N]"
  // with a CUDA libtorch. threads: 0 keeps libtorch's default. max_seq_len: KV cache length,
  // 0 means the model's block_size.
  TransformerEngine(const std::string& checkpoint_path, const std::string& format,
                    const ModelSpec& model, const std::string& dtype, const std::string& device,
                    int threads, int max_seq_len);
  ~TransformerEngine();
  TransformerEngine(const TransformerEngine&) = delete;
  TransformerEngine& operator=(const TransformerEngine&) = delete;

  // Validates and applies sampling parameters for the next generation; seeds the engine's own
  // generator and clears suppressed tokens.
  void set_sampling(const SamplingSpec& sampling);
  // Tokens excluded from sampling until the next call (n = 0 clears), e.g. EOS before a
  // minimum number of new tokens.
  void suppress_tokens(const int32_t* ids, int n);

  // Resets the cache, runs the whole prompt in one pass, returns the first sampled token.
  int prefill(const int32_t* tokens, int n_tokens);
  // Appends one token at the next position and returns the token sampled after it.
  int decode(int32_t token);
  // Resets the cache, runs the prompt, writes fp32 logits of every position to out[n*vocab].
  void prompt_logits(const int32_t* tokens, int n_tokens, float* out);

  int position() const;     // tokens now in the cache
  int max_seq_len() const;  // cache length
  int vocab_size() const;
  std::string describe() const;

 private:
  friend class SpeculativeDecoder;
  std::unique_ptr<TransformerSession> session_;
};

// Speculative decoding: the draft proposes k tokens one at a time (its own KV cache), the target
// scores all k+1 positions in one pass, and native accept/reject keeps exactly the target's
// distribution: draft token x is accepted with probability min(1, p(x)/q(x)); the first rejected
// position is resampled from normalize(max(0, p - q)); if all k are accepted a bonus token is
// sampled from the target. Both caches are rewound to the accepted prefix (later entries are
// overwritten before they are ever read). Sampling parameters and the generator are the target's;
// penalties are not supported here. Both engines must outlive this object.
class SpeculativeDecoder {
 public:
  SpeculativeDecoder(TransformerEngine& target, TransformerEngine& draft, int k);
  ~SpeculativeDecoder();
  SpeculativeDecoder(const SpeculativeDecoder&) = delete;
  SpeculativeDecoder& operator=(const SpeculativeDecoder&) = delete;

  // Prefills both models with the prompt; returns the first token, sampled from the target.
  int prefill(const int32_t* tokens, int n_tokens);
  // One round after `last_token` (the last token returned, not yet in either cache): writes the
  // 1..k+1 new tokens to out (capacity >= k+1) and returns how many. Near the end of the context
  // k shrinks; 0 means the context is full.
  int step(int32_t last_token, int32_t* out, int capacity);

  int64_t rounds() const;    // verify passes so far (since construction)
  int64_t proposed() const;  // draft tokens proposed
  int64_t accepted() const;  // draft tokens accepted

 private:
  TransformerEngine& target_;
  TransformerEngine& draft_;
  std::unique_ptr<SpeculativeState> state_;
};

// Continuous batching: one model, a KV cache with max_batch independent slots, and a decode step
// that advances any set of active slots together (one token each; the weights are read once
// for all of them). Sequences start (prefill) and finish between steps, so new requests join a
// running batch without waiting for it to drain. Each slot has its own sampler and seed.
// Not thread-safe: one thread drives it.
class BatchedEngine {
 public:
  BatchedEngine(const std::string& checkpoint_path, const std::string& format, const ModelSpec& model,
                const std::string& dtype, const std::string& device, int threads, int max_seq_len, int max_batch);
  ~BatchedEngine();
  BatchedEngine(const BatchedEngine&) = delete;
  BatchedEngine& operator=(const BatchedEngine&) = delete;

  // Sampling parameters and seed for the next sequence in a free slot (clears its suppression).
  void set_sampling(int slot, const SamplingSpec& sampling);
  // Tokens the slot may not sample until the next call (n = 0 clears).
  void suppress_tokens(int slot, const int32_t* ids, int n);
  // Prefills the prompt into the free slot; returns the first token.
  int start(int slot, const int32_t* tokens, int n_tokens);
  // One step for n distinct active slots: feeds tokens[i] to slots[i], writes the next tokens.
  void step(const int32_t* slots, const int32_t* tokens, int n, int32_t* next);
  // Frees a slot for the next sequence.
  void release(int slot);

  int max_batch() const;
  int max_seq_len() const;
  int position(int slot) const;  // tokens in the slot's cache
  std::string describe() const;

 private:
  std::unique_ptr<BatchState> state_;
};

}  // namespace gptfast
