// fp32 matrix-vector product for the fused decode step: y = W x, W row-major [rows, cols].
// Compiled for several ISAs (AVX2+FMA, AVX-512, baseline) with the best picked at load time,
// rows split across libtorch's intra-op threads. Allocation-free.
#pragma once

#include <cstdint>

namespace gptfast {

void matvec(const float* w, const float* x, float* y, int64_t rows, int64_t cols);

}  // namespace gptfast
