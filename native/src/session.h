// The state behind the public Session: the target model (and an optional draft) with one KV
// cache slot per sequence, and per slot the tokens so far, cache positions, sampler and
// speculative statistics. step() decides what each slot feeds next and runs one forward pass of
// the draft (per draft position) and one of the target over all slots together.
//
// Per slot, tokens[0..len) are the prompt and every token returned so far; the last one is not
// in any cache yet. The target cache holds tokens[0..pos), the draft cache tokens[0..draft_pos).
// A step feeds the target tokens[pos..len) (at most prefill_chunk at a time while a prompt is
// long) and samples a new token once the feed reaches len: prefill and decode are the same.
// A free slot keeps what its caches hold (tokens[0..cached), tokens[0..draft_cached)), so that a
// sequence started there with reuse feeds only what follows the longest common prefix with its
// prompt (cached_prefix): the next turn of a chat, a request sharing a system prompt.
// A speculative slot first lets the draft catch up on tokens[draft_pos..len) and propose d_1..d_k,
// writes them at tokens[len..len+k), and the target scores tokens[pos..len+k) in the same pass.
// On a model that samples on the device the whole round of such a slot runs there instead
// (Model::speculate: draws, verify pass and accept/reject; the proposals never reach the host).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "model.h"
#include "sampler.h"

namespace gptfast {

class SessionState {
 public:
  SessionState(const std::string& path, const std::string& format, const ModelSpec& spec, const RuntimeSpec& runtime,
               int slots, int prefill_chunk);

  void load_draft(const std::string& path, const std::string& format, const ModelSpec& spec, int max_k,
                  const std::string& quantize);
  void start(int slot, const SamplingSpec& sampling, int speculate_k, const int32_t* prompt, int n, bool reuse);
  int64_t cached_prefix(int slot, const int32_t* prompt, int n) const;
  void suppress(int slot, const int32_t* ids, int n);
  void step(const int32_t* slots, int n, int32_t* out, int stride, int32_t* counts);
  void release(int slot);
  void prompt_logits(const int32_t* tokens, int n, float* out);

  int slots() const { return int(slots_.size()); }
  int64_t max_seq_len() const { return target_.max_seq_len(); }
  int vocab() const { return target_.vocab(); }
  int max_speculate_k() const { return max_k_; }
  int max_tokens_per_step() const { return max_k_ + 1; }
  int64_t position(int slot) const { return slot_at(slot).pos; }
  int64_t rounds(int slot) const { return slot_at(slot).rounds; }
  int64_t proposed(int slot) const { return slot_at(slot).proposed; }
  int64_t accepted(int slot) const { return slot_at(slot).accepted; }
  std::string describe() const;
  std::string broken() const { return !target_.broken().empty() ? target_.broken() : draft_ ? draft_->broken() : ""; }
  int64_t weight_bytes() const { return target_.weight_bytes(); }
  int tp() const { return target_.tp(); }
  std::string device() const { return target_.device(); }
  int64_t all_reduces() const { return target_.all_reduces(); }
  int64_t all_reduce_nanos() const { return target_.all_reduce_nanos(); }
  int64_t forward_nanos() const { return forward_nanos_; }
  void fail_rank_for_test(int rank, int n, int timeout_ms) {
    if (n < 1 || timeout_ms < 1) throw Error("fail_rank_for_test: n and timeout_ms must be >= 1");
    target_.fail_rank_after(rank, n, std::chrono::milliseconds(timeout_ms));
  }

 private:
  struct Slot {
    bool active = false;
    std::vector<int32_t> tokens;  // max_seq_len + max_k + 1: no allocation per step
    int64_t len = 0, pos = 0, draft_pos = 0;
    int64_t cached = 0, draft_cached = 0;  // while free: the caches still hold tokens[0..these)
    int k = 0;        // speculate_k of the sequence, 0 = plain
    int k_step = 0;   // draft tokens proposed in the current step
    int64_t feed = 0; // target tokens fed in the current step
    Sampler sampler;  // the CPU's; its history follows every token, wherever it was sampled
    // On a model that samples on the device (Model::device_sampling) every token is drawn there:
    // plain steps inside the decode, speculative rounds by Model::speculate (proposals, verify and
    // accept/reject on the device; the vectors below stay unused).
    bool device_sampled = false;
    // This step is a speculative round on the device.
    bool device_round() const { return k_step > 0 && device_sampled; }
    int32_t sampled = -1;       // the id the device drew in this step
    std::vector<float> logits;        // target logits of this step, [(max_k + 1), vocab]
    std::vector<float> draft_logits;  // [vocab]
    std::vector<float> q;             // draft distributions, [max_k, vocab]
    int64_t rounds = 0, proposed = 0, accepted = 0;
  };
  Slot& slot_at(int slot);
  const Slot& slot_at(int slot) const;
  void check_prompt(const int32_t* tokens, int n) const;
  // How many of the prompt's first n tokens the free slot's caches hold (target, draft), at most
  // n - 2: the last two prompt tokens are always run, so that the pass that yields the first
  // logits has several tokens, like the prefill of the whole prompt (a one-token pass goes
  // through the decode kernels, whose sums may round differently).
  std::pair<int64_t, int64_t> reusable(const Slot& s, const int32_t* prompt, int n) const;
  void step_slots(const int32_t* slots, int n, int32_t* out, int stride, int32_t* counts);
  void draft_pass(const int32_t* slots, int n);
  void device_round(Slot& s, int slot, int32_t* out, int32_t* count);
  void finish_round(Slot& s, const int32_t* emitted, int m, int kept);
  void append(Slot& s, int32_t token);
  // Runs f (forward passes) and adds its wall time to forward_nanos_.
  template <class F>
  void timed(F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    forward_nanos_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  }
  void timed_forward(Model& m, const Segment* segments, int n) {
    timed([&] { m.forward(segments, n); });
  }

  int prefill_chunk_;  // checked before the model loads
  Model target_;
  std::optional<Model> draft_;
  int max_k_ = 0;
  int64_t forward_nanos_ = 0;  // all forward passes (target and draft) so far
  std::vector<Slot> slots_;
  std::vector<Segment> segments_;  // sized once
  std::vector<uint8_t> seen_;
  std::vector<float> p_, residual_;  // target distributions and resampling scratch of one slot
};

}  // namespace gptfast
