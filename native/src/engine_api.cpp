// The API facades over TransformerSession and SpeculativeState; every call runs under guarded()
// so errors reach Java as one-line messages.
#include "gptfast/engine_api.h"

#include <ATen/Parallel.h>

#include <mutex>
#include <sstream>

#include "batch.h"
#include "guarded.h"
#include "session.h"
#include "speculative.h"

namespace gptfast {

namespace {

// libtorch's intra-op thread count is process-wide; set it under a lock.
void set_threads(int threads) {
  static std::mutex mutex;
  if (threads < 0) throw Error("threads must be >= 0, got " + std::to_string(threads));
  if (threads == 0) return;
  std::lock_guard<std::mutex> lock(mutex);
  at::set_num_threads(threads);
}

}  // namespace

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

void TransformerEngine::set_sampling(const SamplingSpec& sampling) {
  guarded("sampling parameters", [&] { session_->sampler().configure(sampling, session_->vocab()); });
}

void TransformerEngine::suppress_tokens(const int32_t* ids, int n) {
  guarded("suppress tokens", [&] { session_->sampler().set_suppressed(ids, n); });
}

int TransformerEngine::prefill(const int32_t* tokens, int n_tokens) {
  return guarded("prefill", [&] {
    session_->check_prompt(tokens, n_tokens);
    session_->rewind(0);
    c10::InferenceMode no_grad;
    at::Tensor logits = session_->forward(tokens, n_tokens, false);
    Sampler& sampler = session_->sampler();
    sampler.reset_history(tokens, n_tokens);
    const int next = sampler.sample(logits.data_ptr<float>());
    sampler.record_generated(next);
    return next;
  });
}

int TransformerEngine::decode(int32_t token) {
  return guarded("decode", [&] {
    session_->check_token(token);
    if (session_->position() == 0) throw Error("decode called before prefill");
    c10::InferenceMode no_grad;
    Sampler& sampler = session_->sampler();
    const int next = sampler.sample(session_->step(token));
    sampler.record_generated(next);
    return next;
  });
}

void TransformerEngine::prompt_logits(const int32_t* tokens, int n_tokens, float* out) {
  guarded("prompt logits", [&] {
    session_->check_prompt(tokens, n_tokens);
    session_->rewind(0);
    c10::InferenceMode no_grad;
    at::Tensor logits = session_->forward(tokens, n_tokens, true);
    std::copy(logits.data_ptr<float>(), logits.data_ptr<float>() + logits.numel(), out);
  });
}

int TransformerEngine::position() const { return int(session_->position()); }
int TransformerEngine::max_seq_len() const { return int(session_->max_seq_len()); }
int TransformerEngine::vocab_size() const { return session_->vocab(); }

std::string TransformerEngine::describe() const {
  const ModelSpec& s = session_->spec();
  std::ostringstream out;
  out << "dim=" << s.dim << " n_layer=" << s.n_layer << " n_head=" << s.n_head
      << " n_local_heads=" << s.n_local_heads << " head_dim=" << s.head_dim
      << " intermediate_size=" << s.intermediate_size << " vocab_size=" << s.vocab_size
      << " cache=" << max_seq_len() << " dtype=" << session_->runtime().dtype
      << " device=" << session_->runtime().device << " threads=" << at::get_num_threads()
      << " decode=" << (session_->fused() ? "fused" : "aten");
  return out.str();
}

SpeculativeDecoder::SpeculativeDecoder(TransformerEngine& target, TransformerEngine& draft, int k)
    : target_(target), draft_(draft) {
  guarded("speculative decoding", [&] {
    if (&target == &draft) throw Error("draft and target must be separate engines (load the model twice)");
    state_ = std::make_unique<SpeculativeState>(*target.session_, *draft.session_, k);
  });
}

SpeculativeDecoder::~SpeculativeDecoder() = default;

int SpeculativeDecoder::prefill(const int32_t* tokens, int n_tokens) {
  return guarded("speculative prefill", [&] {
    c10::InferenceMode no_grad;
    return state_->prefill(tokens, n_tokens);
  });
}

int SpeculativeDecoder::step(int32_t last_token, int32_t* out, int capacity) {
  return guarded("speculative step", [&] {
    c10::InferenceMode no_grad;
    return state_->step(last_token, out, capacity);
  });
}

int64_t SpeculativeDecoder::rounds() const { return state_->rounds; }
int64_t SpeculativeDecoder::proposed() const { return state_->proposed; }
int64_t SpeculativeDecoder::accepted() const { return state_->accepted; }

BatchedEngine::BatchedEngine(const std::string& checkpoint_path, const std::string& format, const ModelSpec& model,
                             const std::string& dtype, const std::string& device, int threads, int max_seq_len,
                             int max_batch) {
  const RuntimeSpec runtime{dtype, device, threads, max_seq_len};
  guarded("loading model", [&] {
    set_threads(runtime.threads);
    state_ = std::make_unique<BatchState>(checkpoint_path, format, model, runtime, max_batch);
  });
}

BatchedEngine::~BatchedEngine() = default;

void BatchedEngine::set_sampling(int slot, const SamplingSpec& sampling) {
  guarded("sampling parameters", [&] { state_->set_sampling(slot, sampling); });
}

int BatchedEngine::start(int slot, const int32_t* tokens, int n_tokens) {
  return guarded("batch start", [&] {
    c10::InferenceMode no_grad;
    return state_->start(slot, tokens, n_tokens);
  });
}

void BatchedEngine::suppress_tokens(int slot, const int32_t* ids, int n) {
  guarded("suppress tokens", [&] { state_->suppress(slot, ids, n); });
}

void BatchedEngine::step(const int32_t* slots, const int32_t* tokens, int n, int32_t* next) {
  guarded("batch step", [&] {
    c10::InferenceMode no_grad;
    state_->step(slots, tokens, n, next);
  });
}

void BatchedEngine::release(int slot) {
  guarded("batch release", [&] { state_->release(slot); });
}

int BatchedEngine::max_batch() const { return state_->max_batch(); }
int BatchedEngine::max_seq_len() const { return int(state_->max_seq_len()); }
int BatchedEngine::position(int slot) const {
  return guarded("batch position", [&] { return int(state_->position(slot)); });
}

std::string BatchedEngine::describe() const {
  std::ostringstream out;
  out << "batch=" << state_->max_batch() << " cache=" << state_->max_seq_len() << " dtype=" << state_->runtime().dtype
      << " device=" << state_->runtime().device << " threads=" << at::get_num_threads()
      << " decode=" << (state_->fused() ? "fused" : "aten");
  return out.str();
}

}  // namespace gptfast
