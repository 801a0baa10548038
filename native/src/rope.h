// Rotary position embeddings, GPT-Fast convention: adjacent pairs (x[2i], x[2i+1]) rotate by
// pos * base^(-2i/head_dim), optionally with Llama 3.1's frequency scaling.
#pragma once

#include <ATen/ATen.h>

#include "gptfast/engine_api.h"

namespace gptfast {

// [max_seq_len, head_dim/2, 2] fp32 table of (cos, sin).
at::Tensor rope_table(const ModelSpec& spec, int64_t max_seq_len);

// x: [B, T, heads, head_dim]; table rows: [T, head_dim/2, 2] shared by the batch, or
// [B, T, head_dim/2, 2] per sequence (batched decode: each row at its own position). Rotates in
// fp32, returns x's dtype.
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& table_rows);

}  // namespace gptfast
