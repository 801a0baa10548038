// The state behind BatchedEngine: a transformer whose KV cache has one slot per sequence, the
// fused step that decodes a token of each active slot in one pass, and per-slot samplers.
#pragma once

#include <optional>
#include <vector>

#include "decode_step.h"
#include "sampler.h"
#include "session.h"
#include "transformer.h"

namespace gptfast {

class BatchState {
 public:
  BatchState(const std::string& path, const std::string& format, const ModelSpec& spec, const RuntimeSpec& runtime,
             int max_batch);

  void set_sampling(int slot, const SamplingSpec& sampling);
  int start(int slot, const int32_t* tokens, int n);
  void suppress(int slot, const int32_t* ids, int n);
  void step(const int32_t* slots, const int32_t* tokens, int n, int32_t* next);
  void release(int slot);

  int max_batch() const { return int(slots_.size()); }
  int64_t max_seq_len() const { return model_.max_seq_len(); }
  int64_t position(int slot) const { return slot_at(slot).position; }
  const RuntimeSpec& runtime() const { return runtime_; }
  bool fused() const { return fused_.has_value(); }

 private:
  struct Slot {
    bool active = false;
    int64_t position = 0;
    Sampler sampler;
  };
  Slot& slot_at(int slot);
  const Slot& slot_at(int slot) const;
  void check_token(int32_t token) const;

  RuntimeSpec runtime_;
  Transformer model_;
  std::optional<FusedDecodeStep> fused_;
  std::vector<Slot> slots_;
  std::vector<int64_t> lane_positions_;  // sized once: no allocation per step
  std::vector<uint8_t> seen_;
};

}  // namespace gptfast
