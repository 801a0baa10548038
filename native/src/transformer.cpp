#include "transformer.h"

#include <cstdlib>

#include <sstream>

#include "dist/communicator.h"
#include "rope.h"

#if GPTFAST_WITH_CUDA
#include "cuda/quant_linear.h"
#endif

namespace gptfast {


void check_model(const ModelSpec& s) {
  auto positive = [](int v, const char* name) {
    if (v <= 0) throw Error(std::string("model config: ") + name + " must be positive, got " + std::to_string(v));
  };
  positive(s.dim, "dim");
  positive(s.n_layer, "n_layer");
  positive(s.n_head, "n_head");
  positive(s.n_local_heads, "n_local_heads");
  positive(s.head_dim, "head_dim");
  positive(s.intermediate_size, "intermediate_size");
  positive(s.vocab_size, "vocab_size");
  positive(s.block_size, "block_size");
  if (s.n_head % s.n_local_heads != 0) {
    throw Error("model config: n_head " + std::to_string(s.n_head) + " is not a multiple of n_local_heads " +
                std::to_string(s.n_local_heads));
  }
  if (s.head_dim % 2 != 0) throw Error("model config: head_dim must be even for RoPE, got " + std::to_string(s.head_dim));
  if (!(s.rope_base > 0) || !(s.norm_eps > 0)) throw Error("model config: rope_base and norm_eps must be positive");
}
ModelSpec shard_spec(const ModelSpec& spec, int tp) {
  check_model(spec);
  if (tp < 1) throw Error("tensor parallel size must be >= 1, got " + std::to_string(tp));
  auto divide = [tp](int v, const char* name) {
    if (v % tp != 0) {
      throw Error(std::string("tensor parallelism: ") + name + " " + std::to_string(v) + " is not divisible by tp " +
                  std::to_string(tp));
    }
    return v / tp;
  };
  ModelSpec local = spec;
  local.n_head = divide(spec.n_head, "n_head");
  local.n_local_heads = divide(spec.n_local_heads, "n_local_heads (KV heads)");
  local.intermediate_size = divide(spec.intermediate_size, "intermediate_size");
  return local;
}

Transformer::Transformer(const ModelSpec& spec, StateDict w, at::TensorOptions options, const QuantSpec& quant,
                         int64_t max_seq_len, int64_t slots, Communicator* comm)
    : full_spec_((check_model(spec), spec)),
      spec_(shard_spec(spec, comm ? comm->size() : 1)),
      comm_(comm),
      options_(options),
      // The cache holds keys and values in the model's dtype, as GPT-Fast's does: bf16 halves its
      // memory and the bytes attention reads per token. (On the CPU the activations stay fp32:
      // keys and values are rounded to bf16 as they are stored and widened as they are read.)
      cache_(spec.n_layer, slots, spec_.n_local_heads, max_seq_len, spec.head_dim, options) {
#if GPTFAST_WITH_CUDA
  if (options.device().is_cuda()) quant_matmul_ = quant_matmul_name(quant_matmul_from_env());
#endif
  const int64_t dim = spec.dim, hd = spec.head_dim, ffn = spec.intermediate_size;
  const int64_t q_dim = int64_t(spec.n_head) * hd, kv_dim = int64_t(spec.n_local_heads) * hd;
  // This rank's slices: rank r of tp holds heads [r*n/tp, (r+1)*n/tp) and FFN units likewise.
  const int64_t tp = comm ? comm->size() : 1, r = comm ? comm->rank() : 0;
  const int64_t q_local = q_dim / tp, kv_local = kv_dim / tp, ffn_local = ffn / tp;
  // tp.py's cuts, made by take_linear before anything is copied out of the checkpoint.
  const Shard whole;
  auto rows = [&](std::vector<std::pair<int64_t, int64_t>> ranges) { return tp == 1 ? whole : Shard{std::move(ranges)}; };
  auto columns = [&](int64_t width) { return tp == 1 ? whole : Shard{{}, r * width, width}; };
  tok_embeddings_ = take_tensor(w, "tok_embeddings.weight", {spec.vocab_size, dim}, options);
  for (int i = 0; i < spec.n_layer; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    LayerWeights l;
    l.attention_norm = take_tensor(w, p + "attention_norm.weight", {dim}, options);
    l.wqkv = take_linear(w, p + "attention.wqkv", q_dim + 2 * kv_dim, dim, quant,
                         rows({{r * q_local, q_local}, {q_dim + r * kv_local, kv_local},
                               {q_dim + kv_dim + r * kv_local, kv_local}}));
    l.wo = take_linear(w, p + "attention.wo", dim, q_dim, quant, columns(q_local));
    l.ffn_norm = take_tensor(w, p + "ffn_norm.weight", {dim}, options);
    l.w1 = take_linear(w, p + "feed_forward.w1", ffn, dim, quant, rows({{r * ffn_local, ffn_local}}));
    l.w2 = take_linear(w, p + "feed_forward.w2", dim, ffn, quant, columns(ffn_local));
    l.w3 = take_linear(w, p + "feed_forward.w3", ffn, dim, quant, rows({{r * ffn_local, ffn_local}}));
    layers_.push_back(std::move(l));
  }
  if (w.count("layers." + std::to_string(spec.n_layer) + ".attention_norm.weight")) {
    throw Error("checkpoint has more layers than the model config's n_layer " + std::to_string(spec.n_layer));
  }
  norm_ = take_tensor(w, "norm.weight", {dim}, options);
  output_ = take_linear(w, "output", spec.vocab_size, dim, quant, whole);  // replicated
  rope_ = rope_table(spec, max_seq_len).to(options.device());
}

LinearWeight Transformer::take_linear(StateDict& w, const std::string& name, int64_t out, int64_t in,
                                      const QuantSpec& quant, const Shard& shard) {
  // Large CPU weights land in 2 MiB pages (copy_weights): decode streams each once per token.
  LinearWeight lw = gptfast::take_linear(w, name, out, in, options_, quant, shard);
  // One storage per model: a checkpoint quantizes every Linear layer or none.
  const std::string kind = QuantSpec{lw.kind, int(lw.group)}.name();
  if (name != "layers.0.attention.wqkv" && kind != quantization_) {
    throw Error("layer '" + name + "' is stored as " + (kind.empty() ? "dense" : kind) + " but earlier layers as " +
                (quantization_.empty() ? "dense" : quantization_) + "; mixed checkpoints are not supported");
  }
  quantization_ = kind;
#if GPTFAST_WITH_CUDA
  if (quant_matmul_ == "aten") add_aten_layout(lw, name, c10::typeMetaToScalarType(options_.dtype()));
#endif
  return lw;
}

void Transformer::all_reduce(at::Tensor& partial) const {
  if (comm_) comm_->all_reduce(partial);
}

int64_t Transformer::weight_bytes() const {
  int64_t bytes = output_.bytes();
  for (const LayerWeights& l : layers_) bytes += l.wqkv.bytes() + l.wo.bytes() + l.w1.bytes() + l.w2.bytes() + l.w3.bytes();
  return bytes;
}

at::Tensor Transformer::rms_norm(const at::Tensor& x, const at::Tensor& weight) const {
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor normed = xf * at::rsqrt((xf * xf).mean(-1, /*keepdim=*/true) + spec_.norm_eps);
  return normed.to(x.scalar_type()) * weight;
}

std::array<at::Tensor, 3> Transformer::project_qkv(int64_t layer, const at::Tensor& x, const at::Tensor& rope_rows) const {
  const int64_t B = x.size(0), T = x.size(1), hd = spec_.head_dim;
  const int64_t q_dim = spec_.n_head * hd, kv_dim = spec_.n_local_heads * hd;
  auto qkv = layers_[layer].wqkv.linear(x).split_with_sizes({q_dim, kv_dim, kv_dim}, -1);
  at::Tensor q = apply_rope(qkv[0].view({B, T, spec_.n_head, hd}), rope_rows).transpose(1, 2);
  at::Tensor k = apply_rope(qkv[1].view({B, T, spec_.n_local_heads, hd}), rope_rows).transpose(1, 2);
  at::Tensor v = qkv[2].view({B, T, spec_.n_local_heads, hd}).transpose(1, 2);
  return {q, k, v};
}

at::Tensor Transformer::project_out(int64_t layer, const at::Tensor& y) const {
  const int64_t B = y.size(0), T = y.size(2);
  at::Tensor out = layers_[layer].wo.linear(y.transpose(1, 2).reshape({B, T, spec_.n_head * spec_.head_dim})).contiguous();
  all_reduce(out);
  return out;
}

at::Tensor Transformer::attention(int64_t layer, const at::Tensor& x, const at::Tensor& rope_rows,
                                  const at::Tensor& input_pos, int64_t context_len, int64_t slot) {
  auto [q, k, v] = project_qkv(layer, x, rope_rows);
  cache_.write(layer, slot, input_pos, k.to(cache_.dtype()), v.to(cache_.dtype()));
  at::Tensor keys = cache_.keys(layer, slot, context_len).to(q.scalar_type());
  at::Tensor values = cache_.values(layer, slot, context_len).to(q.scalar_type());
  // Causal mask over the cached prefix: query at position p sees keys at positions <= p.
  at::Tensor mask = at::arange(context_len, input_pos.options()).unsqueeze(0) <= input_pos.unsqueeze(1);
  // Query head h reads KV head h / (n_head / n_local_heads).
  return project_out(layer, at::scaled_dot_product_attention(q, keys, values, mask, 0.0, false, std::nullopt,
                                                             /*enable_gqa=*/spec_.n_head != spec_.n_local_heads));
}

at::Tensor Transformer::feed_forward(const LayerWeights& w, const at::Tensor& x) const {
  at::Tensor out = w.w2.linear(at::silu(w.w1.linear(x)) * w.w3.linear(x)).contiguous();
  all_reduce(out);
  return out;
}

at::Tensor Transformer::forward(const at::Tensor& tokens, int64_t start_pos, int64_t n_logits, int64_t slot) {
  const int64_t T = tokens.size(1), context_len = start_pos + T;
  at::Tensor input_pos = at::arange(start_pos, context_len, tokens.options().dtype(at::kLong));
  at::Tensor rope_rows = rope_.index_select(0, input_pos);
  at::Tensor x = at::embedding(tok_embeddings_, tokens);
  for (int64_t i = 0; i < spec_.n_layer; ++i) {
    x = x + attention(i, rms_norm(x, layers_[i].attention_norm), rope_rows, input_pos, context_len, slot);
    x = x + feed_forward(layers_[i], rms_norm(x, layers_[i].ffn_norm));
  }
  if (n_logits == 0) return at::Tensor();
  x = x.narrow(1, x.size(1) - n_logits, n_logits);
  return output_.linear(rms_norm(x, norm_)).to(at::kFloat);
}

at::Tensor Transformer::decode(const at::Tensor& tokens, const at::Tensor& slots, const at::Tensor& positions) {
  const int64_t B = tokens.size(0), len = cache_.max_seq_len();
  const bool gqa = spec_.n_head != spec_.n_local_heads;
  at::Tensor rope_rows = rope_.index_select(0, positions).unsqueeze(1);  // [B, 1, hd/2, 2]
  at::Tensor rows = cache_.flat_rows(slots, positions);
  // Row b sees its slot's positions 0..positions[b]; later ones hold stale data.
  at::Tensor mask = (at::arange(len, positions.options()).unsqueeze(0) <= positions.unsqueeze(1)).view({B, 1, 1, len});
  at::Tensor x = at::embedding(tok_embeddings_, tokens.unsqueeze(1));  // [B, 1, dim]
  for (int64_t i = 0; i < spec_.n_layer; ++i) {
    auto [q, k, v] = project_qkv(i, rms_norm(x, layers_[i].attention_norm), rope_rows);
    cache_.write_rows(i, rows, k.to(cache_.dtype()), v.to(cache_.dtype()));
    at::Tensor keys = cache_.gather_keys(i, slots).to(q.scalar_type());
    at::Tensor values = cache_.gather_values(i, slots).to(q.scalar_type());
    x = x + project_out(i, at::scaled_dot_product_attention(q, keys, values, mask, 0.0, false, std::nullopt, gqa));
    x = x + feed_forward(layers_[i], rms_norm(x, layers_[i].ffn_norm));
  }
  return output_.linear(rms_norm(x, norm_)).squeeze(1).to(at::kFloat);
}

}  // namespace gptfast
