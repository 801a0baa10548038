// Hugging Face safetensors (single file or sharded with model.safetensors.index.json).
// Layout: u64 little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
// then the raw tensor bytes. HF Llama weights are renamed to GPT-Fast's names, q/k rows are
// permuted from HF's half-split RoPE layout to GPT-Fast's adjacent pairs, and wq/wk/wv merged.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <regex>
#include <set>

#include "load_progress.h"
#include "state_dict.h"

namespace gptfast {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

at::ScalarType parse_dtype(const std::string& dtype, const std::string& name) {
  if (dtype == "F32") return at::kFloat;
  if (dtype == "F16") return at::kHalf;
  if (dtype == "BF16") return at::kBFloat16;
  if (dtype == "F64") return at::kDouble;
  throw Error("tensor '" + name + "' has unsupported safetensors dtype " + dtype);
}

// Bytes a tensor of this shape and dtype occupies, checked for negative dimensions and overflow.
uint64_t tensor_bytes(const std::vector<int64_t>& shape, at::ScalarType dtype, const std::string& name,
                      const std::string& path) {
  uint64_t bytes = c10::elementSize(dtype);
  for (const int64_t d : shape) {
    if (d < 0) throw Error("tensor '" + name + "' in '" + path + "' has a negative dimension");
    if (d != 0 && bytes > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)) {
      throw Error("tensor '" + name + "' in '" + path + "' has a shape too large to address");
    }
    bytes *= static_cast<uint64_t>(d);
  }
  return bytes;
}

// expect: tell the load progress this file's tensor bytes (false when the caller told it all shards').
void read_file_tensors(const std::string& path, StateDict& out, bool expect = true) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error("cannot open safetensors file '" + path + "'");
  const uint64_t file_size = in.tellg();
  in.seekg(0);
  uint64_t header_len = 0;
  if (file_size < 8 || !in.read(reinterpret_cast<char*>(&header_len), 8) ||
      header_len > file_size - 8) {
    throw Error("safetensors file '" + path + "' is truncated or not safetensors (bad header length)");
  }
  std::string header_text(header_len, '\0');
  in.read(header_text.data(), header_len);
  json header;
  try {
    header = json::parse(header_text);
  } catch (const json::exception& e) {
    throw Error("safetensors file '" + path + "' has a malformed header: " + e.what());
  }
  const uint64_t data_start = 8 + header_len;
  if (expect) load_progress_expect(int64_t(file_size - data_start));
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    try {
      const at::ScalarType dtype = parse_dtype(info.at("dtype").get<std::string>(), name);
      const std::vector<int64_t> shape = info.at("shape").get<std::vector<int64_t>>();
      const uint64_t begin = info.at("data_offsets").at(0).get<uint64_t>();
      const uint64_t end = info.at("data_offsets").at(1).get<uint64_t>();
      // Validate the header against the file before allocating anything: a corrupt shape must not
      // trigger a huge allocation, and offsets near 2^64 must not wrap around the bounds check.
      const uint64_t bytes = tensor_bytes(shape, dtype, name, path);
      if (end < begin || end - begin != bytes) {
        throw Error("tensor '" + name + "' in '" + path + "' has data_offsets that do not match its shape");
      }
      if (end > file_size - data_start) {  // data_start <= file_size: checked with header_len above
        throw Error("safetensors file '" + path + "' is truncated (tensor '" + name + "' runs past the end)");
      }
      at::Tensor t = at::empty(shape, dtype);
      in.seekg(data_start + begin);
      in.read(static_cast<char*>(t.data_ptr()), bytes);
      if (!in) throw Error("read error in '" + path + "' at tensor '" + name + "'");
      load_progress_read(int64_t(bytes));
      out[name] = t;
    } catch (const json::exception& e) {
      throw Error("safetensors file '" + path + "' describes tensor '" + name + "' badly: " + e.what());
    }
  }
}

// HF stores q/k rows per head as [first halves | second halves]; GPT-Fast pairs them adjacently.
at::Tensor permute_rope_rows(const at::Tensor& w, int64_t n_heads, int64_t head_dim) {
  const int64_t dim = w.size(1);
  if (w.size(0) != n_heads * head_dim) {
    throw Error("attention weight has " + std::to_string(w.size(0)) + " rows, config expects " +
                std::to_string(n_heads * head_dim));
  }
  return w.view({n_heads, 2, head_dim / 2, dim}).transpose(1, 2).reshape({n_heads * head_dim, dim});
}

StateDict from_hugging_face(StateDict hf, const ModelSpec& spec) {
  static const std::map<std::string, std::string> kLayerNames = {
      {"self_attn.o_proj.weight", "attention.wo.weight"},
      {"mlp.gate_proj.weight", "feed_forward.w1.weight"},
      {"mlp.down_proj.weight", "feed_forward.w2.weight"},
      {"mlp.up_proj.weight", "feed_forward.w3.weight"},
      {"input_layernorm.weight", "attention_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
  };
  static const std::regex kLayer(R"(model\.layers\.(\d+)\.(.+))");
  StateDict out;
  std::map<std::string, at::Tensor> q, k, v;
  for (auto& [name, t] : hf) {
    std::smatch m;
    if (name == "model.embed_tokens.weight") {
      out["tok_embeddings.weight"] = t;
    } else if (name == "model.norm.weight") {
      out["norm.weight"] = t;
    } else if (name == "lm_head.weight") {
      out["output.weight"] = t;
    } else if (std::regex_match(name, m, kLayer)) {
      const std::string layer = m[1], rest = m[2];
      if (rest == "self_attn.q_proj.weight") q[layer] = permute_rope_rows(t, spec.n_head, spec.head_dim);
      else if (rest == "self_attn.k_proj.weight") k[layer] = permute_rope_rows(t, spec.n_local_heads, spec.head_dim);
      else if (rest == "self_attn.v_proj.weight") v[layer] = t;
      else if (kLayerNames.count(rest)) out["layers." + layer + "." + kLayerNames.at(rest)] = t;
      // rotary_emb.inv_freq and other buffers are recomputed, not loaded
    }
  }
  for (auto& [layer, wq] : q) {
    if (!k.count(layer) || !v.count(layer)) throw Error("layer " + layer + " lacks k_proj or v_proj");
    out["layers." + layer + ".attention.wqkv.weight"] = at::cat({wq, k[layer], v[layer]}, 0);
  }
  if (!out.count("output.weight") && out.count("tok_embeddings.weight")) {
    out["output.weight"] = out["tok_embeddings.weight"];  // tied embeddings
  }
  return out;
}

}  // namespace

StateDict load_safetensors(const std::string& path, const ModelSpec& spec) {
  StateDict raw;
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    std::ifstream in(path);
    if (!in) throw Error("cannot open safetensors index '" + path + "'");
    json index;
    try {
      index = json::parse(in);
    } catch (const json::exception& e) {
      throw Error("safetensors index '" + path + "' is malformed: " + e.what());
    }
    if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
      throw Error("safetensors index '" + path + "' has no weight_map");
    }
    std::set<std::string> shards;
    for (const auto& [name, file] : index["weight_map"].items()) shards.insert(file.get<std::string>());
    const fs::path dir = fs::path(path).parent_path();
    for (const auto& shard : shards) {  // the whole model's size up front, so progress never goes back
      std::error_code ec;
      const auto size = std::filesystem::file_size(dir / shard, ec);
      if (!ec) load_progress_expect(int64_t(size));
    }
    for (const auto& shard : shards) read_file_tensors((dir / shard).string(), raw, false);
  } else {
    read_file_tensors(path, raw);
  }
  if (raw.count("model.embed_tokens.weight")) return from_hugging_face(std::move(raw), spec);
  merge_qkv(raw, spec.n_layer);  // already GPT-Fast names
  if (!raw.count("output.weight") && raw.count("tok_embeddings.weight")) {
    raw["output.weight"] = raw["tok_embeddings.weight"];
  }
  return raw;
}

}  // namespace gptfast
