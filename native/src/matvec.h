// fp32 products with a row-major weight matrix W [rows, cols] for the fused decode step:
// y[t] = W x[t] for a few vectors t at once. Each weight row is read once for all vectors, so
// verifying k+1 speculative tokens streams the weights once, like a single decode step.
// Compiled for several ISAs (AVX-512, AVX2+FMA, baseline) with the best picked at load time;
// rows are split across libtorch's intra-op threads. Allocation-free.
#pragma once

#include <cstdint>

namespace gptfast {

// x: [n_vectors, cols], y: [n_vectors, rows].
void matmul_rows(const float* w, const float* x, float* y, int64_t rows, int64_t cols, int64_t n_vectors);

}  // namespace gptfast
