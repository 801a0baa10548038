// The API facade over SessionState; every call runs under guarded() so errors reach Java as
// one-line messages.
#include "gptfast/engine_api.h"

#include "dist/cluster.h"
#include "dist/follower.h"
#include "guarded.h"
#include "session.h"
#include "thread_team.h"

namespace gptfast {

Session::Session(const std::string& checkpoint_path, const std::string& format, const ModelSpec& model,
                 const std::string& dtype, const std::string& device, int threads, int max_seq_len, int slots,
                 int prefill_chunk, const std::string& quantize, int tp) {
  guarded("loading model", [&] {
    check_options(dtype, device, threads, max_seq_len, slots, prefill_chunk, 1, quantize, tp);
    if (threads == 0) threads = measured_default_threads();
    set_intra_op_threads(threads);  // process-wide: the last session created sets it
    RuntimeSpec runtime{dtype, device, threads, max_seq_len, quantize};
    runtime.tp = tp;
    state_ = std::make_unique<SessionState>(checkpoint_path, format, model, runtime, slots, prefill_chunk);
  });
}

Session::~Session() = default;

namespace {

ClusterSpec cluster_spec(const std::string& master_addr, int master_port, int nnodes, int node_rank, int tp,
                         int timeout_ms) {
  checked_tp(tp);
  if (timeout_ms < 1) throw Error("the tensor-parallel timeout must be >= 1 ms, got " + std::to_string(timeout_ms));
  ClusterSpec spec{master_addr, master_port, nnodes, node_rank, tp, std::chrono::milliseconds(timeout_ms)};
  return spec;
}

}  // namespace

int tp_listen(const std::string& master_addr, int master_port, int nnodes, int tp, int timeout_ms) {
  return guarded("tensor-parallel listen", [&] {
    return Cluster::join(cluster_spec(master_addr, master_port, nnodes, 0, tp, timeout_ms))->port();
  });
}

void tp_follow(const std::string& master_addr, int master_port, int nnodes, int node_rank, int tp, int timeout_ms) {
  guarded("tensor-parallel follower", [&] { follow(cluster_spec(master_addr, master_port, nnodes, node_rank, tp, timeout_ms)); });
}

void tp_shutdown() {
  guarded("tensor-parallel shutdown", [] { Cluster::leave(); });
}

int default_threads() {
  return guarded("measuring the default thread count", [] { return measured_default_threads(); });
}

void Session::load_draft(const std::string& checkpoint_path, const std::string& format, const ModelSpec& model,
                         int max_speculate_k, const std::string& quantize) {
  guarded("loading draft model", [&] { state_->load_draft(checkpoint_path, format, model, max_speculate_k, quantize); });
}

void Session::start(int slot, const SamplingSpec& sampling, int speculate_k, const int32_t* prompt, int n_tokens,
                    bool reuse_cache) {
  guarded("start", [&] { state_->start(slot, sampling, speculate_k, prompt, n_tokens, reuse_cache); });
}

int Session::cached_prefix(int slot, const int32_t* prompt, int n_tokens) const {
  return guarded("cached_prefix", [&] { return int(state_->cached_prefix(slot, prompt, n_tokens)); });
}

void Session::suppress_tokens(int slot, const int32_t* ids, int n) {
  guarded("suppress tokens", [&] { state_->suppress(slot, ids, n); });
}

void Session::step(const int32_t* slots, int n, int32_t* out, int stride, int32_t* counts) {
  guarded("step", [&] {
    c10::InferenceMode no_grad;
    state_->step(slots, n, out, stride, counts);
  });
}

void Session::release(int slot) {
  guarded("release", [&] { state_->release(slot); });
}

void Session::prompt_logits(const int32_t* tokens, int n_tokens, float* out) {
  guarded("prompt logits", [&] {
    c10::InferenceMode no_grad;
    state_->prompt_logits(tokens, n_tokens, out);
  });
}

int Session::slots() const { return state_->slots(); }
int Session::max_seq_len() const { return int(state_->max_seq_len()); }
int Session::vocab_size() const { return state_->vocab(); }
int Session::max_speculate_k() const { return state_->max_speculate_k(); }
int Session::max_tokens_per_step() const { return state_->max_tokens_per_step(); }
int64_t Session::weight_bytes() const { return state_->weight_bytes(); }
int Session::tensor_parallel() const { return state_->tp(); }
std::string Session::device() const { return state_->device(); }
int64_t Session::all_reduces() const { return state_->all_reduces(); }
int64_t Session::all_reduce_nanos() const { return state_->all_reduce_nanos(); }
int64_t Session::forward_nanos() const { return state_->forward_nanos(); }
void Session::fail_rank_for_test(int rank, int n, int timeout_ms) {
  guarded("fail rank", [&] { state_->fail_rank_for_test(rank, n, timeout_ms); });
}
int Session::position(int slot) const {
  return guarded("position", [&] { return int(state_->position(slot)); });
}
int64_t Session::rounds(int slot) const {
  return guarded("rounds", [&] { return state_->rounds(slot); });
}
int64_t Session::proposed(int slot) const {
  return guarded("proposed", [&] { return state_->proposed(slot); });
}
int64_t Session::accepted(int slot) const {
  return guarded("accepted", [&] { return state_->accepted(slot); });
}
std::string Session::describe() const { return state_->describe(); }
std::string Session::broken() const { return state_->broken(); }

}  // namespace gptfast
