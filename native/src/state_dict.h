// Checkpoint loaders: each returns the weights under GPT-Fast's names (tok_embeddings.weight,
// layers.N.attention.wqkv.weight, ...), converted from the file's own layout.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>

#include "errors.h"
#include "gptfast/engine_api.h"

namespace gptfast {

using StateDict = std::map<std::string, at::Tensor>;

// GPT-Fast model.pth (torch.save zip of a flat state dict); separate wq/wk/wv are merged.
StateDict load_pth(const std::string& path);
// Hugging Face safetensors: one file, or a model.safetensors.index.json naming the shards.
// HF Llama names are renamed and q/k rows permuted to GPT-Fast's adjacent-pair RoPE layout.
StateDict load_safetensors(const std::string& path, const ModelSpec& spec);
// First int32 of a version-1 llama2.c export ("ak42" read little-endian).
constexpr int32_t kLlama2cMagic = 0x616b3432;
// llama2.c .bin: legacy 28-byte header or version 1 (magic "ak42"), fp32 weights.
StateDict load_llama2c(const std::string& path, const ModelSpec& spec);
// Random weights of the right shapes (normal, std 0.02; norms 1), seeded by the decimal `seed`:
// for benchmarking architectures whose checkpoints are not at hand. fp32 on the CPU; for another
// device, drawn on it in options' dtype (other numbers than the CPU's for the same seed).
StateDict random_weights(const ModelSpec& spec, const std::string& seed, const at::TensorOptions& options = {});

// Reads a checkpoint of `format` ("pth", "safetensors", "llama2c" or "random") under GPT-Fast's
// names; `options` (the model's dtype and device) only shapes random weights.
StateDict load_checkpoint(const std::string& path, const std::string& format, const ModelSpec& spec,
                          const at::TensorOptions& options = {});

// Shared by the loaders: merges wq/wk/wv into wqkv where a checkpoint keeps them apart.
void merge_qkv(StateDict& weights, int n_layer);

}  // namespace gptfast
