#include "cuda/quant_linear.h"

#include <c10/cuda/CUDAStream.h>

#include <cstdlib>

#include "cuda/kernels.h"
#include "errors.h"
#include "linear_weight.h"

namespace gptfast {

QuantMatmul quant_matmul_from_env() {
  const char* env = std::getenv("GPTFAST_CUDA_QUANT_MATMUL");
  const std::string v = env ? env : "";
  if (v.empty() || v == "own") return QuantMatmul::own;
  if (v == "aten") return QuantMatmul::aten;
  throw Error("GPTFAST_CUDA_QUANT_MATMUL=" + v + ": expected own (the engine's gemv kernels, the default) or aten "
              "(libtorch's _weight_int8pack_mm / _weight_int4pack_mm)");
}

const char* quant_matmul_name(QuantMatmul m) { return m == QuantMatmul::aten ? "aten" : "own"; }

void add_aten_layout(LinearWeight& w, const std::string& name, at::ScalarType activations) {
  if (w.kind == WeightKind::dense) return;
  const std::string what = "GPTFAST_CUDA_QUANT_MATMUL=aten: layer '" + name + "': ";
  if (!w.weight.is_cuda()) throw Error(what + "libtorch's layout is made on a CUDA device only");
  if (w.kind == WeightKind::int8) {
    // _weight_int8pack_mm takes the int8 [out, in] weight and per-row scales as they are.
    w.aten_weight = w.weight;
    w.aten_scales = w.scales;
    return;
  }
  if (activations != at::kBFloat16) {
    throw Error(what + "libtorch's _weight_int4pack_mm takes bf16 activations only, this model runs in " +
                std::string(c10::toString(activations)) + " (use --dtype bf16, or GPTFAST_CUDA_QUANT_MATMUL=own)");
  }
  // Its tensor-core layout: output rows in tiles of 8, the padded width in tiles of 16 * inner k
  // tiles (8 where the width allows, as GPT-Fast picks).
  const int64_t padded = w.weight.size(1) * 2;
  if (w.out % 8 != 0 || padded % 32 != 0) {
    throw Error(what + "libtorch's int4 layout needs output rows in multiples of 8 and a padded width in multiples "
                "of 32, this layer has " + std::to_string(w.out) + " and " + std::to_string(padded));
  }
  const int64_t tiles = padded % 128 == 0 ? 8 : padded % 64 == 0 ? 4 : 2;
  w.aten_weight = at::_convert_weight_to_int4pack(w.weight.contiguous(), tiles);
  w.aten_scales = w.scales.transpose(0, 1).contiguous();  // [K/G, out, 2]
}

namespace {

at::Tensor aten_quantized_linear(const LinearWeight& w, const at::Tensor& x2d) {
  if (w.kind == WeightKind::int8) return at::_weight_int8pack_mm(x2d, w.aten_weight, w.aten_scales);
  if (x2d.scalar_type() != at::kBFloat16) {
    throw Error("libtorch's _weight_int4pack_mm takes bf16 activations only, got " +
                std::string(c10::toString(x2d.scalar_type())));
  }
  const int64_t padded = w.weight.size(1) * 2;
  const at::Tensor xp = padded == w.in ? x2d : at::constant_pad_nd(x2d, {0, padded - w.in});
  return at::_weight_int4pack_mm(xp, w.aten_weight, w.group, w.aten_scales);
}

}  // namespace

at::Tensor cuda_quantized_linear(const LinearWeight& w, const at::Tensor& x) {
  if (w.kind == WeightKind::dense || !x.is_cuda()) return {};
  const int64_t rows = x.numel() / w.in;
  const auto dtype = x.scalar_type();
  if (rows < 1 || rows > cuda::kMaxGemvBatch || (dtype != at::kFloat && dtype != at::kBFloat16)) return {};
  const at::Tensor xc = x.contiguous();
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = w.out;
  if (w.aten_weight.defined()) return aten_quantized_linear(w, xc.view({rows, w.in})).view(sizes);
  if (!w.weight.is_contiguous() || !w.scales.is_contiguous()) return {};
  at::Tensor y = at::empty(sizes, x.options());
  const cuda::ActDtype act = dtype == at::kFloat ? cuda::ActDtype::f32 : cuda::ActDtype::bf16;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
  if (w.kind == WeightKind::int8) {
    cuda::gemv_int8(w.weight.data_ptr<int8_t>(), w.scales.data_ptr<float>(), int(w.out), int(w.in), xc.data_ptr(),
                    y.data_ptr(), int(rows), act, stream);
  } else {
    cuda::gemv_int4(w.weight.data_ptr<uint8_t>(), reinterpret_cast<const uint16_t*>(w.scales.data_ptr<at::BFloat16>()),
                    int(w.out), int(w.in), int(w.weight.size(1) * 2), int(w.group), xc.data_ptr(), y.data_ptr(),
                    int(rows), act, stream);
  }
  return y;
}

}  // namespace gptfast
