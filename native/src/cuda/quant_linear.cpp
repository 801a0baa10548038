#include "cuda/quant_linear.h"

#include <c10/cuda/CUDAStream.h>

#include "cuda/kernels.h"
#include "linear_weight.h"

namespace gptfast {

at::Tensor cuda_quantized_linear(const LinearWeight& w, const at::Tensor& x) {
  if (w.kind == WeightKind::dense || !x.is_cuda()) return {};
  const int64_t rows = x.numel() / w.in;
  const auto dtype = x.scalar_type();
  if (rows < 1 || rows > cuda::kMaxGemvBatch || (dtype != at::kFloat && dtype != at::kBFloat16)) return {};
  if (!w.weight.is_contiguous() || !w.scales.is_contiguous()) return {};
  const at::Tensor xc = x.contiguous();
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.back() = w.out;
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
