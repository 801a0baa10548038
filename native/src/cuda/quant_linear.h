// int8/int4 Linear layers on a GPU for the few rows a decode step has: weights stay quantized in
// device memory and are dequantized in registers, so a step streams 1 (int8) or 1/2 (int4) byte
// per weight. Two implementations, chosen per model load by GPTFAST_CUDA_QUANT_MATMUL: the
// engine's gemv kernels (kernels.h, "own", the default) or libtorch's _weight_int8pack_mm /
// _weight_int4pack_mm ("aten"), so that a GPU run can measure both end to end. Only in CUDA builds.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace gptfast {

struct LinearWeight;

enum class QuantMatmul { own, aten };

// The one reader of GPTFAST_CUDA_QUANT_MATMUL: unset or empty = own; "own" or "aten"; anything
// else throws naming the variable and the allowed values. Read when a model loads on a GPU.
QuantMatmul quant_matmul_from_env();
const char* quant_matmul_name(QuantMatmul m);

// For "aten": adds libtorch's layout of w's quantized weight (w on a CUDA device): int8 uses the
// weight and scales as they are; int4 packs the weight with _convert_weight_to_int4pack and
// transposes the scales/zeros to [K/G, out, 2]. `activations`: the model's dtype (libtorch's
// int4 kernel takes bf16 only). Throws, naming `name` and the reason, where libtorch's ops cannot
// take this layer. Dense weights are left alone.
void add_aten_layout(LinearWeight& w, const std::string& name, at::ScalarType activations);

// x [..., in] (fp32 or bf16, on a CUDA device) times w's quantized weight, through libtorch's op
// where w has its layout (add_aten_layout), else the own gemv kernels; undefined when neither
// applies (more rows than kMaxGemvBatch, another dtype, dense weights), so that the caller falls
// back to dequantize-then-matmul.
at::Tensor cuda_quantized_linear(const LinearWeight& w, const at::Tensor& x);

}  // namespace gptfast
