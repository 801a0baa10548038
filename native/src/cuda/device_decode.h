// Decode steps on a GPU: one token for each of up to max_batch sequences per call, through
// Transformer::decode, with no per-token CPU work beyond the input copy and one read. In a CUDA
// build each batch size (rounded up to a power of two; the extra rows decode into a scratch cache
// slot) is captured once in a CUDA graph on a private stream and replayed per token: the token,
// slot and position arrays live in static device buffers filled from pinned host memory. With
// device sampling (the default on a CUDA device; GPTFAST_DEVICE_SAMPLING=0 turns it off) the
// graph also samples every row with its slot's sampling state in device memory (DeviceSampler)
// and only the ids come back (pinned); rows that asked for logits get those copied back too.
// Without CUDA graphs (a CPU build of this library loaded with a CUDA libtorch,
// GPTFAST_CUDA_GRAPHS=0, or a capture that failed, which is reported once on stderr) the same
// Transformer::decode (and sampling) runs eagerly: same kernels, same results.
//
// This header needs no CUDA headers (the graphs live behind Impl), so model.h includes it in
// every build.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include "gptfast/engine_api.h"

namespace at {
class Tensor;
}

namespace gptfast {

class Transformer;

class DeviceDecode {
 public:
  // model: on a CUDA device, with a KV cache of at least scratch_slot + 1 slots; scratch_slot is
  // reserved for padding rows and never holds a sequence. A non-empty `eager_reason` turns graph
  // capture off and says why (mode() reports it). A non-empty `no_sampler_reason` gives this
  // decoder no sampling state of its own (a draft model: its proposals are drawn with the target
  // decoder's state of the sequence, see speculate()); sampling_mode() says "none (<why>)".
  DeviceDecode(Transformer& model, int64_t max_batch, int64_t scratch_slot, const std::string& eager_reason = "",
               const std::string& no_sampler_reason = "");
  ~DeviceDecode();
  DeviceDecode(const DeviceDecode&) = delete;
  DeviceDecode& operator=(const DeviceDecode&) = delete;

  // Token tokens[b] of slot slots[b] (distinct) at position positions[b], b < n <= max_batch.
  // Row b's output: with sampled[b] non-null (device sampling only), the id drawn on the device
  // with slot slots[b]'s sampling state, which also joins that state's history; else, unless
  // logits[b] is null, its fp32 logits [vocab]. sampled itself may be null. A row with nothing to
  // sample (every id suppressed, no finite logit) throws, as the CPU Sampler does.
  void run(const int32_t* tokens, const int32_t* slots, const int64_t* positions, int64_t n, float* const* logits,
           int32_t* const* sampled = nullptr);

  // Device sampling: each sequence slot's parameters, generator and history on the device, set by
  // start_sampling() when a sequence starts and by suppress() (slot < scratch_slot). Throws
  // unless device_sampling().
  bool device_sampling() const;
  // "device", "cpu (<why>)", or "none (<why>)" for a draft model's decoder.
  std::string sampling_mode() const;
  void start_sampling(int slot, const SamplingSpec& spec, const int32_t* prompt, int n);
  void suppress(int slot, const int32_t* ids, int n);
  // Draws from one row of logits on this device ([vocab] elements, any float dtype: a prompt's
  // last position, from an eager pass run within_stream) with slot's state, which records it.
  // One read back (a prompt's end, not a decode step).
  int32_t sample(const at::Tensor& logits, int slot);

  // One speculative round of the sequence in `slot`, on the device, with this decoder's sampling
  // state of the slot (device_sampling() only). The draft model (`draft`, on the same device;
  // `draft_decoder` is its decoder, whose queued work this round waits for) catches up on
  // draft_tokens[0..draft_n) at positions draft_start.. (they end with the sequence's last token)
  // and proposes k ids one position at a time, each drawn from its processed distribution q_j
  // (kept on the device); the target scores target_tokens[0..target_n) at target_start.. followed
  // by the k proposals, giving k + 1 distributions p; one accept_reject launch keeps a prefix of
  // the proposals and draws one more id, and the emitted ids join the slot's history. Writes them
  // to out (1..k + 1 ids), returns how many, and sets *kept to the proposals kept. Everything runs
  // eagerly on this decoder's stream (the draft's steps and the verify pass are not captured in a
  // graph yet); the host waits once, for the ids. Same rule and distribution as the CPU's
  // accept_or_resample, not the same random stream.
  int speculate(Transformer& draft, DeviceDecode& draft_decoder, int slot, const int32_t* draft_tokens,
                int64_t draft_n, int64_t draft_start, const int32_t* target_tokens, int64_t target_n,
                int64_t target_start, int k, int32_t* out, int32_t* kept);

  // Runs f with this decoder's stream current, so that the eager passes of a step (prompt chunks,
  // verify passes) are ordered with its graph replays on one stream.
  // (A template over a plain function pointer: nothing is allocated per step.)
  template <typename F>
  void within_stream(F&& f) {
    within_stream(&call<std::remove_reference_t<F>>, &f);
  }

  // "graphs" or "eager (<why>)", for describe() and the bench.
  std::string mode() const;

  // Which sampling state row b of a run draws with: its slot's when it samples for that sequence
  // (b < n, sampled[b] set), else the spare state scratch_slot + b (padding, logits-only rows), so
  // that no other draw reaches a sequence's history or generator.
  static int64_t sampling_slot(int64_t b, int64_t n, const int32_t* slots, int32_t* const* sampled,
                               int64_t scratch_slot) {
    return b < n && sampled && sampled[b] ? slots[b] : scratch_slot + b;
  }

 private:
  template <typename F>
  static void call(void* f) {
    (*static_cast<F*>(f))();
  }
  void within_stream(void (*fn)(void*), void* f);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gptfast
