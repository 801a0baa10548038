// Decode steps on a GPU: one token for each of up to max_batch sequences per call, through
// Transformer::decode, with no per-token CPU work beyond three copies. In a CUDA build each batch
// size (rounded up to a power of two; the extra rows decode into a scratch cache slot) is
// captured once in a CUDA graph on a private stream and replayed per token: the token, slot and
// position arrays live in static device buffers filled from pinned host memory, and only the
// logits come back (pinned). Without CUDA graphs (a CPU build of this library loaded with a CUDA
// libtorch, GPTFAST_CUDA_GRAPHS=0, or a capture that failed, which is reported once on stderr)
// the same Transformer::decode runs eagerly: same kernels, same results.
//
// This header needs no CUDA headers (the graphs live behind Impl), so model.h includes it in
// every build.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

namespace gptfast {

class Transformer;

class DeviceDecode {
 public:
  // model: on a CUDA device, with a KV cache of at least scratch_slot + 1 slots; scratch_slot is
  // reserved for padding rows and never holds a sequence. A non-empty `eager_reason` turns graph
  // capture off and says why (mode() reports it).
  DeviceDecode(Transformer& model, int64_t max_batch, int64_t scratch_slot, const std::string& eager_reason = "");
  ~DeviceDecode();
  DeviceDecode(const DeviceDecode&) = delete;
  DeviceDecode& operator=(const DeviceDecode&) = delete;

  // Token tokens[b] of slot slots[b] (distinct) at position positions[b], b < n <= max_batch.
  // Writes row b's fp32 logits [vocab] to logits[b] unless it is null.
  void run(const int32_t* tokens, const int32_t* slots, const int64_t* positions, int64_t n, float* const* logits);

  // Runs f with this decoder's stream current, so that the eager passes of a step (prompt chunks,
  // verify passes) are ordered with its graph replays on one stream.
  // (A template over a plain function pointer: nothing is allocated per step.)
  template <typename F>
  void within_stream(F&& f) {
    within_stream(&call<std::remove_reference_t<F>>, &f);
  }

  // "graphs" or "eager (<why>)", for describe() and the bench.
  std::string mode() const;

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
