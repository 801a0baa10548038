// Static KV cache, in the model's dtype: per layer [slots, n_kv_heads, max_seq_len, head_dim],
// allocated once. Each slot holds one sequence of the session's batch. New keys/values are written
// in place at their positions; attention reads the prefix [0, context_len). Positions past the
// current one may hold stale data but are never read.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace gptfast {

class KVCache {
 public:
  // The bytes a cache of these sizes holds (keys and values of every layer), before making it.
  static int64_t planned_bytes(int64_t n_layer, int64_t batch, int64_t n_kv_heads, int64_t max_seq_len,
                               int64_t head_dim, at::ScalarType dtype) {
    return 2 * n_layer * batch * n_kv_heads * max_seq_len * head_dim * int64_t(c10::elementSize(dtype));
  }

  KVCache(int64_t n_layer, int64_t batch, int64_t n_kv_heads, int64_t max_seq_len, int64_t head_dim,
          at::TensorOptions options) {
    for (int64_t i = 0; i < n_layer; ++i) {
      keys_.push_back(at::zeros({batch, n_kv_heads, max_seq_len, head_dim}, options));
      values_.push_back(at::zeros({batch, n_kv_heads, max_seq_len, head_dim}, options));
    }
  }

  // k, v: [1, n_kv_heads, T, head_dim] written into `slot` at input_pos [T].
  void write(int64_t layer, int64_t slot, const at::Tensor& input_pos, const at::Tensor& k, const at::Tensor& v) {
    keys_[layer].narrow(0, slot, 1).index_copy_(2, input_pos, k);
    values_[layer].narrow(0, slot, 1).index_copy_(2, input_pos, v);
  }
  // Batched decode (Transformer::decode): row b's k, v [B, n_kv_heads, head_dim] go to slot
  // slots[b] at position positions[b]; `rows` = flat_rows(slots, positions), computed once per
  // step. index_copy_ with a precomputed index is a single kernel with no host synchronisation,
  // so it can be captured in a CUDA graph.
  at::Tensor flat_rows(const at::Tensor& slots, const at::Tensor& positions) const {
    const int64_t heads = keys_[0].size(1), len = keys_[0].size(2);
    at::Tensor head = at::arange(heads, slots.options());
    return ((slots.unsqueeze(1) * heads + head.unsqueeze(0)) * len + positions.unsqueeze(1)).flatten();
  }
  void write_rows(int64_t layer, const at::Tensor& rows, const at::Tensor& k, const at::Tensor& v) {
    const int64_t hd = keys_[0].size(3);
    keys_[layer].view({-1, hd}).index_copy_(0, rows, k.reshape({-1, hd}));
    values_[layer].view({-1, hd}).index_copy_(0, rows, v.reshape({-1, hd}));
  }
  // The whole cache of the given slots, [B, n_kv_heads, max_seq_len, head_dim] (a gathered copy).
  at::Tensor gather_keys(int64_t layer, const at::Tensor& slots) const { return keys_[layer].index_select(0, slots); }
  at::Tensor gather_values(int64_t layer, const at::Tensor& slots) const { return values_[layer].index_select(0, slots); }
  at::Tensor keys(int64_t layer, int64_t slot, int64_t context_len) const {
    return keys_[layer].narrow(0, slot, 1).narrow(2, 0, context_len);
  }
  at::Tensor values(int64_t layer, int64_t slot, int64_t context_len) const {
    return values_[layer].narrow(0, slot, 1).narrow(2, 0, context_len);
  }
  // Raw storage of one slot of one layer, [n_kv_heads, max_seq_len, head_dim] elements of dtype()
  // (fp32, or bf16 bits), for the fused step.
  void* key_data(int64_t layer, int64_t slot) { return slot_data(keys_[layer], slot); }
  void* value_data(int64_t layer, int64_t slot) { return slot_data(values_[layer], slot); }
  int64_t max_seq_len() const { return keys_.empty() ? 0 : keys_[0].size(2); }
  at::ScalarType dtype() const { return keys_[0].scalar_type(); }
  int64_t bytes() const {
    int64_t n = 0;
    for (size_t i = 0; i < keys_.size(); ++i) n += int64_t(keys_[i].nbytes() + values_[i].nbytes());
    return n;
  }

 private:
  int64_t slot_stride() const { return keys_[0].size(1) * keys_[0].size(2) * keys_[0].size(3); }
  void* slot_data(const at::Tensor& t, int64_t slot) const {
    return static_cast<char*>(t.data_ptr()) + slot * slot_stride() * int64_t(t.element_size());
  }
  std::vector<at::Tensor> keys_, values_;
};

}  // namespace gptfast
