// The TransformerEngine facade: resolves dtype/device, loads the checkpoint, owns the transformer,
// the cache position and the sampler; every call runs under guarded() so errors reach Java as
// one-line messages.
#include "gptfast/engine_api.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <mutex>
#include <optional>
#include <sstream>

#include "decode_step.h"
#include "guarded.h"
#include "sampler.h"
#include "transformer.h"

namespace gptfast {

namespace {

struct RuntimeSpec {
  std::string dtype, device;
  int threads = 0, max_seq_len = 0;
};

at::ScalarType parse_dtype(const std::string& dtype) {
  if (dtype == "fp32" || dtype == "float32") return at::kFloat;
  if (dtype == "bf16" || dtype == "bfloat16") return at::kBFloat16;
  throw Error("unknown dtype '" + dtype + "' (expected fp32 or bf16)");
}

at::Device parse_device(const std::string& device) {
  at::Device d(at::kCPU);
  try {
    d = at::Device(device);
  } catch (const c10::Error&) {
    throw Error("unknown device '" + device + "' (expected cpu or cuda[:N])");
  }
  if (d.is_cuda() && !at::hasCUDA()) {
    throw Error("device '" + device + "' requested, but this libtorch build has no CUDA support");
  }
  if (!d.is_cpu() && !d.is_cuda()) throw Error("unsupported device '" + device + "'");
  return d;
}

// libtorch's intra-op thread count is process-wide; set it under a lock.
void set_threads(int threads) {
  static std::mutex mutex;
  if (threads < 0) throw Error("threads must be >= 0, got " + std::to_string(threads));
  if (threads == 0) return;
  std::lock_guard<std::mutex> lock(mutex);
  at::set_num_threads(threads);
}

StateDict load_checkpoint(const std::string& path, const std::string& format, const ModelSpec& spec) {
  if (format == "pth") {
    StateDict w = load_pth(path);
    merge_qkv(w, spec.n_layer);
    return w;
  }
  if (format == "safetensors") return load_safetensors(path, spec);
  if (format == "llama2c") return load_llama2c(path, spec);
  if (format == "random") return random_weights(spec, path);
  throw Error("unknown checkpoint format '" + format + "' (expected pth, safetensors or llama2c)");
}

}  // namespace

class TransformerSession {
 public:
  TransformerSession(const std::string& path, const std::string& format, const ModelSpec& spec,
                     const RuntimeSpec& runtime)
      : runtime_(runtime),
        model_(spec, load_checkpoint(path, format, spec),
               at::TensorOptions().dtype(parse_dtype(runtime.dtype)).device(parse_device(runtime.device)),
               cache_length(spec, runtime)) {
    // GPTFAST_FUSED_DECODE=0 forces the generic ATen decode path (for comparisons and debugging).
    const char* fused = std::getenv("GPTFAST_FUSED_DECODE");
    if (FusedDecodeStep::supports(model_) && !(fused && std::string(fused) == "0")) fused_.emplace(model_);
  }

  void check_prompt(const int32_t* tokens, int n) const {
    if (n <= 0) throw Error("prompt is empty: at least one token (BOS) is needed");
    if (n > model_.max_seq_len()) {
      throw Error("prompt has " + std::to_string(n) + " tokens, more than the context length " +
                  std::to_string(model_.max_seq_len()));
    }
    for (int i = 0; i < n; ++i) check_token(tokens[i]);
  }
  void check_token(int32_t token) const {
    if (token < 0 || token >= model_.spec().vocab_size) {
      throw Error("token id " + std::to_string(token) + " is outside the vocabulary [0, " +
                  std::to_string(model_.spec().vocab_size) + ")");
    }
  }

  at::Tensor run(const int32_t* tokens, int n, bool all_positions) {
    at::Tensor ids = at::from_blob(const_cast<int32_t*>(tokens), {1, n}, at::kInt)
                         .to(model_.options().dtype(at::kLong));
    at::Tensor logits = model_.forward(ids, position_, all_positions).cpu().contiguous();
    position_ += n;
    return logits;
  }

  int decode(int32_t token) {
    if (!fused_) return sample(run(&token, 1, false));
    const float* logits = fused_->run(token, position_);
    position_ += 1;
    return sampler_.sample(logits, vocab());
  }

  int sample(const at::Tensor& logits) {
    return sampler_.sample(logits.data_ptr<float>() + logits.numel() - vocab(), vocab());
  }

  int vocab() const { return model_.spec().vocab_size; }

  static int64_t cache_length(const ModelSpec& spec, const RuntimeSpec& runtime) {
    if (runtime.max_seq_len < 0) throw Error("max_seq_len must be >= 0");
    const int64_t len = runtime.max_seq_len == 0 ? spec.block_size : runtime.max_seq_len;
    if (len > spec.block_size) {
      throw Error("max_seq_len " + std::to_string(len) + " exceeds the model's block_size " +
                  std::to_string(spec.block_size));
    }
    return len;
  }

  RuntimeSpec runtime_;
  Transformer model_;
  std::optional<FusedDecodeStep> fused_;  // fp32 CPU fast path for one-token steps
  Sampler sampler_;
  int64_t position_ = 0;
};

TransformerEngine::TransformerEngine(const std::string& checkpoint_path, const std::string& format,
                                     const ModelSpec& model, const std::string& dtype,
                                     const std::string& device, int threads, int max_seq_len) {
  const RuntimeSpec runtime{dtype, device, threads, max_seq_len};
  guarded("loading model", [&] {
    set_threads(runtime.threads);
    session_ = std::make_unique<TransformerSession>(checkpoint_path, format, model, runtime);
  });
}

TransformerEngine::~TransformerEngine() = default;

void TransformerEngine::set_sampling(float temperature, int top_k, int64_t seed) {
  guarded("sampling parameters", [&] { session_->sampler_.configure(temperature, top_k, uint64_t(seed)); });
}

int TransformerEngine::prefill(const int32_t* tokens, int n_tokens) {
  return guarded("prefill", [&] {
    session_->check_prompt(tokens, n_tokens);
    session_->position_ = 0;
    c10::InferenceMode no_grad;
    return session_->sample(session_->run(tokens, n_tokens, false));
  });
}

int TransformerEngine::decode(int32_t token) {
  return guarded("decode", [&] {
    session_->check_token(token);
    if (session_->position_ >= session_->model_.max_seq_len()) {
      throw Error("context is full (" + std::to_string(session_->model_.max_seq_len()) + " tokens)");
    }
    if (session_->position_ == 0) throw Error("decode called before prefill");
    c10::InferenceMode no_grad;
    return session_->decode(token);
  });
}

void TransformerEngine::prompt_logits(const int32_t* tokens, int n_tokens, float* out) {
  guarded("prompt logits", [&] {
    session_->check_prompt(tokens, n_tokens);
    session_->position_ = 0;
    c10::InferenceMode no_grad;
    at::Tensor logits = session_->run(tokens, n_tokens, true);
    std::copy(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel(), out);
  });
}

int TransformerEngine::position() const { return int(session_->position_); }
int TransformerEngine::max_seq_len() const { return int(session_->model_.max_seq_len()); }
int TransformerEngine::vocab_size() const { return session_->vocab(); }

std::string TransformerEngine::describe() const {
  const ModelSpec& s = session_->model_.spec();
  std::ostringstream out;
  out << "dim=" << s.dim << " n_layer=" << s.n_layer << " n_head=" << s.n_head
      << " n_local_heads=" << s.n_local_heads << " head_dim=" << s.head_dim
      << " intermediate_size=" << s.intermediate_size << " vocab_size=" << s.vocab_size
      << " cache=" << max_seq_len() << " dtype=" << session_->runtime_.dtype
      << " device=" << session_->runtime_.device << " threads=" << at::get_num_threads()
      << " decode=" << (session_->fused_ ? "fused" : "aten");
  return out.str();
}

}  // namespace gptfast
