#include "decode_step.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "matvec.h"

namespace gptfast {

namespace {

void rms_norm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(sum / float(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

// Adjacent-pair rotation of each head of v (heads * head_dim floats) by the table row of one position.
void rope(float* v, int64_t heads, int64_t head_dim, const float* table_row) {
  for (int64_t h = 0; h < heads; ++h) {
    float* x = v + h * head_dim;
    for (int64_t i = 0; i < head_dim / 2; ++i) {
      const float c = table_row[2 * i], s = table_row[2 * i + 1];
      const float x0 = x[2 * i], x1 = x[2 * i + 1];
      x[2 * i] = x0 * c - x1 * s;
      x[2 * i + 1] = x1 * c + x0 * s;
    }
  }
}

// Rows [begin, end) of out[t] = weight · x[t] for t < n, in the weight's own storage, on the calling thread.
void project_range(const LinearWeight& weight, const float* x, float* y, int64_t n, int64_t begin, int64_t end) {
  switch (weight.kind) {
    case WeightKind::int8:
      matmul_rows_range(Int8Rows{weight.weight.data_ptr<int8_t>(), weight.scales.data_ptr<float>()}, x, y,
                        weight.out, weight.in, n, begin, end);
      return;
    case WeightKind::int4:
      matmul_rows_range(Int4Rows{weight.weight.data_ptr<uint8_t>(), weight.weight.size(1),
                                 reinterpret_cast<const uint16_t*>(weight.scales.data_ptr<at::BFloat16>()),
                                 weight.scales.size(1) * 2, weight.group},
                        x, y, weight.out, weight.in, n, begin, end);
      return;
    case WeightKind::dense:
      if (weight.weight.scalar_type() == at::kBFloat16) {
        matmul_rows_range(reinterpret_cast<const uint16_t*>(weight.weight.data_ptr<at::BFloat16>()), x, y,
                          weight.out, weight.in, n, begin, end);
      } else {
        matmul_rows_range(weight.weight.data_ptr<float>(), x, y, weight.out, weight.in, n, begin, end);
      }
      return;
  }
}

// Rows split among the team in whole row blocks (one region; each row computed by one thread).
template <class F>
void for_row_blocks(ThreadTeam& team, int64_t rows, int64_t cols, int64_t n, F&& body) {
  const int64_t blocks = (rows + kMatvecRowBlock - 1) / kMatvecRowBlock;
  team.for_ranges(blocks, matvec_grain_blocks(cols, n), [&](int64_t b, int64_t e) {
    body(b * kMatvecRowBlock, std::min(rows, e * kMatvecRowBlock));
  });
}

// y[t] = weight · x[t] for the first n rows of x and y.
void project(ThreadTeam& team, const LinearWeight& weight, const float* x, float* y, int64_t n) {
  for_row_blocks(team, weight.out, weight.in, n,
                 [&](int64_t begin, int64_t end) { project_range(weight, x, y, n, begin, end); });
}

// Row `row` of an fp32 or bf16 matrix, as fp32.
void copy_row(const at::Tensor& matrix, int64_t row, float* out) {
  const int64_t cols = matrix.size(1);
  if (matrix.scalar_type() == at::kBFloat16) {
    const uint16_t* src = reinterpret_cast<const uint16_t*>(matrix.data_ptr<at::BFloat16>()) + row * cols;
    for (int64_t i = 0; i < cols; ++i) out[i] = bf16_to_float(src[i]);
  } else {
    std::copy_n(matrix.data_ptr<float>() + row * cols, cols, out);
  }
}

}  // namespace

bool FusedDecodeStep::supports(const Transformer& model) {
  const auto dtype = model.options().dtype();
  return (dtype == at::kFloat || dtype == at::kBFloat16) && model.options().device().is_cpu();
}

FusedDecodeStep::FusedDecodeStep(Transformer& model, int64_t max_tokens, int threads)
    : model_(model), spec_(model.spec()), max_tokens_(max_tokens), team_(threads) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const int64_t q_dim = int64_t(spec_.n_head) * spec_.head_dim;
  const int64_t kv_dim = int64_t(spec_.n_local_heads) * spec_.head_dim;
  const int64_t T = max_tokens;
  x_ = Buffer(at::empty({T, spec_.dim}, f32));
  xb_ = Buffer(at::empty({T, spec_.dim}, f32));
  qkv_ = Buffer(at::empty({T, q_dim + 2 * kv_dim}, f32));
  attn_out_ = Buffer(at::empty({T, q_dim}, f32));
  proj_ = Buffer(at::empty({T, spec_.dim}, f32));
  h1_ = Buffer(at::empty({T, spec_.intermediate_size}, f32));
  h3_ = Buffer(at::empty({T, spec_.intermediate_size}, f32));
  logits_ = Buffer(at::empty({T, spec_.vocab_size}, f32));
  for (int64_t l = 0; l < spec_.n_layer; ++l) {  // norm weights as fp32, once
    attention_norms_.emplace_back(model.layer(l).attention_norm.to(at::kFloat).contiguous());
    ffn_norms_.emplace_back(model.layer(l).ffn_norm.to(at::kFloat).contiguous());
  }
  final_norm_ = Buffer(model.norm().to(at::kFloat).contiguous());
  step_keys_.resize(T);
  step_values_.resize(T);
}

void FusedDecodeStep::attention(int64_t layer, const int32_t* slots, const int64_t* positions, int64_t n) {
  if (model_.cache().dtype() == at::kBFloat16) attention_over<uint16_t>(layer, slots, positions, n);
  else attention_over<float>(layer, slots, positions, n);
}

template <class W>
void FusedDecodeStep::attention_over(int64_t layer, const int32_t* slots, const int64_t* positions, int64_t n) {
  const int64_t hd = spec_.head_dim, n_head = spec_.n_head, n_kv = spec_.n_local_heads;
  const int64_t group = n_head / n_kv, q_dim = n_head * hd, kv_dim = n_kv * hd;
  const int64_t qkv_width = q_dim + 2 * kv_dim, max_seq = model_.max_seq_len();
  KVCache& cache = model_.cache();
  // Write every new key/value first: a token attends to earlier new tokens of its slot too.
  int64_t longest = 0;
  for (int64_t t = 0; t < n; ++t) {
    const float* k_new = qkv_.data + t * qkv_width + q_dim;
    const float* v_new = k_new + kv_dim;
    W* keys = static_cast<W*>(step_keys_[t] = cache.key_data(layer, slots[t]));
    W* values = static_cast<W*>(step_values_[t] = cache.value_data(layer, slots[t]));
    for (int64_t h = 0; h < n_kv; ++h) {  // slot layout [n_kv, max_seq, hd]
      W* k_at = keys + (h * max_seq + positions[t]) * hd;
      W* v_at = values + (h * max_seq + positions[t]) * hd;
      if constexpr (std::is_same_v<W, float>) {
        std::copy_n(k_new + h * hd, hd, k_at);
        std::copy_n(v_new + h * hd, hd, v_at);
      } else {
        for (int64_t i = 0; i < hd; ++i) k_at[i] = float_to_bf16(k_new[h * hd + i]);
        for (int64_t i = 0; i < hd; ++i) v_at[i] = float_to_bf16(v_new[h * hd + i]);
      }
    }
    longest = std::max(longest, positions[t] + 1);
  }
  const float scale = 1.0f / std::sqrt(float(hd));
  float* out = attn_out_.data;
  const float* q_all = qkv_.data;
  // One task per (token, head); split across threads only with enough work (~32K multiply-adds).
  const int64_t grain = std::max<int64_t>(1, 32768 / (longest * hd * 2));
  team_.for_ranges(n * n_head, grain, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t = task / n_head, h = task % n_head;  // causal: keys 0..positions[t]
      const int64_t kv_offset = (h / group) * max_seq * hd;  // query head h reads KV head h / group
      attend(q_all + t * qkv_width + h * hd, static_cast<const W*>(step_keys_[t]) + kv_offset,
             static_cast<const W*>(step_values_[t]) + kv_offset, hd, positions[t], scale, out + t * q_dim + h * hd);
    }
  });
}

void FusedDecodeStep::all_reduce_rows(int64_t n) {
  // Without TP the rank's heads are the model's (a tp >= 2 shard has fewer): nothing to sum, and
  // no view is made, so the single-rank step stays allocation-free.
  if (spec_.n_head == model_.full_spec().n_head) return;
  at::Tensor rows = proj_.tensor.narrow(0, 0, n);  // contiguous: the first n rows
  model_.all_reduce(rows);
}

const float* FusedDecodeStep::run(const int32_t* tokens, const int32_t* slots, const int64_t* positions, int64_t n,
                                  const int32_t* logit_rows, int64_t n_logits) {
  if (n < 1 || n > max_tokens_) throw Error("fused decode step takes 1.." + std::to_string(max_tokens_) + " tokens");
  const int64_t dim = spec_.dim, hd = spec_.head_dim, ffn = spec_.intermediate_size;
  const int64_t q_dim = int64_t(spec_.n_head) * hd, qkv_width = q_dim + 2 * int64_t(spec_.n_local_heads) * hd;
  const float eps = spec_.norm_eps;
  float* x = x_.data;
  float* xb = xb_.data;
  const float* table = model_.rope().data_ptr<float>();  // [max_seq, hd/2, 2]
  for (int64_t t = 0; t < n; ++t) {
    copy_row(model_.tok_embeddings(), tokens[t], x + t * dim);
  }
  for (int64_t l = 0; l < spec_.n_layer; ++l) {
    const LayerWeights& w = model_.layer(l);
    for (int64_t t = 0; t < n; ++t) rms_norm(x + t * dim, attention_norms_[l].data, xb + t * dim, dim, eps);
    project(team_, w.wqkv, xb, qkv_.data, n);
    for (int64_t t = 0; t < n; ++t) {
      float* q = qkv_.data + t * qkv_width;
      rope(q, spec_.n_head, hd, table + positions[t] * hd);
      rope(q + q_dim, spec_.n_local_heads, hd, table + positions[t] * hd);
    }
    attention(l, slots, positions, n);
    project(team_, w.wo, attn_out_.data, proj_.data, n);
    all_reduce_rows(n);
    const float* proj = proj_.data;
    for (int64_t i = 0; i < n * dim; ++i) x[i] += proj[i];

    for (int64_t t = 0; t < n; ++t) rms_norm(x + t * dim, ffn_norms_[l].data, xb + t * dim, dim, eps);
    // w1 and w3 in one region: each thread takes the same rows of both, then their SwiGLU.
    float* h1 = h1_.data;
    float* h3 = h3_.data;
    for_row_blocks(team_, ffn, 2 * dim, n, [&](int64_t begin, int64_t end) {
      project_range(w.w1, xb, h1, n, begin, end);
      project_range(w.w3, xb, h3, n, begin, end);
      for (int64_t t = 0; t < n; ++t) {
        float* a = h1 + t * ffn;
        const float* g = h3 + t * ffn;
        for (int64_t i = begin; i < end; ++i) a[i] = a[i] / (1.0f + std::exp(-a[i])) * g[i];  // silu(w1 x) * w3 x
      }
    });
    project(team_, w.w2, h1, proj_.data, n);
    all_reduce_rows(n);
    for (int64_t i = 0; i < n * dim; ++i) x[i] += proj[i];
  }
  if (n_logits < 0 || n_logits > n) throw Error("fused step: n_logits must be in [0, n]");
  for (int64_t r = 0; r < n_logits; ++r) {  // packed: row r of xb is token logit_rows[r]
    rms_norm(x + logit_rows[r] * dim, final_norm_.data, xb + r * dim, dim, eps);
  }
  if (n_logits > 0) project(team_, model_.output(), xb, logits_.data, n_logits);
  return logits_.data;
}

}  // namespace gptfast
