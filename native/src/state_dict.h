// Checkpoint loaders: each returns the weights under GPT-Fast's names (tok_embeddings.weight,
// layers.N.attention.wqkv.weight, ...) without copying them: tensors view a mapping of the file
// where its layout allows (mapped_file.h), and what the file's layout needs done to a whole
// tensor is left to the taker, who does it to its shard only (linear_weight.h's take_linear):
// a wqkv the file keeps apart stays wq/wk/wv, and Hugging Face's q/k row order is marked by
// kRopeHalvesKey, not permuted.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>

#include "errors.h"
#include "gptfast/engine_api.h"

namespace gptfast {

using StateDict = std::map<std::string, at::Tensor>;

// Whether a tensor name or file path ends with `tail` (".wqkv", ".scales", ".safetensors", ...).
inline bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// GPT-Fast model.pth (torch.save zip of a flat state dict).
StateDict load_pth(const std::string& path);
// Hugging Face safetensors: one file, or a model.safetensors.index.json naming the shards.
// HF Llama names are renamed; q/k rows stay in HF's order (kRopeHalvesKey).
StateDict load_safetensors(const std::string& path, const ModelSpec& spec);
// First int32 of a version-1 llama2.c export ("ak42" read little-endian).
constexpr int32_t kLlama2cMagic = 0x616b3432;
// llama2.c .bin: legacy 28-byte header or version 1 (magic "ak42"), fp32 weights.
StateDict load_llama2c(const std::string& path, const ModelSpec& spec);
// Random weights of the right shapes (normal, std 0.02; norms 1), seeded by the decimal `seed`:
// for benchmarking architectures whose checkpoints are not at hand. fp32 on the CPU; for another
// device, drawn on it in options' dtype (other numbers than the CPU's for the same seed); on the
// meta device, only the shapes in options' dtype (nothing drawn: for planning memory).
StateDict random_weights(const ModelSpec& spec, const std::string& seed, const at::TensorOptions& options = {});

// Reads a checkpoint of `format` ("pth", "safetensors", "llama2c" or "random") under GPT-Fast's
// names; `options` (the model's dtype and device) only shapes random weights.
StateDict load_checkpoint(const std::string& path, const std::string& format, const ModelSpec& spec,
                          const at::TensorOptions& options = {});

// Present (int32 [1] holding head_dim) when the wq/wk rows of every layer are in Hugging Face's
// half-split RoPE order per head; GPT-Fast's layout pairs them adjacently.
constexpr const char* kRopeHalvesKey = "gptfast4j.hf_rope_halves";

}  // namespace gptfast
