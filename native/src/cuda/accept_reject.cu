// Speculative accept/reject on the device, one block per sequence and one launch per round: the
// rule of accept_or_resample (speculative_sampling.cpp). Draft id i is kept with probability
// min(1, p_i(x) / q_i(x)); at the first rejection the id is redrawn from normalize(max(0, p - q)),
// and if all k are kept a bonus id is drawn from p_k. The k acceptance tests use independent draws
// (Philox draw indices 0..k-1), so they run in parallel; the first failing one decides, as the
// CPU's sequential loop does. The redraw uses draw index k.
#include <cuda_runtime.h>

#include "cuda/common.cuh"
#include "cuda/kernels.h"

namespace gptfast::cuda {
namespace {

constexpr int kThreads = 512;

__global__ void __launch_bounds__(kThreads)
    accept_reject_kernel(const float* p, const float* q, const int32_t* draft, int k, int vocab,
                         const int32_t* slot_of_row, RngState* rng, int32_t* out, int32_t* n_out,
                         int32_t* accepted) {
  __shared__ BlockScratch s;
  __shared__ int first_rejected;
  const int row = blockIdx.x, slot = slot_of_row ? slot_of_row[row] : row;
  const size_t v = size_t(vocab);
  const float* P = p + size_t(row) * size_t(k + 1) * v;
  const float* Q = q + size_t(row) * size_t(k) * v;
  const int32_t* D = draft + size_t(row) * size_t(k);
  int32_t* O = out + size_t(row) * size_t(k + 1);
  const RngState state = rng[slot];  // read by every thread before thread 0 advances it below

  if (threadIdx.x == 0) first_rejected = k;
  __syncthreads();
  for (int i = threadIdx.x; i < k; i += kThreads) {
    const int32_t x = D[i];
    bool keep = false;  // an id outside the vocabulary ends the round (with -1 below)
    if (x >= 0 && x < vocab) {
      const float px = P[size_t(i) * v + x], qx = Q[size_t(i) * v + x];
      // q(x) > 0 because x was drawn from q; as on the CPU, q(x) <= 0 accepts.
      keep = qx <= 0 || bits_to_uniform(philox_bits(state.seed, state.counter, uint32_t(i))) * qx < px;
    }
    if (!keep) atomicMin(&first_rejected, i);
  }
  __syncthreads();
  const int j = first_rejected;
  for (int i = threadIdx.x; i < j; i += kThreads) O[i] = D[i];
  int token = -1;
  const bool bad_draft = j < k && (D[j] < 0 || D[j] >= vocab);
  if (!bad_draft) {
    const uint64_t bits = philox_bits(state.seed, state.counter, uint32_t(k));
    const float* Pj = P + size_t(j) * v;
    if (j < k) {  // residual max(0, p - q), in the CPU's float arithmetic
      const float* Qj = Q + size_t(j) * v;
      token = draw_fixed<kThreads>(vocab, [&](int t) { return to_fixed(__fsub_rn(Pj[t], Qj[t])); }, bits, s);
    } else {  // every draft id kept: the bonus token from p_k
      token = draw_fixed<kThreads>(vocab, [&](int t) { return to_fixed(Pj[t]); }, bits, s);
    }
  }
  if (threadIdx.x == 0) {
    O[j] = token;
    n_out[row] = j + 1;
    accepted[row] = j;
    rng[slot].counter = state.counter + 1;
  }
}

}  // namespace

void accept_reject(const float* p, const float* q, const int32_t* draft, int rows, int k, int vocab,
                   const int32_t* slot_of_row, RngState* rng, int32_t* out, int32_t* n_out, int32_t* accepted,
                   cudaStream_t stream) {
  constexpr const char* kName = "accept_reject";
  require(rows >= 0, kName, "rows must be >= 0, got " + std::to_string(rows));
  require(k >= 0, kName, "k must be >= 0, got " + std::to_string(k));
  require(vocab > 0 && vocab <= (1 << 23), kName, "vocab must be in [1, 2^23], got " + std::to_string(vocab));
  require(p != nullptr && rng != nullptr && out != nullptr && n_out != nullptr && accepted != nullptr, kName,
          "p, rng, out, n_out and accepted must not be null");
  require(k == 0 || (q != nullptr && draft != nullptr), kName, "q and draft must not be null when k > 0");
  if (rows == 0) return;
  accept_reject_kernel<<<rows, kThreads, 0, stream>>>(p, q, draft, k, vocab, slot_of_row, rng, out, n_out,
                                                      accepted);
  check_launch(kName);
}

}  // namespace gptfast::cuda
