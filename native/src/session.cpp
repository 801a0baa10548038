#include "session.h"

#include <cstdlib>

namespace gptfast {

namespace {

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

}  // namespace

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

int64_t cache_length(const ModelSpec& spec, const RuntimeSpec& runtime) {
  if (runtime.max_seq_len < 0) throw Error("max_seq_len must be >= 0");
  const int64_t len = runtime.max_seq_len == 0 ? spec.block_size : runtime.max_seq_len;
  if (len > spec.block_size) {
    throw Error("max_seq_len " + std::to_string(len) + " exceeds the model's block_size " +
                std::to_string(spec.block_size));
  }
  return len;
}

bool use_fused_decode(const Transformer& model) {
  // GPTFAST_FUSED_DECODE=0 forces the generic ATen decode path (for comparisons and debugging).
  const char* fused = std::getenv("GPTFAST_FUSED_DECODE");
  return FusedDecodeStep::supports(model) && !(fused && std::string(fused) == "0");
}

at::TensorOptions tensor_options(const RuntimeSpec& runtime) {
  return at::TensorOptions().dtype(parse_dtype(runtime.dtype)).device(parse_device(runtime.device));
}

int64_t fused_batch_limit(const ModelSpec& spec) {
  const int64_t per_layer = int64_t(spec.dim) * (spec.n_head + 2 * spec.n_local_heads) * spec.head_dim +
                            int64_t(spec.n_head) * spec.head_dim * spec.dim + 3 * int64_t(spec.dim) * spec.intermediate_size;
  const int64_t weights = spec.n_layer * per_layer + 2 * int64_t(spec.vocab_size) * spec.dim;
  return weights <= TransformerSession::kFusedBatchMaxWeights ? TransformerSession::kMaxFusedTokens : 1;
}

TransformerSession::TransformerSession(const std::string& path, const std::string& format,
                                       const ModelSpec& spec, const RuntimeSpec& runtime)
    : runtime_(runtime),
      model_(spec, load_checkpoint(path, format, spec), tensor_options(runtime), cache_length(spec, runtime)) {
  if (use_fused_decode(model_)) {
    fused_.emplace(model_, kMaxFusedTokens);
    fused_batch_limit_ = fused_batch_limit(spec);
  }
  sampler_.configure(SamplingSpec{}, spec.vocab_size);
}

void TransformerSession::check_prompt(const int32_t* tokens, int n) const {
  if (n <= 0) throw Error("prompt is empty: at least one token (BOS) is needed");
  if (n > max_seq_len()) {
    throw Error("prompt has " + std::to_string(n) + " tokens, more than the context length " +
                std::to_string(max_seq_len()));
  }
  for (int i = 0; i < n; ++i) check_token(tokens[i]);
}

void TransformerSession::check_token(int32_t token) const {
  if (token < 0 || token >= vocab()) {
    throw Error("token id " + std::to_string(token) + " is outside the vocabulary [0, " +
                std::to_string(vocab()) + ")");
  }
}

at::Tensor TransformerSession::forward(const int32_t* tokens, int n, bool all_positions) {
  if (position_ + n > max_seq_len()) {
    throw Error("context is full (" + std::to_string(max_seq_len()) + " tokens)");
  }
  if (fused_ && n <= fused_batch_limit_) {
    const float* logits = fused_->run(tokens, n, position_);
    position_ += n;
    const int64_t first = all_positions ? 0 : n - 1;
    return at::from_blob(const_cast<float*>(logits) + first * vocab(), {n - first, vocab()}, at::kFloat);
  }
  at::Tensor ids = at::from_blob(const_cast<int32_t*>(tokens), {1, n}, at::kInt).to(model_.options().dtype(at::kLong));
  at::Tensor logits = model_.forward(ids, position_, all_positions).cpu().contiguous().view({-1, vocab()});
  position_ += n;
  return logits;
}

const float* TransformerSession::step(int32_t token) {
  if (!fused_) {
    last_logits_ = forward(&token, 1, false);
    return last_logits_.data_ptr<float>();
  }
  if (position_ >= max_seq_len()) throw Error("context is full (" + std::to_string(max_seq_len()) + " tokens)");
  const float* logits = fused_->run(&token, 1, position_);
  position_ += 1;
  return logits;
}

void TransformerSession::rewind(int64_t position) {
  if (position < 0 || position > position_) throw Error("cannot rewind to position " + std::to_string(position));
  position_ = position;
}

}  // namespace gptfast
