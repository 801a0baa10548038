// A Linear layer's weight as the model and its kernels see it: dense (fp32 | bf16), or
// weight-only quantized in GPT-Fast's formats. The one owner of those formats: how they look in
// a checkpoint, how a dense weight is quantized, how they are dequantized.
//
// int8 (GPT-Fast quantize.py --mode int8): per output row, symmetric.
//   file:   {name}.weight int8 [out, in], {name}.scales [out] (bf16 or fp32)
//   value:  w[r][c] = q[r][c] * scale[r]
// int4 (GPT-Fast quantize.py --mode int4, groups of G in {32, 64, 128, 256} input columns):
//   value:  w[r][c] = (q[r][c] - 8) * scale[g][r] + zero[g][r], g = c / G, q in [0, 15]
//   file:   {name}.scales_and_zeros bf16 [K/G, out, 2] (scale, zero), as GPT-Fast packs them;
//           {name}.weight uint8 [out, K/2], two columns per byte: column 2j in the high nibble,
//           2j+1 in the low one (the order GPT-Fast gives _convert_weight_to_int4pack), plus the
//           entry "gptfast4j.int4_layout" = int32 [1] holding kInt4Layout, which names this layout
//           (uint8 [out, K/2] is ambiguous: torch's CPU int4pack has that shape too). (GPT-Fast's own files
//           hold int32 [out/8, K/(inner_k_tiles*16), 32, inner_k_tiles/2] in the CUDA tensor-core
//           layout instead; those are refused with what to do.)
//   K is `in` padded as GPT-Fast pads it: to a multiple of 1024 unless in % G == 0 and
//   in % 128 == 0 (inner_k_tiles 8); padded columns are zero and never read.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "state_dict.h"

namespace gptfast {

enum class WeightKind { dense, int8, int4 };

// The tensor beside {name}.weight that makes a layer quantized in a file (formats above), and the
// kind a tensor's name says it is the scales of (dense: none).
constexpr char kInt8ScalesSuffix[] = ".scales";
constexpr char kInt4ScalesSuffix[] = ".scales_and_zeros";
WeightKind scales_kind(const std::string& tensor_name);

// What --quantize asks for: none, "int8", "int4" (group 128, GPT-Fast's default) or "int4:G".
struct QuantSpec {
  WeightKind kind = WeightKind::dense;
  int group = 0;  // int4 only
  std::string name() const;  // "int8", "int4:32", ... ("" for none)
};
// Parses and checks a --quantize value ("" = none); throws naming the allowed values.
QuantSpec parse_quantize(const std::string& value);

constexpr const char* kInt4LayoutKey = "gptfast4j.int4_layout";
constexpr int32_t kInt4Layout = 1;

// GPT-Fast's padded input width for int4.
int64_t int4_padded_in(int64_t in, int64_t group);

struct LinearWeight {
  WeightKind kind = WeightKind::dense;
  at::Tensor weight;  // dense: [out, in] in the model's dtype; int8: int8 [out, in]; int4: uint8 [out, K/2]
  // int8: fp32 [out]. int4: bf16 [out, K/G, 2] (the file's [K/G, out, 2] transposed so that a
  // row's groups are contiguous for the kernels).
  at::Tensor scales;
  // Only with GPTFAST_CUDA_QUANT_MATMUL=aten on a GPU (cuda/quant_linear.h): the weight and
  // scales in the layout of libtorch's _weight_int8pack_mm / _weight_int4pack_mm (int8: the same
  // tensors; int4: a packed copy, so both layouts are held). Undefined otherwise.
  at::Tensor aten_weight, aten_scales;
  int64_t out = 0, in = 0, group = 0;

  // Bytes of weights and scales read when the layer runs once (the decode roofline counts these).
  int64_t bytes() const;
  // [out, in] in `dtype`, for the generic ATen path (other devices, long prompt chunks).
  at::Tensor dequantize(at::ScalarType dtype) const;
  // y = x W^T over the last dimension of x, for the ATen path.
  at::Tensor linear(const at::Tensor& x) const;
  LinearWeight to(at::Device device) const;

};

// Checks a dense tensor of a loaded checkpoint: present, floating, of `shape` (naming the tensor
// and both shapes). take_tensor: a copy of it in `options` that owns its memory; the entry is
// erased from `weights` (take_linear erases what it took too).
const at::Tensor& check_tensor(const StateDict& weights, const std::string& name, std::vector<int64_t> shape);
at::Tensor take_tensor(StateDict& weights, const std::string& name, std::vector<int64_t> shape,
                       const at::TensorOptions& options);

// Quantizes a dense [out, in] weight (any floating dtype; computed in fp32, kQuantizeRows rows at
// a time). int8_scales: use these fp32 [out] scales (int8_scales_of() the whole rows, for a column
// shard) instead.
constexpr int64_t kQuantizeRows = 256;
LinearWeight quantize(const at::Tensor& weight, const QuantSpec& spec, const at::Tensor& int8_scales = {});
at::Tensor int8_scales_of(const at::Tensor& weight);

// The part of a Linear layer a tensor-parallel rank keeps, as GPT-Fast's tp.py cuts it: every
// row, or output-row ranges [start, start + count) concatenated (wqkv takes its q, k and v parts
// so), or input columns [column_start, column_start + column_count) (count 0: all). Scales travel
// with their rows; int4 scales/zeros with their groups, so a column shard must hold whole groups
// and is re-padded as GPT-Fast pads its width.
struct Shard {
  std::vector<std::pair<int64_t, int64_t>> rows;
  int64_t column_start = 0, column_count = 0;
};

// Takes `shard` of layer `name` (without ".weight") of shape [out, in] from a loaded checkpoint:
// a dense weight, converted to `dense_options` and then quantized if `quant` asks for it, or one
// already quantized in the file (int8 or int4 as above; `quant` must then be none or the same).
// Checks shapes, dtypes and layout, naming the tensor in any error. Cuts before it converts,
// permutes or concatenates, so only the shard is copied out of the checkpoint (copy_weights);
// the result owns its memory. Quantizing gives the values of quantizing the whole weight and
// cutting after, as GPT-Fast does: rows are quantized on their own, int4 groups too, and an int8
// column shard takes the scales of its whole rows (read, in row blocks, from the whole weight).
// The layer's entries are erased from `weights` (a tensor-parallel rank takes from its own
// shallow copy of the dict).
LinearWeight take_linear(StateDict& weights, const std::string& name, int64_t out, int64_t in,
                         const at::TensorOptions& dense_options, const QuantSpec& quant, const Shard& shard = {});

// Checks that a dense layer's weight is in the checkpoint with shape [out, in], or its wq/wk/wv
// parts for an attention.wqkv (as take_linear would take it), copying nothing.
void check_dense_linear(const StateDict& weights, const std::string& name, int64_t out, int64_t in);

// The checkpoint entries of a weight, under GPT-Fast's names and layouts (for writing files).
void put_linear(StateDict& weights, const std::string& name, const LinearWeight& w);

}  // namespace gptfast
