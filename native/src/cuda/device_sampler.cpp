#include "cuda/device_sampler.h"

#include <algorithm>
#include <string>

#include "errors.h"

namespace gptfast::cuda {

namespace {

void check(cudaError_t e, const char* what) { check_cuda(e, "device sampling", what); }

}  // namespace

template <class T>
DeviceSampler::Array<T> DeviceSampler::allocate(size_t n) {
  void* p = nullptr;
  check(cudaMalloc(&p, n * sizeof(T)), "cudaMalloc");
  return Array<T>(static_cast<T*>(p));
}

DeviceSampler::DeviceSampler(int slots, int vocab, cudaStream_t stream) : slots_(slots), vocab_(vocab) {
  if (slots < 1 || vocab < 1) {
    throw Error("device sampling: slots and vocab must be >= 1, got " + std::to_string(slots) + " and " +
                std::to_string(vocab));
  }
  const size_t cells = size_t(slots) * size_t(vocab);
  params_ = allocate<SamplingParams>(slots);
  rng_ = allocate<RngState>(slots);
  in_context_ = allocate<uint8_t>(cells);
  generated_count_ = allocate<int32_t>(cells);
  suppressed_ = allocate<uint8_t>(cells);
  check(cudaMemsetAsync(rng_.get(), 0, sizeof(RngState) * size_t(slots), stream), "cudaMemsetAsync");
  check(cudaMemsetAsync(in_context_.get(), 0, cells, stream), "cudaMemsetAsync");
  check(cudaMemsetAsync(generated_count_.get(), 0, cells * sizeof(int32_t), stream), "cudaMemsetAsync");
  check(cudaMemsetAsync(suppressed_.get(), 0, cells, stream), "cudaMemsetAsync");
  const std::vector<SamplingParams> greedy(slots, make_sampling_params(SamplingSpec{}));
  upload(params_.get(), greedy.data(), sizeof(SamplingParams) * greedy.size(), stream, "parameters");
  row_.assign(vocab, 0);
}

void DeviceSampler::check_slot(int slot) const {
  if (slot < 0 || slot >= slots_) {
    throw Error("device sampling: slot " + std::to_string(slot) + " is outside [0, " + std::to_string(slots_) + ")");
  }
}

// From pageable memory: cudaMemcpyAsync returns once the bytes are staged, so the source may be
// reused at once; the copy itself is ordered on `stream`.
void DeviceSampler::upload(void* device, const void* host, size_t bytes, cudaStream_t stream, const char* what) {
  check(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream), what);
}

void DeviceSampler::start(int slot, const SamplingSpec& spec, const int32_t* prompt, int n, cudaStream_t stream) {
  check_slot(slot);
  check_sampling(spec);
  for (int i = 0; i < n; ++i) {
    if (prompt[i] < 0 || prompt[i] >= vocab_) {
      throw Error("device sampling: prompt token " + std::to_string(prompt[i]) + " is outside the vocabulary [0, " +
                  std::to_string(vocab_) + ")");
    }
  }
  const size_t at = size_t(slot) * size_t(vocab_);
  const SamplingParams params = make_sampling_params(spec);
  const RngState rng{uint64_t(spec.seed), 0};
  upload(params_.get() + slot, &params, sizeof(params), stream, "parameters");
  upload(rng_.get() + slot, &rng, sizeof(rng), stream, "generator");
  std::fill(row_.begin(), row_.end(), 0);
  for (int i = 0; i < n; ++i) row_[prompt[i]] = 1;
  upload(in_context_.get() + at, row_.data(), row_.size(), stream, "context");
  check(cudaMemsetAsync(generated_count_.get() + at, 0, sizeof(int32_t) * size_t(vocab_), stream), "cudaMemsetAsync");
  check(cudaMemsetAsync(suppressed_.get() + at, 0, size_t(vocab_), stream), "cudaMemsetAsync");
}

void DeviceSampler::suppress(int slot, const int32_t* ids, int n, cudaStream_t stream) {
  check_slot(slot);
  std::fill(row_.begin(), row_.end(), 0);
  for (int i = 0; i < n; ++i) {
    if (ids[i] >= 0 && ids[i] < vocab_) row_[ids[i]] = 1;
  }
  upload(suppressed_.get() + size_t(slot) * size_t(vocab_), row_.data(), row_.size(), stream, "suppressed ids");
}

SamplingBatch DeviceSampler::batch(const float* logits, int rows, const int32_t* slot_of_row) const {
  SamplingBatch batch;
  batch.logits = logits;
  batch.rows = rows;
  batch.vocab = vocab_;
  batch.slot_of_row = slot_of_row;
  batch.params = params_.get();
  batch.history = {in_context_.get(), generated_count_.get(), suppressed_.get()};
  return batch;
}

void DeviceSampler::sample(const float* logits, int rows, const int32_t* slot_of_row, int32_t* tokens,
                           cudaStream_t stream) const {
  cuda::sample(batch(logits, rows, slot_of_row), rng_.get(), tokens, stream);
  record_generated(tokens, nullptr, 1, rows, slot_of_row, vocab_, in_context_.get(), generated_count_.get(), stream);
}

void DeviceSampler::distribution(const float* logits, int rows, const int32_t* slot_of_row, float* probs,
                                 cudaStream_t stream) const {
  sampling_distribution(batch(logits, rows, slot_of_row), probs, stream);
}

void DeviceSampler::draw(const float* probs, int rows, const int32_t* slot_of_row, int32_t* tokens,
                         cudaStream_t stream) const {
  sample_probs(probs, rows, vocab_, slot_of_row, rng_.get(), tokens, stream);
}

void DeviceSampler::accept(const float* p, const float* q, const int32_t* draft, int rows, int k,
                           const int32_t* slot_of_row, int32_t* out, int32_t* n_out, int32_t* accepted,
                           cudaStream_t stream) const {
  accept_reject(p, q, draft, rows, k, vocab_, slot_of_row, rng_.get(), out, n_out, accepted, stream);
  record_generated(out, n_out, k + 1, rows, slot_of_row, vocab_, in_context_.get(), generated_count_.get(), stream);
}

}  // namespace gptfast::cuda
