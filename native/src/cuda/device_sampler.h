// The per-slot sampling state that sample() (kernels.h) reads, in device memory, and its host-side
// bookkeeping: DeviceDecode owns one and samples inside its captured decode graph, so that a
// decode step returns only token ids. Torch-free (CUDA runtime only), so its tests also run under
// the CPU emulator (native/test/cuda_emulator).
//
// A slot's state is written when its sequence starts (parameters, seed with counter 0, the
// prompt as context, nothing generated or suppressed) and when its suppressed ids change; after
// that only sample() touches it, on the device: each launch draws with the slot's counter and
// adds the drawn token to the slot's history (what the penalties read). Every write goes on the
// caller's stream, so it is ordered with the graph replays on that stream.
//
// Memory: 6 bytes per vocabulary entry per slot (context flag, generated count, suppressed flag).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "cuda/kernels.h"
#include "gptfast/engine_api.h"

namespace gptfast::cuda {

class DeviceSampler {
 public:
  // slots: sampling slots (indices 0..slots-1); every slot starts greedy with empty history.
  // Throws gptfast::Error when the device memory cannot be had.
  DeviceSampler(int slots, int vocab, cudaStream_t stream);
  DeviceSampler(const DeviceSampler&) = delete;
  DeviceSampler& operator=(const DeviceSampler&) = delete;

  int slots() const { return slots_; }
  int vocab() const { return vocab_; }

  // A new sequence in `slot`: check_sampling(spec)'s ranges, ids of the prompt in [0, vocab).
  void start(int slot, const SamplingSpec& spec, const int32_t* prompt, int n, cudaStream_t stream);
  // Ids that may not be sampled in `slot` from now on (replacing earlier ones); ids outside the
  // vocabulary are ignored, as the CPU Sampler ignores them.
  void suppress(int slot, const int32_t* ids, int n, cudaStream_t stream);
  // tokens[r] = a draw for row r of logits (fp32 [rows, vocab]) with slot slot_of_row[r]'s state
  // (device int32 [rows], distinct slots), then that token is added to the slot's history; -1
  // when the row has nothing to sample. Graph-capturable: two launches, nothing else.
  void sample(const float* logits, int rows, const int32_t* slot_of_row, int32_t* tokens, cudaStream_t stream) const;

  // A speculative round on the device, with the same per-slot state (one launch each, all
  // graph-capturable; rows are positions of the round, row r in slot slot_of_row[r]):
  // probs [rows, vocab] = each row's processed distribution (sampling_distribution: the draft's
  // q and the target's p); draws nothing, so rows may share a slot.
  void distribution(const float* logits, int rows, const int32_t* slot_of_row, float* probs,
                    cudaStream_t stream) const;
  // tokens[r] = a draw from row r of probs with its slot's generator (distinct slots). Not added
  // to the history: a draft proposal is not generated until accept() keeps it.
  void draw(const float* probs, int rows, const int32_t* slot_of_row, int32_t* tokens, cudaStream_t stream) const;
  // accept_reject (kernels.h) for `rows` sequences in slots slot_of_row[r] (distinct), then the
  // emitted ids (out, n_out) join each slot's history.
  void accept(const float* p, const float* q, const int32_t* draft, int rows, int k, const int32_t* slot_of_row,
              int32_t* out, int32_t* n_out, int32_t* accepted, cudaStream_t stream) const;

 private:
  void check_slot(int slot) const;
  SamplingBatch batch(const float* logits, int rows, const int32_t* slot_of_row) const;
  void upload(void* device, const void* host, size_t bytes, cudaStream_t stream, const char* what);

  struct Free {
    void operator()(void* p) const { cudaFree(p); }
  };
  template <class T>
  using Array = std::unique_ptr<T[], Free>;
  template <class T>
  static Array<T> allocate(size_t n);

  int slots_, vocab_;
  Array<SamplingParams> params_;  // [slots]
  Array<RngState> rng_;           // [slots]
  Array<uint8_t> in_context_;     // [slots, vocab]
  Array<int32_t> generated_count_;
  Array<uint8_t> suppressed_;
  std::vector<uint8_t> row_;  // host staging of one flag row
};

}  // namespace gptfast::cuda
