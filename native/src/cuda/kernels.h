// Host API of the hand-written CUDA kernels (sampling.cu, accept_reject.cu, quant_gemv.cu).
// Torch-free: every buffer is a device pointer the caller owns, every call takes the stream to
// launch on. Each call checks its arguments on the host and throws gptfast::Error naming the
// kernel (and, for CUDA failures, cudaGetErrorString) instead of aborting.
//
// Every kernel is CUDA-graph capturable: no allocation, no host synchronisation, and nothing that
// changes per token is a launch argument. Per-token state lives in device memory (the RNG counter
// of each slot, which the drawing kernels advance; the penalty history, which record_generated
// updates), so a captured launch replays correctly every time.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>

#include "errors.h"
#include "gptfast/engine_api.h"

namespace gptfast::cuda {

// A failed CUDA runtime call as an Error: "<context>: <call>: <CUDA's message>".
inline void check_cuda(cudaError_t e, const char* context, const char* call) {
  if (e != cudaSuccess) throw Error(std::string(context) + ": " + call + ": " + cudaGetErrorString(e));
}

// ---------------------------------------------------------------------------------------------
// Sampling (sampling.cu). Semantics are the CPU Sampler's (sampler.h; order of SamplingSpec):
// penalties and suppression, then greedy (first maximum) when temperature is 0, else top-k (ties
// with the k-th logit kept), softmax at the temperature, top-p (smallest most probable set whose
// mass reaches top_p; ties at its edge are taken lowest id first), a draw. Same distribution as the
// CPU, not the same random stream. Differences: non-finite logits (NaN, +-inf) are never sampled
// (the CPU throws for some); a row with nothing to sample gets token -1 (the CPU throws);
// probabilities are summed in 2^-40 fixed point (exact and order-independent, so a seed always
// gives the same tokens), so a token whose weight relative to the most probable one is below
// 2^-40 is never drawn.

// One slot's sampling parameters, in device memory (written when a sequence starts). The ranges
// are SamplingSpec's (check_sampling checks them before make_sampling_params is called).
struct SamplingParams {
  float temperature;
  int32_t top_k;
  float top_p;
  float repetition_penalty;
  float presence_penalty;
  float frequency_penalty;
};

inline SamplingParams make_sampling_params(const SamplingSpec& s) {
  return {s.temperature, s.top_k, s.top_p, s.repetition_penalty, s.presence_penalty, s.frequency_penalty};
}

// One slot's generator, in device memory: each launch that draws for the slot uses `counter` and
// then increments it, so replaying a captured launch draws fresh numbers.
struct RngState {
  uint64_t seed;
  uint64_t counter;
};

// Penalty inputs, per slot rows of `vocab` entries in device memory; each pointer may be null
// (nothing in context / generated / suppressed).
struct SamplingHistory {
  const uint8_t* in_context = nullptr;       // [slots, vocab] 1 = in the prompt or generated
  const int32_t* generated_count = nullptr;  // [slots, vocab] times generated
  const uint8_t* suppressed = nullptr;       // [slots, vocab] 1 = may not be sampled
};

// Rows of logits to sample, each belonging to a slot: row r uses params[slot], rng[slot] and the
// history rows of slot = slot_of_row[r] (null: slot = r). Rows drawing in one launch must belong
// to distinct slots (they advance the slot's counter).
struct SamplingBatch {
  const float* logits = nullptr;  // [rows, vocab], row r at logits + r * vocab
  int rows = 0;
  int vocab = 0;
  const int32_t* slot_of_row = nullptr;  // [rows] or null
  const SamplingParams* params = nullptr;  // [slots]
  SamplingHistory history;
};

// tokens[r] = the id drawn for row r (-1 if the row has nothing to sample).
void sample(const SamplingBatch& batch, RngState* rng, int32_t* tokens, cudaStream_t stream);

// probs[r * vocab + v] = the processed distribution of row r (one-hot at the first maximum when
// greedy; all zero if the row has nothing to sample): what speculative decoding compares. Draws
// nothing, so rows may share a slot.
void sampling_distribution(const SamplingBatch& batch, float* probs, cudaStream_t stream);

// tokens[r] = an id drawn from row r of probs [rows, vocab] (probabilities, each in [0, 1]; need
// not sum to 1; -1 if all are zero), with rng[slot_of_row[r]] (null: slot = r).
void sample_probs(const float* probs, int rows, int vocab, const int32_t* slot_of_row, RngState* rng,
                  int32_t* tokens, cudaStream_t stream);

// Adds generated tokens to the penalty history of their slots: row r's counts[r] tokens (null
// counts: 1) at tokens + r * stride, in slot slot_of_row[r] (null: r). Ids outside [0, vocab)
// (e.g. -1) are skipped. in_context or generated_count may be null. Rows must be distinct slots.
void record_generated(const int32_t* tokens, const int32_t* counts, int stride, int rows, const int32_t* slot_of_row,
                      int vocab, uint8_t* in_context, int32_t* generated_count, cudaStream_t stream);

// ---------------------------------------------------------------------------------------------
// Speculative accept/reject (accept_reject.cu), one launch per round for `rows` sequences: the
// rule of accept_or_resample (speculative_sampling.h). Row r has target probabilities
// p + r*(k+1)*vocab ([k+1, vocab]; row k is the bonus row), draft probabilities q + r*k*vocab
// ([k, vocab]) and draft ids draft + r*k ([k]). Writes the accepted ids followed by one resampled
// (or bonus) id to out + r*(k+1), their number (1..k+1) to n_out[r] and the number of draft ids
// kept to accepted[r]. A draft id outside [0, vocab), or a residual that is all zero, ends the
// row with id -1. Draws with rng[slot_of_row[r]] (null: slot = r); rows must be distinct slots.
void accept_reject(const float* p, const float* q, const int32_t* draft, int rows, int k, int vocab,
                   const int32_t* slot_of_row, RngState* rng, int32_t* out, int32_t* n_out, int32_t* accepted,
                   cudaStream_t stream);

// ---------------------------------------------------------------------------------------------
// Weight-only quantized matrix-vector products for decode (quant_gemv.cu), in the layouts of
// linear_weight.h: y[b, o] = sum_c x[b, c] * W[o, c] for b < batch (1..8), fp32 accumulation.
// x is [batch, in] and y [batch, out], both contiguous in the activation dtype (bf16 or fp32).
// Rows are read with 16-byte loads when the shapes and pointers allow it (in a multiple of the
// load width, 16-byte aligned pointers); otherwise an element-wise path gives the same result.

enum class ActDtype { f32, bf16 };

// W[o, c] = q[o, c] * scales[o]; q int8 [out, in], scales fp32 [out].
void gemv_int8(const int8_t* q, const float* scales, int out, int in, const void* x, void* y, int batch,
               ActDtype dtype, cudaStream_t stream);

// W[o, c] = (q[o, c] - 8) * s + z, (s, z) = scales_zeros[o, c / group, 0..1] (bf16 [out, K/group, 2]);
// q is packed uint8 [out, K/2], column 2j in the high nibble of byte j. K = padded_in (even,
// a multiple of group, >= in); group in {32, 64, 128, 256}; padded columns are never read.
void gemv_int4(const uint8_t* q, const uint16_t* scales_zeros, int out, int in, int padded_in, int group,
               const void* x, void* y, int batch, ActDtype dtype, cudaStream_t stream);

// Dense bf16 weight w [out, in].
void gemv_bf16(const uint16_t* w, int out, int in, const void* x, void* y, int batch, ActDtype dtype,
               cudaStream_t stream);

constexpr int kMaxGemvBatch = 8;

}  // namespace gptfast::cuda
