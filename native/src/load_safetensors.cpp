// Hugging Face safetensors (single file or sharded with model.safetensors.index.json).
// Layout: u64 little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
// then the raw tensor bytes, which are viewed in a mapping of the file, not read. HF Llama weights
// are renamed to GPT-Fast's names; q/k rows keep HF's half-split RoPE order (kRopeHalvesKey) and
// wq/wk/wv stay apart: take_linear permutes and joins the rows a rank keeps.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <limits>
#include <regex>
#include <set>

#include "load_progress.h"
#include "mapped_file.h"
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
  const std::shared_ptr<MappedFile> file = MappedFile::open(path);
  const uint64_t file_size = file->size();
  uint64_t header_len = 0;
  if (file_size >= 8) std::memcpy(&header_len, file->data(), 8);
  if (file_size < 8 || header_len > file_size - 8) {
    throw Error("safetensors file '" + path + "' is truncated or not safetensors (bad header length)");
  }
  json header;
  try {
    header = json::parse(file->data() + 8, file->data() + 8 + header_len);
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
      // Validate the header against the file before viewing anything: a corrupt shape must not
      // describe a huge tensor, and offsets near 2^64 must not wrap around the bounds check.
      const uint64_t bytes = tensor_bytes(shape, dtype, name, path);
      if (end < begin || end - begin != bytes) {
        throw Error("tensor '" + name + "' in '" + path + "' has data_offsets that do not match its shape");
      }
      if (end > file_size - data_start) {  // data_start <= file_size: checked with header_len above
        throw Error("safetensors file '" + path + "' is truncated (tensor '" + name + "' runs past the end)");
      }
      at::Tensor t = file->view(data_start + begin, shape, dtype, "tensor '" + name + "'");
      if (t.defined()) {
        load_progress_owe(int64_t(bytes));  // read when a rank copies it
      } else {
        // The format aligns nothing: a tensor whose offset is not a multiple of its element
        // size is copied now rather than viewed through misaligned pointers.
        t = at::empty(shape, dtype);
        file->check_still_holds(data_start + end);
        std::memcpy(t.data_ptr(), file->data() + data_start + begin, bytes);
        load_progress_read(int64_t(bytes));
      }
      out[name] = t;
    } catch (const json::exception& e) {
      throw Error("safetensors file '" + path + "' describes tensor '" + name + "' badly: " + e.what());
    }
  }
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
      // HF stores q/k rows per head as [first halves | second halves]; take_linear pairs them.
      if (rest == "self_attn.q_proj.weight") q[layer] = t;
      else if (rest == "self_attn.k_proj.weight") k[layer] = t;
      else if (rest == "self_attn.v_proj.weight") v[layer] = t;
      else if (kLayerNames.count(rest)) out["layers." + layer + "." + kLayerNames.at(rest)] = t;
      // rotary_emb.inv_freq and other buffers are recomputed, not loaded
    }
  }
  for (auto& [layer, wq] : q) {
    if (!k.count(layer) || !v.count(layer)) throw Error("layer " + layer + " lacks k_proj or v_proj");
    const std::string p = "layers." + layer + ".attention.";
    out[p + "wq.weight"] = wq;
    out[p + "wk.weight"] = k[layer];
    out[p + "wv.weight"] = v[layer];
  }
  if (spec.head_dim % 2 != 0) throw Error("model config: head_dim must be even for RoPE, got " + std::to_string(spec.head_dim));
  out[kRopeHalvesKey] = at::full({1}, spec.head_dim, at::kInt);
  if (!out.count("output.weight") && out.count("tok_embeddings.weight")) {
    out["output.weight"] = out["tok_embeddings.weight"];  // tied embeddings
  }
  return out;
}

}  // namespace

StateDict load_safetensors(const std::string& path, const ModelSpec& spec) {
  StateDict raw;
  if (ends_with(path, ".json")) {
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
  // Already GPT-Fast's names and layout; wq/wk/wv, if apart, stay so.
  if (!raw.count("output.weight") && raw.count("tok_embeddings.weight")) {
    raw["output.weight"] = raw["tok_embeddings.weight"];
  }
  return raw;
}

}  // namespace gptfast
