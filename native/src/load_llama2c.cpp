// llama2.c checkpoints (karpathy/llama2.c export formats), fp32 only:
//  legacy: 7 int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
//          negative vocab = separate classifier), then weights grouped by kind across layers,
//          then RoPE tables (ignored) and the classifier if unshared.
//  v1:     magic "ak42", version 1, the same 7 ints, a shared-classifier byte, padded to 256 bytes;
//          norms first, then embeddings, then the matrices.
// llama2.c rotates adjacent pairs like GPT-Fast, so no q/k permutation is needed. The weights are
// views of a mapping of the file (4-byte aligned: they start at byte 28 or 256); wq/wk/wv stay
// apart per layer (take_linear joins the rows a rank keeps).
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "load_progress.h"
#include "mapped_file.h"
#include "state_dict.h"

namespace gptfast {

namespace {


struct Header {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

// The one reader of the header: opens the file and leaves the stream at the first weight.
struct Opened {
  std::ifstream in;
  Header h{};
  bool v1 = false, shared_classifier = false;
  int64_t file_size = 0;
};

Opened open_llama2c(const std::string& path) {
  Opened o;
  o.in.open(path, std::ios::binary | std::ios::ate);
  if (!o.in) throw Error("cannot open checkpoint '" + path + "'");
  o.file_size = o.in.tellg();
  o.in.seekg(0);
  int32_t first[2] = {0, 0};
  if (o.file_size < 28 || !o.in.read(reinterpret_cast<char*>(first), 8)) {
    throw Error("llama2.c checkpoint '" + path + "' is too short for a header");
  }
  o.v1 = first[0] == kLlama2cMagic;
  if (o.v1 && first[1] != 1) {
    throw Error("llama2.c checkpoint '" + path + "' has export version " + std::to_string(first[1]) +
                "; only fp32 versions 0 (legacy) and 1 are supported");
  }
  o.in.seekg(o.v1 ? 8 : 0);
  o.in.read(reinterpret_cast<char*>(&o.h), sizeof(Header));
  if (o.v1) {
    uint8_t shared = 0;
    o.in.read(reinterpret_cast<char*>(&shared), 1);
    o.shared_classifier = shared != 0;
    o.in.seekg(256);
  } else {
    o.shared_classifier = o.h.vocab_size > 0;
  }
  if (!o.in) throw Error("llama2.c checkpoint '" + path + "' is too short for a header");
  if (o.h.dim <= 0 || o.h.n_heads <= 0) throw Error("llama2.c checkpoint '" + path + "' has an invalid header");
  return o;
}

class FloatReader {
 public:
  FloatReader(std::shared_ptr<MappedFile> file, int64_t start)
      : file_(std::move(file)), at_(start), left_(int64_t(file_->size()) - start) {
    load_progress_expect(left_);
  }

  // Views the next `count` floats as a tensor of the given shape, with a clear error on truncation.
  at::Tensor next(const std::string& what, at::IntArrayRef shape) {
    int64_t count = 1;
    for (auto s : shape) count *= s;
    const int64_t bytes = count * 4;
    if (bytes > left_) {
      throw Error("llama2.c checkpoint '" + file_->path() + "' is truncated: " + what + " needs " +
                  std::to_string(bytes) + " bytes, " + std::to_string(left_) + " left");
    }
    at::Tensor t = file_->view(uint64_t(at_), shape, at::kFloat, what);  // aligned: at_ is a multiple of 4
    load_progress_owe(bytes);  // read when a rank copies it
    at_ += bytes;
    left_ -= bytes;
    return t;
  }
  void skip(const std::string& what, int64_t bytes) {
    if (bytes > left_) {
      throw Error("llama2.c checkpoint '" + file_->path() + "' is truncated inside " + what);
    }
    at_ += bytes;
    left_ -= bytes;
    load_progress_read(bytes);
  }
  int64_t left() const { return left_; }

 private:
  std::shared_ptr<MappedFile> file_;
  int64_t at_, left_;
};

void check_header(const Header& h, const ModelSpec& spec, const std::string& path) {
  auto mismatch = [&](const char* field, int64_t file, int64_t config) {
    if (file != config) {
      throw Error("llama2.c checkpoint '" + path + "' has " + field + " " + std::to_string(file) +
                  " but the model config says " + std::to_string(config));
    }
  };
  mismatch("dim", h.dim, spec.dim);
  mismatch("hidden_dim", h.hidden_dim, spec.intermediate_size);
  mismatch("n_layers", h.n_layers, spec.n_layer);
  mismatch("n_heads", h.n_heads, spec.n_head);
  mismatch("n_kv_heads", h.n_kv_heads, spec.n_local_heads);
  mismatch("vocab_size", std::abs(h.vocab_size), spec.vocab_size);
}

// Stacked per-layer tensors ([n_layer, ...]) are split into GPT-Fast's per-layer names.
void put_layers(StateDict& w, const at::Tensor& stacked, const std::string& suffix) {
  for (int64_t i = 0; i < stacked.size(0); ++i) {
    w["layers." + std::to_string(i) + "." + suffix] = stacked[i];
  }
}

}  // namespace

ModelSpec llama2c_model(const std::string& path) {
  const Header h = open_llama2c(path).h;
  ModelSpec spec;  // rope_base and norm_eps keep their defaults: llama2.c's fixed values
  spec.dim = h.dim;
  spec.n_layer = h.n_layers;
  spec.n_head = h.n_heads;
  spec.n_local_heads = h.n_kv_heads;
  spec.head_dim = h.dim / h.n_heads;
  spec.intermediate_size = h.hidden_dim;
  spec.vocab_size = std::abs(h.vocab_size);
  spec.block_size = h.seq_len;
  return spec;
}

StateDict load_llama2c(const std::string& path, const ModelSpec& spec) {
  Opened o = open_llama2c(path);
  std::ifstream& in = o.in;
  const Header& h = o.h;
  const bool v1 = o.v1, shared_classifier = o.shared_classifier;
  const int64_t file_size = o.file_size;
  check_header(h, spec, path);

  const int64_t dim = h.dim, hidden = h.hidden_dim, L = h.n_layers, vocab = std::abs(h.vocab_size);
  const int64_t head_dim = dim / h.n_heads, kv_dim = head_dim * h.n_kv_heads;
  const int64_t start = in.tellg();
  in.close();
  FloatReader r(MappedFile::open(path), start);
  if (file_size != int64_t(r.left()) + start) {
    throw Error("llama2.c checkpoint '" + path + "' changed size while it was opened");
  }
  StateDict w;
  at::Tensor wq, wk, wv;
  if (v1) {
    put_layers(w, r.next("attention norms", {L, dim}), "attention_norm.weight");
    put_layers(w, r.next("ffn norms", {L, dim}), "ffn_norm.weight");
    w["norm.weight"] = r.next("final norm", {dim});
    w["tok_embeddings.weight"] = r.next("token embeddings", {vocab, dim});
  } else {
    w["tok_embeddings.weight"] = r.next("token embeddings", {vocab, dim});
    put_layers(w, r.next("attention norms", {L, dim}), "attention_norm.weight");
  }
  wq = r.next("wq", {L, dim, dim});
  wk = r.next("wk", {L, kv_dim, dim});
  wv = r.next("wv", {L, kv_dim, dim});
  put_layers(w, r.next("wo", {L, dim, dim}), "attention.wo.weight");
  if (!v1) put_layers(w, r.next("ffn norms", {L, dim}), "ffn_norm.weight");
  put_layers(w, r.next("w1", {L, hidden, dim}), "feed_forward.w1.weight");
  put_layers(w, r.next("w2", {L, dim, hidden}), "feed_forward.w2.weight");
  put_layers(w, r.next("w3", {L, hidden, dim}), "feed_forward.w3.weight");
  if (!v1) {
    w["norm.weight"] = r.next("final norm", {dim});
    r.skip("RoPE tables", int64_t(h.seq_len) * head_dim * 4);  // legacy RoPE cos/sin tables: recomputed instead
  }
  w["output.weight"] = shared_classifier ? w["tok_embeddings.weight"]
                                         : r.next("classifier", {vocab, dim});
  if (r.left() != 0) {
    throw Error("llama2.c checkpoint '" + path + "' has " + std::to_string(r.left()) +
                " bytes more than its header describes (wrong config or not fp32?)");
  }
  put_layers(w, wq, "attention.wq.weight");
  put_layers(w, wk, "attention.wk.weight");
  put_layers(w, wv, "attention.wv.weight");
  return w;
}

}  // namespace gptfast
