// int8/int4 Linear layers on a GPU through the decode gemv kernels (kernels.h), for the few rows a
// decode step has: weights stay quantized in device memory and are dequantized in registers, so a
// step streams 1 (int8) or 1/2 (int4) byte per weight. Only in CUDA builds.
#pragma once

#include <ATen/ATen.h>

namespace gptfast {

struct LinearWeight;

// x [..., in] (fp32 or bf16, on a CUDA device) times w's quantized weight; undefined when the
// kernels do not apply (more rows than kMaxGemvBatch, another dtype, dense weights), so that the
// caller falls back to dequantize-then-matmul.
at::Tensor cuda_quantized_linear(const LinearWeight& w, const at::Tensor& x);

}  // namespace gptfast
