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

class TransformerSession;

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

  // temperature 0 = greedy; top_k 0 = whole vocabulary. Seeds the engine's own generator.
  void set_sampling(float temperature, int top_k, int64_t seed);

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
  std::unique_ptr<TransformerSession> session_;
};

}  // namespace gptfast
