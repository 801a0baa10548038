#include "decode_step.h"

#include <ATen/Parallel.h>

#include <cmath>

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

void project(const at::Tensor& weight, const at::Tensor& in, at::Tensor& out) {
  matvec(weight.data_ptr<float>(), in.data_ptr<float>(), out.data_ptr<float>(), weight.size(0), weight.size(1));
}

}  // namespace

bool FusedDecodeStep::supports(const Transformer& model) {
  return model.options().dtype() == at::kFloat && model.options().device().is_cpu();
}

FusedDecodeStep::FusedDecodeStep(Transformer& model) : model_(model), spec_(model.spec()) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  const int64_t q_dim = int64_t(spec_.n_head) * spec_.head_dim;
  const int64_t kv_dim = int64_t(spec_.n_local_heads) * spec_.head_dim;
  x_ = at::empty({spec_.dim}, f32);
  xb_ = at::empty({spec_.dim}, f32);
  qkv_ = at::empty({q_dim + 2 * kv_dim}, f32);
  attn_out_ = at::empty({q_dim}, f32);
  proj_ = at::empty({spec_.dim}, f32);
  h1_ = at::empty({spec_.intermediate_size}, f32);
  h3_ = at::empty({spec_.intermediate_size}, f32);
  logits_ = at::empty({spec_.vocab_size}, f32);
  scores_ = at::empty({int64_t(spec_.n_head), model.max_seq_len()}, f32);
}

void FusedDecodeStep::attention(int64_t layer, int64_t pos) {
  const int64_t hd = spec_.head_dim, n_kv = spec_.n_local_heads, group = spec_.n_head / spec_.n_local_heads;
  const int64_t q_dim = int64_t(spec_.n_head) * hd, kv_dim = n_kv * hd, max_seq = model_.max_seq_len();
  float* q = qkv_.data_ptr<float>();
  const float* k_new = q + q_dim;
  const float* v_new = k_new + kv_dim;
  float* keys = model_.cache().key_data(layer);
  float* values = model_.cache().value_data(layer);
  for (int64_t h = 0; h < n_kv; ++h) {  // cache layout [1, n_kv, max_seq, hd]
    std::copy_n(k_new + h * hd, hd, keys + (h * max_seq + pos) * hd);
    std::copy_n(v_new + h * hd, hd, values + (h * max_seq + pos) * hd);
  }
  const float scale = 1.0f / std::sqrt(float(hd));
  float* out = attn_out_.data_ptr<float>();
  float* scores_all = scores_.data_ptr<float>();
  // Split heads across threads only when each task has enough work (~32K multiply-adds).
  const int64_t grain = std::max<int64_t>(1, 32768 / ((pos + 1) * hd * 2));
  at::parallel_for(0, spec_.n_head, grain, [&](int64_t begin, int64_t end) {
    for (int64_t h = begin; h < end; ++h) {
      const float* qh = q + h * hd;
      const float* kh = keys + (h / group) * max_seq * hd;  // query head h reads KV head h / group
      const float* vh = values + (h / group) * max_seq * hd;
      float* scores = scores_all + h * max_seq;
      float max_score = -INFINITY;
      for (int64_t t = 0; t <= pos; ++t) {
        float dot = 0;
        for (int64_t i = 0; i < hd; ++i) dot += qh[i] * kh[t * hd + i];
        scores[t] = dot * scale;
        max_score = std::max(max_score, scores[t]);
      }
      float total = 0;
      for (int64_t t = 0; t <= pos; ++t) total += scores[t] = std::exp(scores[t] - max_score);
      float* oh = out + h * hd;
      std::fill_n(oh, hd, 0.0f);
      for (int64_t t = 0; t <= pos; ++t) {
        const float p = scores[t] / total;
        for (int64_t i = 0; i < hd; ++i) oh[i] += p * vh[t * hd + i];
      }
    }
  });
}

const float* FusedDecodeStep::run(int32_t token, int64_t pos) {
  const int64_t dim = spec_.dim, hd = spec_.head_dim, ffn = spec_.intermediate_size;
  const float eps = spec_.norm_eps;
  float* x = x_.data_ptr<float>();
  float* xb = xb_.data_ptr<float>();
  std::copy_n(model_.tok_embeddings().data_ptr<float>() + int64_t(token) * dim, dim, x);
  const float* table_row = model_.rope().data_ptr<float>() + pos * hd;  // [max_seq, hd/2, 2]
  for (int64_t l = 0; l < spec_.n_layer; ++l) {
    const LayerWeights& w = model_.layer(l);
    rms_norm(x, w.attention_norm.data_ptr<float>(), xb, dim, eps);
    project(w.wqkv, xb_, qkv_);
    float* q = qkv_.data_ptr<float>();
    rope(q, spec_.n_head, hd, table_row);
    rope(q + int64_t(spec_.n_head) * hd, spec_.n_local_heads, hd, table_row);
    attention(l, pos);
    project(w.wo, attn_out_, proj_);
    const float* proj = proj_.data_ptr<float>();
    for (int64_t i = 0; i < dim; ++i) x[i] += proj[i];

    rms_norm(x, w.ffn_norm.data_ptr<float>(), xb, dim, eps);
    project(w.w1, xb_, h1_);
    project(w.w3, xb_, h3_);
    float* h1 = h1_.data_ptr<float>();
    const float* h3 = h3_.data_ptr<float>();
    for (int64_t i = 0; i < ffn; ++i) h1[i] = h1[i] / (1.0f + std::exp(-h1[i])) * h3[i];  // silu(w1 x) * w3 x
    project(w.w2, h1_, proj_);
    for (int64_t i = 0; i < dim; ++i) x[i] += proj[i];
  }
  rms_norm(x, model_.norm().data_ptr<float>(), xb, dim, eps);
  project(model_.output(), xb_, logits_);
  return logits_.data_ptr<float>();
}

}  // namespace gptfast
