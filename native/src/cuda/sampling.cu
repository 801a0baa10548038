// Fused sampling of fp32 logits on the device, one block per row: penalties, greedy or top-k /
// temperature / top-p, and a seeded Philox draw, with the CPU Sampler's semantics (sampler.cpp).
// Nothing is sorted: the top-k pivot and the top-p edge are found by radix select over the
// logits' order-preserving keys, so a row costs a few passes over its logits (L2-resident at
// decode sizes) whatever k is.
#include <cuda_runtime.h>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace gptfast::cuda {
namespace {

constexpr int kThreads = 512;

// One row's logits after penalties and suppression, recomputed on every pass (cheaper than a
// scratch row, and keeps the kernel allocation-free). The explicit _rn operations keep nvcc from
// contracting them into FMAs, so the values equal the CPU Sampler's float arithmetic and stay the
// same in every pass.
struct Row {
  const float* logits;
  const uint8_t* in_context;
  const int32_t* generated_count;
  const uint8_t* suppressed;
  SamplingParams params;
  int vocab;

  __device__ float adjusted(int i) const {
    float l = logits[i];
    if (in_context != nullptr && params.repetition_penalty != 1.0f && in_context[i]) {
      l = l > 0 ? __fdiv_rn(l, params.repetition_penalty) : __fmul_rn(l, params.repetition_penalty);
    }
    if (generated_count != nullptr && generated_count[i] > 0) {
      l = __fsub_rn(l, __fadd_rn(params.presence_penalty, __fmul_rn(params.frequency_penalty, float(generated_count[i]))));
    }
    if (suppressed != nullptr && suppressed[i]) l = -INFINITY;
    return l;
  }
};

__device__ Row row_of(const SamplingBatch& b, int row, int slot) {
  const size_t offset = size_t(slot) * size_t(b.vocab);
  const SamplingHistory& h = b.history;
  return Row{b.logits + size_t(row) * size_t(b.vocab),
             h.in_context ? h.in_context + offset : nullptr,
             h.generated_count ? h.generated_count + offset : nullptr,
             h.suppressed ? h.suppressed + offset : nullptr,
             b.params[slot],
             b.vocab};
}

__device__ int slot_of(const int32_t* slot_of_row, int row) { return slot_of_row ? slot_of_row[row] : row; }

// Softmax weight relative to the maximum, exp((l - max) / T) in (0, 1], in fixed point.
__device__ uint64_t softmax_weight(float l, float max, float temperature) {
  return to_fixed(expf(__fdiv_rn(__fsub_rn(l, max), temperature)));
}

// What the processing decided for a row: either a single token (greedy, or -1 for nothing to
// sample) or a support with weights.
struct Support {
  int single = -1;  // valid when greedy or empty
  bool greedy_or_empty = true;
  float max = 0;
  uint32_t top_k_key = 0;  // keep keys >= this (0 keeps every finite logit)
  uint32_t top_p_key = 0;  // nucleus: keys > this, and ties with it up to id top_p_last_tie
  int top_p_last_tie = INT_MAX;

  // Element i's weight, 0 outside the support. *key gets its logit's key when the weight is
  // nonzero (select_descending reads it only then).
  __device__ uint64_t weight(const Row& row, int i, uint32_t* key) const {
    const float l = row.adjusted(i);
    if (!isfinite(l)) return 0;
    const uint32_t k = order_key(l);
    if (k < top_k_key || k < top_p_key || (k == top_p_key && i > top_p_last_tie)) return 0;
    *key = k;
    return softmax_weight(l, max, row.params.temperature);
  }
  __device__ uint64_t weight(const Row& row, int i) const {
    uint32_t key;
    return weight(row, i, &key);
  }
};

// The whole block computes the row's support (every thread gets the same result).
__device__ Support process(const Row& row, BlockScratch& s) {
  const int n = row.vocab;
  Support sup;
  float best = -INFINITY;
  int best_index = INT_MAX;
  uint64_t finite = 0;
  for (int i = threadIdx.x; i < n; i += kThreads) {
    const float l = row.adjusted(i);
    if (!isfinite(l)) continue;
    ++finite;
    if (l > best) {  // a thread visits ids in increasing order, so the first maximum stays
      best = l;
      best_index = i;
    }
  }
  block_argmax<kThreads>(best, best_index, s);
  finite = block_sum<kThreads>(finite, s);
  if (best_index == INT_MAX) return sup;  // nothing finite: nothing to sample
  sup.single = best_index;
  if (row.params.temperature == 0.0f) return sup;  // greedy: the first maximum
  sup.greedy_or_empty = false;
  sup.max = best;

  const int top_k = row.params.top_k;
  uint64_t rest;
  if (top_k > 0 && uint64_t(top_k) < finite) {  // the k-th largest logit; ties with it stay
    sup.top_k_key = select_descending<kThreads>(
        n,
        [&](int i, uint32_t* key) -> uint64_t {
          const float l = row.adjusted(i);
          if (!isfinite(l)) return 0;
          *key = order_key(l);
          return 1;
        },
        uint64_t(top_k), s, &rest);
  }
  if (row.params.top_p < 1.0f) {
    // Nucleus: the smallest most-probable set whose mass reaches top_p of the total, found as the
    // key where the mass counted from the top crosses it.
    uint64_t mine = 0;
    for (int i = threadIdx.x; i < n; i += kThreads) mine += sup.weight(row, i);
    const uint64_t total = block_sum<kThreads>(mine, s);
    uint64_t target = uint64_t(ceil(double(row.params.top_p) * double(total)));
    target = target < 1 ? 1 : (target > total ? total : target);
    const uint64_t edge = select_descending<kThreads>(
        n, [&](int i, uint32_t* key) { return sup.weight(row, i, key); }, target, s, &rest);
    // Ties at the edge all weigh the same; take as many as the remaining mass needs, lowest ids
    // first (the CPU takes them in its sort order, which the distribution does not depend on).
    const uint64_t tie_weight = softmax_weight(key_to_float(edge), sup.max, row.params.temperature);
    uint64_t ties = 0;
    for (int i = threadIdx.x; i < n; i += kThreads) {
      uint32_t key;
      if (sup.weight(row, i, &key) != 0 && key == edge) ++ties;
    }
    ties = block_sum<kThreads>(ties, s);
    const uint64_t needed = (rest + tie_weight - 1) / tie_weight;
    sup.top_p_key = edge;
    if (needed < ties) {  // the needed-th smallest id among the ties is the last one kept
      const uint32_t last = select_descending<kThreads>(
          n,
          [&](int i, uint32_t* key) -> uint64_t {
            uint32_t k;
            if (sup.weight(row, i, &k) == 0 || k != edge) return 0;  // ties (top_p_last_tie still unset)
            *key = ~uint32_t(i);
            return 1;
          },
          needed, s, &rest);
      sup.top_p_last_tie = int(~last);
    }
  }
  return sup;
}

__global__ void __launch_bounds__(kThreads) sample_kernel(SamplingBatch batch, RngState* rng, int32_t* tokens) {
  __shared__ BlockScratch s;
  const int row_index = blockIdx.x, slot = slot_of(batch.slot_of_row, row_index);
  const Row row = row_of(batch, row_index, slot);
  const RngState state = rng[slot];  // every thread reads it before thread 0 advances it below
  const Support sup = process(row, s);
  int token = sup.single;
  if (!sup.greedy_or_empty) {
    token = draw_fixed<kThreads>(
        row.vocab, [&](int i) { return sup.weight(row, i); }, philox_bits(state.seed, state.counter, 0), s);
  }
  if (threadIdx.x == 0) {
    tokens[row_index] = token;
    rng[slot].counter = state.counter + 1;
  }
}

__global__ void __launch_bounds__(kThreads) distribution_kernel(SamplingBatch batch, float* probs) {
  __shared__ BlockScratch s;
  const int row_index = blockIdx.x;
  const Row row = row_of(batch, row_index, slot_of(batch.slot_of_row, row_index));
  const Support sup = process(row, s);
  float* out = probs + size_t(row_index) * size_t(row.vocab);
  if (sup.greedy_or_empty) {
    for (int i = threadIdx.x; i < row.vocab; i += kThreads) out[i] = i == sup.single ? 1.0f : 0.0f;
    return;
  }
  uint64_t mine = 0;
  for (int i = threadIdx.x; i < row.vocab; i += kThreads) mine += sup.weight(row, i);
  const double total = double(block_sum<kThreads>(mine, s));
  for (int i = threadIdx.x; i < row.vocab; i += kThreads) out[i] = float(double(sup.weight(row, i)) / total);
}

__global__ void __launch_bounds__(kThreads)
    sample_probs_kernel(const float* probs, int vocab, const int32_t* slot_of_row, RngState* rng, int32_t* tokens) {
  __shared__ BlockScratch s;
  const int row_index = blockIdx.x, slot = slot_of(slot_of_row, row_index);
  const float* p = probs + size_t(row_index) * size_t(vocab);
  const RngState state = rng[slot];
  const int token = draw_fixed<kThreads>(
      vocab, [&](int i) { return to_fixed(p[i]); }, philox_bits(state.seed, state.counter, 0), s);
  if (threadIdx.x == 0) {
    tokens[row_index] = token;
    rng[slot].counter = state.counter + 1;
  }
}

__global__ void record_generated_kernel(const int32_t* tokens, const int32_t* counts, int stride,
                                        const int32_t* slot_of_row, int vocab, uint8_t* in_context,
                                        int32_t* generated_count) {
  const int row = blockIdx.x, slot = slot_of(slot_of_row, row);
  int n = counts ? counts[row] : 1;
  n = n < 0 ? 0 : (n > stride ? stride : n);
  for (int j = threadIdx.x; j < n; j += blockDim.x) {
    const int32_t token = tokens[size_t(row) * size_t(stride) + j];
    if (token < 0 || token >= vocab) continue;
    const size_t at = size_t(slot) * size_t(vocab) + size_t(token);
    if (in_context) in_context[at] = 1;
    if (generated_count) atomicAdd(&generated_count[at], 1);  // a token may repeat within a row
  }
}

void check_batch(const SamplingBatch& b, const char* kernel) {
  require(b.rows >= 0, kernel, "rows must be >= 0, got " + std::to_string(b.rows));
  require(b.vocab > 0 && b.vocab <= (1 << 23), kernel,
          "vocab must be in [1, 2^23] (fixed-point sums), got " + std::to_string(b.vocab));
  require(b.logits != nullptr, kernel, "logits is null");
  require(b.params != nullptr, kernel, "params is null");
}

}  // namespace

void sample(const SamplingBatch& batch, RngState* rng, int32_t* tokens, cudaStream_t stream) {
  constexpr const char* kName = "sample";
  check_batch(batch, kName);
  require(rng != nullptr, kName, "rng is null");
  require(tokens != nullptr, kName, "tokens is null");
  if (batch.rows == 0) return;
  sample_kernel<<<batch.rows, kThreads, 0, stream>>>(batch, rng, tokens);
  check_launch(kName);
}

void sampling_distribution(const SamplingBatch& batch, float* probs, cudaStream_t stream) {
  constexpr const char* kName = "sampling_distribution";
  check_batch(batch, kName);
  require(probs != nullptr, kName, "probs is null");
  if (batch.rows == 0) return;
  distribution_kernel<<<batch.rows, kThreads, 0, stream>>>(batch, probs);
  check_launch(kName);
}

void sample_probs(const float* probs, int rows, int vocab, const int32_t* slot_of_row, RngState* rng,
                  int32_t* tokens, cudaStream_t stream) {
  constexpr const char* kName = "sample_probs";
  require(rows >= 0, kName, "rows must be >= 0, got " + std::to_string(rows));
  require(vocab > 0 && vocab <= (1 << 23), kName, "vocab must be in [1, 2^23], got " + std::to_string(vocab));
  require(probs != nullptr && rng != nullptr && tokens != nullptr, kName, "probs, rng and tokens must not be null");
  if (rows == 0) return;
  sample_probs_kernel<<<rows, kThreads, 0, stream>>>(probs, vocab, slot_of_row, rng, tokens);
  check_launch(kName);
}

void record_generated(const int32_t* tokens, const int32_t* counts, int stride, int rows, const int32_t* slot_of_row,
                      int vocab, uint8_t* in_context, int32_t* generated_count, cudaStream_t stream) {
  constexpr const char* kName = "record_generated";
  require(rows >= 0, kName, "rows must be >= 0, got " + std::to_string(rows));
  require(stride >= 1, kName, "stride must be >= 1, got " + std::to_string(stride));
  require(vocab > 0, kName, "vocab must be > 0, got " + std::to_string(vocab));
  require(tokens != nullptr, kName, "tokens is null");
  if (rows == 0 || (in_context == nullptr && generated_count == nullptr)) return;
  record_generated_kernel<<<rows, 32, 0, stream>>>(tokens, counts, stride, slot_of_row, vocab, in_context,
                                                   generated_count);
  check_launch(kName);
}

}  // namespace gptfast::cuda
