#include "batch.h"

#include <string>

namespace gptfast {

BatchState::BatchState(const std::string& path, const std::string& format, const ModelSpec& spec,
                       const RuntimeSpec& runtime, int max_batch)
    : runtime_(runtime),
      model_(spec, load_checkpoint(path, format, spec), tensor_options(runtime), cache_length(spec, runtime),
             (max_batch >= 1 && max_batch <= 256) ? max_batch
                                                 : throw Error("max_batch must be in [1, 256], got " +
                                                               std::to_string(max_batch))),
      slots_(max_batch) {
  if (use_fused_decode(model_)) fused_.emplace(model_, max_batch);
  for (Slot& s : slots_) s.sampler.configure(SamplingSpec{}, spec.vocab_size);
  lane_positions_.assign(max_batch, 0);
  seen_.assign(max_batch, 0);
}

BatchState::Slot& BatchState::slot_at(int slot) {
  if (slot < 0 || slot >= max_batch()) {
    throw Error("slot " + std::to_string(slot) + " is outside [0, " + std::to_string(max_batch()) + ")");
  }
  return slots_[slot];
}

const BatchState::Slot& BatchState::slot_at(int slot) const { return const_cast<BatchState*>(this)->slot_at(slot); }

void BatchState::check_token(int32_t token) const {
  if (token < 0 || token >= model_.spec().vocab_size) {
    throw Error("token id " + std::to_string(token) + " is outside the vocabulary [0, " +
                std::to_string(model_.spec().vocab_size) + ")");
  }
}

void BatchState::set_sampling(int slot, const SamplingSpec& sampling) {
  Slot& s = slot_at(slot);
  if (s.active) throw Error("slot " + std::to_string(slot) + " is busy");
  s.sampler.configure(sampling, model_.spec().vocab_size);
}

int BatchState::start(int slot, const int32_t* tokens, int n) {
  Slot& s = slot_at(slot);
  if (s.active) throw Error("slot " + std::to_string(slot) + " is busy");
  if (n <= 0) throw Error("prompt is empty: at least one token (BOS) is needed");
  if (n > max_seq_len()) {
    throw Error("prompt has " + std::to_string(n) + " tokens, more than the context length " +
                std::to_string(max_seq_len()));
  }
  for (int i = 0; i < n; ++i) check_token(tokens[i]);
  at::Tensor ids = at::from_blob(const_cast<int32_t*>(tokens), {1, n}, at::kInt).to(model_.options().dtype(at::kLong));
  at::Tensor logits = model_.forward(ids, 0, false, slot).cpu().contiguous();
  s.position = n;
  s.active = true;
  s.sampler.reset_history(tokens, n);
  const int next = s.sampler.sample(logits.data_ptr<float>());
  s.sampler.record_generated(next);
  return next;
}

void BatchState::suppress(int slot, const int32_t* ids, int n) { slot_at(slot).sampler.set_suppressed(ids, n); }

void BatchState::step(const int32_t* slots, const int32_t* tokens, int n, int32_t* next) {
  if (n < 1 || n > max_batch()) throw Error("a batch step takes 1.." + std::to_string(max_batch()) + " slots");
  std::fill(seen_.begin(), seen_.end(), 0);
  for (int i = 0; i < n; ++i) {
    Slot& s = slot_at(slots[i]);
    if (!s.active) throw Error("slot " + std::to_string(slots[i]) + " has no sequence (start it first)");
    if (seen_[slots[i]]++) throw Error("slot " + std::to_string(slots[i]) + " appears twice in one step");
    if (s.position >= max_seq_len()) {
      throw Error("slot " + std::to_string(slots[i]) + ": context is full (" + std::to_string(max_seq_len()) + " tokens)");
    }
    check_token(tokens[i]);
    lane_positions_[i] = s.position;
  }
  const int64_t vocab = model_.spec().vocab_size;
  if (fused_) {
    const float* logits = fused_->run(tokens, slots, lane_positions_.data(), n);
    for (int i = 0; i < n; ++i) {
      Slot& s = slots_[slots[i]];
      s.position += 1;
      next[i] = s.sampler.sample(logits + i * vocab);
      s.sampler.record_generated(next[i]);
    }
    return;
  }
  for (int i = 0; i < n; ++i) {  // other dtypes/devices: one ATen pass per slot
    Slot& s = slots_[slots[i]];
    at::Tensor id = at::full({1, 1}, int64_t(tokens[i]), model_.options().dtype(at::kLong));
    at::Tensor logits = model_.forward(id, s.position, false, slots[i]).cpu().contiguous();
    s.position += 1;
    next[i] = s.sampler.sample(logits.data_ptr<float>());
    s.sampler.record_generated(next[i]);
  }
}

void BatchState::release(int slot) {
  Slot& s = slot_at(slot);
  s.active = false;
  s.position = 0;
}

}  // namespace gptfast
